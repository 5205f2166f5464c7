#!/usr/bin/env bash
# Side-by-side benchmark of the qpage edge against nginx, caddy and static-web-server
# on the same files (4 KiB and 40 KiB HTML, 200 KiB image), with and without
# `Accept-Encoding: br`; then qpage with 10,000 sites and a random Host per request.
#
# Each server is pinned to core 0 with taskset, wrk to core 1. In each round all servers
# are started and every file is measured on each server back to back; summarize.py reports medians with their min-max spread, since this
# machine's noise is large. CPU per request is the server's utime+stime from /proc
# divided by the requests wrk completed.
#
# Usage: benches/edge/run.sh            (from the repository root)
# Env:   ROUNDS=3 DURATION=5 CONNS=32 SITES=10000 OUT=target/bench-edge
#        SERVERS="qpage nginx caddy sws" FILES="small.html medium.html image.jpg"
#        ENCODINGS="identity br" SKIP_MANY=1 (skip the 10,000-site part)
#        QPAGE_B=BINARY: a second qpage build measured beside the others as "qpage-b".
#        PERF=1: perf-record the server's core during each measured run (wrk-*.perf.data);
#        PERF_CPU=1 records the load generator's core instead.
#        EVENTS=1: keep qpage's access events on (off by default here, as nginx runs
#        with access_log off).
#        QPAGE=target/release/qpage SWS=static-web-server SKIP_BUILD=1 SKIP_INSTALL=1
#        SERVER_SHARE=P: each server may use only P% of its core (a CPU cgroup quota),
#        so that the server, not the one-thread client, sets the rate (a server-bound
#        comparison; p99 then includes the quota's throttling).
#        CLIENT_RMEM=1048576: starting receive buffer of every TCP socket during the run
#        (net.ipv4.tcp_rmem's middle value, restored at exit; see client_rmem in
#        benches/lib.sh); 0 keeps the machine's autotuned default.
#        EDGE_ONLY=1: build and run edge/examples/edge-serve.rs (the same library calls as
#        `qpage edge add-site` / `qpage edge serve`, without compiling the generator).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/benches/edge"
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CONNS=${CONNS:-32}
SITES=${SITES:-10000}
OUT=${OUT:-$ROOT/target/bench-edge}
QPAGE=${QPAGE:-$ROOT/target/release/qpage}
# static-web-server: `cargo install --locked --root target/tools/sws static-web-server`
SWS=${SWS:-$(command -v static-web-server || echo "$ROOT/target/tools/sws/bin/static-web-server")}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TICK=$(getconf CLK_TCK)

if [[ -z "${SKIP_INSTALL:-}" ]]; then
  for bin in wrk nginx caddy; do
    command -v "$bin" >/dev/null || NEED=1
  done
  if [[ -n "${NEED:-}" || ! -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ]]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y wrk nginx caddy libnginx-mod-http-brotli-static >/dev/null
  fi
fi
if [[ -n "${EDGE_ONLY:-}" ]]; then
  TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
  [[ -z "${SKIP_BUILD:-}" ]] && (cd "$ROOT" && cargo build --release -p qpage-edge --example edge-serve)
  QPAGE_ADD=("$TARGET/release/examples/edge-serve" add-site)
  QPAGE_SERVE=("$TARGET/release/examples/edge-serve" serve)
else
  [[ -z "${SKIP_BUILD:-}" ]] && (cd "$ROOT" && cargo build --release -p qpage)
  QPAGE_ADD=("$QPAGE" edge add-site)
  QPAGE_SERVE=("$QPAGE" edge serve)
fi

rm -rf "$OUT"
mkdir -p "$OUT"
. "$ROOT/benches/lib.sh"
bench_work
client_rmem "${CLIENT_RMEM:-1048576}"
if [[ -n "${SERVER_SHARE:-}" ]]; then
  cpu_quota_cgroup qpage-bench-server "$SERVER_SHARE"
  echo "servers limited to $SERVER_SHARE% of core $SERVER_CPU" | tee -a "$OUT/settings.txt"
fi
echo "net.ipv4.tcp_rmem during the run: $(sysctl -n net.ipv4.tcp_rmem | tr -s '[:space:]' ' ')" | tee -a "$OUT/settings.txt"

# --- the files, imported into qpage; peers get the same bytes (and qpage's .br/.gz as sidecars)
SITE="$WORK/site"
python3 "$HERE/gen_files.py" "$SITE"
DATA="$WORK/qpage-data"
"${QPAGE_ADD[@]}" bench --host bench.test --data "$DATA" "$SITE" >/dev/null
peer_sidecars "$DATA" "$SITE"

cat > "$WORK/edge.toml" <<TOML
listen = "127.0.0.1:18080"
admin = "127.0.0.1:19090"
data_dir = "$DATA"
workers = 1
[limits]
max_connections_per_ip = 100000
[events]
enabled = $([[ -n "${EVENTS:-}" ]] && echo true || echo false)
TOML

# The peers send the response headers qpage sends by default (cache policy, CDN purge
# tags, security headers), so every server puts the same bytes on the wire and the
# client parses the same heads. PEER_HEADERS=0 leaves the peers' defaults.
DEPLOY=$(cat "$DATA/sites/bench/live")
NGINX_HEADERS= CADDY_HEADERS=
if [[ "${PEER_HEADERS:-1}" != 0 ]]; then
  HEADERS=(
    "Cache-Control|public, max-age=0, must-revalidate, s-maxage=300"
    "CDN-Cache-Control|max-age=300"
    "Surrogate-Key|site-bench deploy-$DEPLOY"
    "Cache-Tag|site-bench,deploy-$DEPLOY"
    "Referrer-Policy|strict-origin-when-cross-origin"
    "X-Content-Type-Options|nosniff"
    "X-Frame-Options|SAMEORIGIN"
  )
  for h in "${HEADERS[@]}"; do
    NGINX_HEADERS+="    add_header ${h%%|*} \"${h#*|}\";"$'\n'
    CADDY_HEADERS+="  header ${h%%|*} \"${h#*|}\""$'\n'
  done
  NGINX_HEADERS+="    gzip_vary on;"
fi

nginx_static_conf "$WORK/nginx.conf" "$SITE" 18081 on "$NGINX_HEADERS"

cat > "$WORK/Caddyfile" <<CADDY
{
  admin off
  auto_https off
}
:18082 {
  bind 127.0.0.1
  root * $SITE
$CADDY_HEADERS
  file_server {
    precompressed br gzip
  }
}
CADDY

if [[ -n "${SERVERS:-}" ]]; then
  read -r -a SERVERS <<<"$SERVERS"
else
  SERVERS=(qpage nginx caddy)
  if [[ -x "$SWS" ]]; then SERVERS+=(sws); else echo "static-web-server not found: skipped" >&2; fi
fi
read -r -a FILES <<<"${FILES:-small.html medium.html image.jpg}"
read -r -a ENCODINGS <<<"${ENCODINGS:-identity br}"

port_of() { case $1 in qpage) echo 18080;; nginx) echo 18081;; caddy) echo 18082;; sws) echo 18083;; qpage-b) echo 18084;; esac; }

# QPAGE_B=BINARY: a second qpage edge (e.g. a build with one change) measured as server
# "qpage-b" beside the others, for A/B comparisons of qpage changes.
if [[ -n "${QPAGE_B:-}" ]]; then
  sed -e 's|^listen = .*|listen = "127.0.0.1:18084"|' -e 's|^admin = .*|admin = "127.0.0.1:19094"|' \
    "$WORK/edge.toml" >"$WORK/edge-b.toml"
  [[ " ${SERVERS[*]} " == *" qpage-b "* ]] || SERVERS+=(qpage-b)
fi

start() {
  local name=$1
  # A leftover server (e.g. from an interrupted run) would be measured instead.
  if curl -s -o /dev/null --max-time 1 "http://127.0.0.1:$(port_of "$name")/"; then
    echo "port $(port_of "$name") is already taken: stop what listens there first" >&2
    exit 1
  fi
  case $name in
    qpage) taskset -c "$SERVER_CPU" "${QPAGE_SERVE[@]}" --config "$WORK/edge.toml" >"$WORK/qpage.log" 2>&1 & ;;
    qpage-b) taskset -c "$SERVER_CPU" "$QPAGE_B" "${QPAGE_SERVE[@]:1}" --config "$WORK/edge-b.toml" >"$WORK/qpage-b.log" 2>&1 & ;;
    nginx) taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" & ;;
    caddy) XDG_DATA_HOME=$WORK XDG_CONFIG_HOME=$WORK GOMAXPROCS=1 taskset -c "$SERVER_CPU" \
             caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 & ;;
    sws)   taskset -c "$SERVER_CPU" "$SWS" --host 127.0.0.1 --port 18083 --root "$SITE" \
             --threads-multiplier 1 --compression-static true --log-level error >"$WORK/sws.log" 2>&1 & ;;
  esac
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  for _ in $(seq 1 200); do
    if curl -s -o /dev/null -H 'Host: bench.test' "http://127.0.0.1:$(port_of "$name")/small.html"; then
      [[ -n "${SERVER_SHARE:-}" ]] && into_quota "$SERVER_PID"
      return 0
    fi
    sleep 0.05
  done
  echo "$name did not start" >&2
  return 1
}

stop() {
  kill "$SERVER_PID" 2>/dev/null || true
  wait "$SERVER_PID" 2>/dev/null || true
}

# utime+stime ticks of a process and its children (nginx's worker).
cpu_ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [[ -r /proc/$p/stat ]] || continue
    total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}

# Latency like "1.23ms" -> milliseconds.
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print "nan" }'; }

run_wrk() { # name url enc log [extra wrk args...]
  local name=$1 url=$2 enc=$3 log=$4; shift 4
  local hdr=()
  [[ $enc == br ]] && hdr=(-H 'Accept-Encoding: br')
  local before after
  # Warm up (fills caches), then measure.
  taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1s -H 'Host: bench.test' "${hdr[@]}" "$@" "$url" >/dev/null
  local perf_pid=
  if [[ -n "${PERF:-}" ]]; then
    # Samples the server's core (kernel and user) while wrk measures: perf report -i FILE.
    perf record -q -F 999 -g -C "${PERF_CPU:-$SERVER_CPU}" -o "${log%.txt}.perf.data" -- sleep "$DURATION" 2>/dev/null &
    perf_pid=$!
  fi
  before=$(cpu_ticks "$SERVER_PID")
  /usr/bin/time -f '%U %S' -o "${log%.txt}.time" \
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency -H 'Host: bench.test' "${hdr[@]}" "$@" "$url" >"$log"
  after=$(cpu_ticks "$SERVER_PID")
  [[ -n "$perf_pid" ]] && wait "$perf_pid"
  local rps p99 reqs non2xx
  rps=$(awk '/^Requests\/sec/ {print $2}' "$log")
  p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$log")")
  reqs=$(awk '/requests in/ {print $1}' "$log")
  non2xx=$(awk '/Non-2xx/ {print $NF}' "$log"); non2xx=${non2xx:-0}
  local cpu wrk_cpu
  cpu=$(awk -v d=$((after - before)) -v t="$TICK" -v r="$reqs" 'BEGIN { printf "%.2f", d / t * 1e6 / r }')
  # The load generator's own CPU per request: when it nears a full core, it, not the
  # server, limits req/s.
  wrk_cpu=$(awk -v r="$reqs" '{ printf "%.2f", ($1 + $2) * 1e6 / r; exit }' "${log%.txt}.time")
  echo -e "$rps\t$p99\t$cpu\t$reqs\t$non2xx\t$wrk_cpu"
}

echo -e "round\tserver\tfile\tencoding\trps\tp99_ms\tcpu_us_per_req\trequests\tnon2xx\twrk_cpu_us_per_req" >"$OUT/results.tsv"
declare -A PID_OF
for round in $(seq 1 "$ROUNDS"); do
  # All servers run side by side (idle but for the one under load), and each file is
  # measured on every server back to back, so the comparison spans seconds, not the
  # minutes over which this machine's load drifts. The order rotates each round.
  order=("${SERVERS[@]:$((round % ${#SERVERS[@]}))}" "${SERVERS[@]:0:$((round % ${#SERVERS[@]}))}")
  up=()
  for name in "${order[@]}"; do
    if start "$name"; then PID_OF[$name]=$SERVER_PID; up+=("$name"); else stop; fi
  done
  if [[ $round == 1 ]]; then
    # Each server's response heads, to compare what the servers put on the wire.
    for name in "${up[@]}"; do
      for file in "${FILES[@]}"; do
        for enc in "${ENCODINGS[@]}"; do
          hdr=(); [[ $enc == br ]] && hdr=(-H 'Accept-Encoding: br')
          curl -s -o /dev/null -D - -H 'Host: bench.test' "${hdr[@]}" \
            "http://127.0.0.1:$(port_of "$name")/$file" >>"$OUT/heads-$name.txt"
        done
      done
    done
  fi
  for file in "${FILES[@]}"; do
    for enc in "${ENCODINGS[@]}"; do
      for name in "${up[@]}"; do
        SERVER_PID=${PID_OF[$name]}
        res=$(run_wrk "$name" "http://127.0.0.1:$(port_of "$name")/$file" "$enc" "$OUT/wrk-$round-$name-$file-$enc.txt")
        echo -e "$round\t$name\t$file\t$enc\t$res" | tee -a "$OUT/results.tsv"
      done
    done
  done
  for name in "${up[@]}"; do
    SERVER_PID=${PID_OF[$name]}
    stop
  done
done
python3 "$HERE/summarize.py" "$OUT/results.tsv" | tee "$OUT/summary.md"

# --- qpage with $SITES sites, random Host per request
if [[ -n "${SKIP_MANY:-}" ]]; then
  echo "results in $OUT"
  exit 0
fi
MANY="$WORK/many-data"
python3 "$HERE/gen_sites.py" "$MANY" "$SITES"
sed "s|^data_dir = .*|data_dir = \"$MANY\"|" "$WORK/edge.toml" >"$WORK/many.toml"
echo -e "round\tsites\tstartup_s\trps\tp99_ms\tcpu_us_per_req\trequests\tnon2xx\twrk_cpu_us_per_req\trss_mib\tpeak_rss_mib" >"$OUT/many.tsv"
for round in $(seq 1 "$ROUNDS"); do
  t0=$(date +%s%N)
  taskset -c "$SERVER_CPU" "${QPAGE_SERVE[@]}" --config "$WORK/many.toml" >"$WORK/many.log" 2>&1 &
  SERVER_PID=$!
  PIDS+=("$SERVER_PID")
  until curl -sf -o /dev/null -H "Host: s$((SITES - 1)).bench.test" http://127.0.0.1:18080/; do sleep 0.005; done
  t1=$(date +%s%N)
  startup=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  res=$(SITES=$SITES run_wrk qpage http://127.0.0.1:18080/ identity "$OUT/wrk-many-$round.txt" -s "$HERE/random_host.lua")
  rss=$(awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$SERVER_PID/status")
  hwm=$(awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$SERVER_PID/status")
  echo -e "$round\t$SITES\t$startup\t$res\t$rss\t$hwm" | tee -a "$OUT/many.tsv"
  stop
done
echo "results in $OUT"
