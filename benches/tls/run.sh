#!/usr/bin/env bash
# TLS benchmark of the qpage edge.
#
# 1. Handshakes/s and server memory with 1 certificate and with CERTS (10,000) generated
#    certificates, session resumption off and on: `tls-bench handshakes` (TLS 1.3, a
#    random SNI among the names per connection, CONC handshakes at a time, no
#    certificate verification on the client side so the client spends its core on its
#    half of the key exchange only). With 10,000 certificates a first pass touches
#    every name once (the store loads certificates lazily; that pass's rate is
#    reported as "cold"), then the measured runs follow. Each connection carries one
#    HEAD request (Connection: close) so session tickets are read; the server's CPU
#    time per handshake (from /proc) is reported next to the rate.
# 2. HTTPS requests/s against nginx with the same certificate and the same 4 KiB file:
#    HTTP/1.1 with wrk (-t1 -cCONNS), HTTP/2 with h2load (-t1 -cCONNS -mSTREAMS). The
#    run stops if any response is not a 2xx (both tools count requests answered with
#    errors as requests).
#
# Servers are pinned to core SERVER_CPU with taskset (qpage with workers = 1, nginx with
# one worker), the load generators to core LOAD_CPU. Runs are interleaved over ROUNDS
# rounds; medians with (min-max).
#
# Usage: benches/tls/run.sh        (from the repository root)
# Env:   ROUNDS=3 DURATION=5 CERTS=10000 CONC=64 CONNS=32 STREAMS=10 OUT=target/bench-tls
#        SKIP_BUILD=1 SKIP_INSTALL=1 SKIP_HANDSHAKES=1 (only part 2)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5}
CERTS=${CERTS:-10000}
CONC=${CONC:-64}
CONNS=${CONNS:-32}
STREAMS=${STREAMS:-10}
OUT=${OUT:-$ROOT/target/bench-tls}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}

if [[ -z "${SKIP_INSTALL:-}" ]]; then
  . "$ROOT/scripts/lib.sh"
  need_deb wrk wrk && need_deb nginx nginx && need_deb h2load nghttp2-client
fi
if [[ -z "${SKIP_BUILD:-}" ]]; then
  (cd "$ROOT" && cargo build --release -p qpage-edge --example edge-serve --example tls-bench)
fi
SERVE="$TARGET/release/examples/edge-serve"
TB="$TARGET/release/examples/tls-bench"

rm -rf "$OUT"
mkdir -p "$OUT"
. "$ROOT/benches/lib.sh"
bench_work

echo "generating $CERTS certificates..." >&2
"$TB" gen --out "$WORK/gen" --count "$CERTS"
python3 "$ROOT/benches/edge/gen_files.py" "$WORK/site"
"$SERVE" add-site bench --host bench.test --data "$WORK/data1" "$WORK/site" >/dev/null
cp -a "$WORK/data1" "$WORK/data10k"
first=$(head -1 "$WORK/gen/names.txt")
mkdir -p "$WORK/data1/certs" "$WORK/data10k/certs"
cp "$WORK/gen/certs/$first.pem" "$WORK/data1/certs/"
cp "$WORK/gen/certs/"*.pem "$WORK/data10k/certs/"
head -1 "$WORK/gen/names.txt" > "$WORK/names1.txt"
cp "$WORK/gen/names.txt" "$WORK/names10k.txt"

# edge.toml for DATA and resumption on|off
edge_toml() {
  local data=$1 resume=$2 cache=0 tickets=false
  if [[ $resume == on ]]; then cache=100000; tickets=true; fi
  cat > "$WORK/edge-$(basename "$data")-$resume.toml" <<TOML
listen = "127.0.0.1:18080"
admin = "127.0.0.1:19090"
data_dir = "$data"
workers = 1
[limits]
max_connections_per_ip = 100000
[tls]
listen = "127.0.0.1:18443"
default_sni = "bench.test"
session_cache = $cache
session_tickets = $tickets
certificates = [{ cert = "$WORK/gen/bench.crt", key = "$WORK/gen/bench.key" }]
[tls.acme]
enabled = false
# nginx runs with access_log off; access events are off here too.
[events]
enabled = false
TOML
  echo "$WORK/edge-$(basename "$data")-$resume.toml"
}

# The edge benchmarks' nginx, on TLS, without precompressed sidecars (qpage compresses
# nothing here either).
nginx_static_conf "$WORK/nginx.conf" "$WORK/site" "18444 ssl http2" on "    ssl_certificate $WORK/gen/bench.crt;
    ssl_certificate_key $WORK/gen/bench.key;
    ssl_protocols TLSv1.2 TLSv1.3;
    ssl_session_cache shared:SSL:50m;" off

wait_port() {
  for _ in $(seq 1 400); do
    (exec 3<>/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on $1" >&2; exit 1
}

start_qpage() {
  local t0; t0=$(date +%s%N)
  taskset -c "$SERVER_CPU" "$SERVE" serve --config "$1" >"$WORK/qpage.log" 2>&1 &
  SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port 18443
  START_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
}
start_nginx() {
  taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx.conf" &
  SERVER_PID=$!; PIDS+=("$SERVER_PID"); wait_port 18444
}
stop_server() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; sleep 0.3; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }
# utime+stime ticks of a process and its children (nginx's worker).
cpu_ticks() {
  local total=0 p
  for p in $1 $(pgrep -P "$1" || true); do
    [[ -r /proc/$p/stat ]] && total=$((total + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$total"
}
TICK=$(getconf CLK_TCK)
# Server CPU microseconds per request: us_per_req TICKS_BEFORE TICKS_AFTER REQUESTS
us_per_req() { awk -v d=$(($2 - $1)) -v t="$TICK" -v r="$3" 'BEGIN { printf "%.2f", d / t * 1e6 / r }'; }

RES="$OUT/results.tsv"
echo -e "bench\tcase\tround\tvalue\textra" > "$RES"

for round in $(seq 1 "$ROUNDS"); do
  for certs in 1 10k; do
    [[ -n "${SKIP_HANDSHAKES:-}" ]] && continue
    for resume in off on; do
      start_qpage "$(edge_toml "$WORK/data$certs" "$resume")"
      idle=$(rss_kb "$SERVER_PID")
      echo -e "start-ms\t$certs\t$round\t$START_MS\t" >> "$RES"
      flags=(--cpu-pid "$SERVER_PID"); [[ $resume == on ]] && flags+=(--resume)
      # --prime: one handshake per name first (loads every certificate; with
      # resumption it also gives the client a ticket per name), reported apart.
      out=$(taskset -c "$LOAD_CPU" "$TB" handshakes --addr 127.0.0.1:18443 --names "$WORK/names$certs.txt" \
        --conc "$CONC" --secs "$DURATION" --prime "${flags[@]}")
      prime=$(grep '^prime:' <<<"$out" | sed 's/.*handshakes_per_s=\([0-9]*\).*/\1/')
      line=$(grep -v '^prime:' <<<"$out")
      [[ $certs == 10k ]] && echo -e "handshake-cold\t$certs-$resume\t$round\t$prime\t" >> "$RES"
      hs=$(sed 's/.*handshakes_per_s=\([0-9]*\).*/\1/' <<<"$line")
      resumed=$(sed 's/.*resumed=\([0-9]*\).*/\1/' <<<"$line")
      total=$(sed 's/.* handshakes=\([0-9]*\).*/\1/' <<<"$line")
      cpu=$(sed -n 's/.*server_cpu_us_per_handshake=\([0-9.]*\).*/\1/p' <<<"$line")
      util=$(sed -n 's/.*server_cpu_util=\([0-9.]*\).*/\1/p' <<<"$line")
      echo -e "handshake\t$certs-$resume\t$round\t$hs\tresumed=$resumed/$total" >> "$RES"
      echo -e "hs-cpu-us\t$certs-$resume\t$round\t$cpu\t" >> "$RES"
      echo -e "hs-util\t$certs-$resume\t$round\t$util\t" >> "$RES"
      echo -e "rss-idle-kb\t$certs-$resume\t$round\t$idle\t" >> "$RES"
      echo -e "rss-after-kb\t$certs-$resume\t$round\t$(rss_kb "$SERVER_PID")\t" >> "$RES"
      echo "round $round certs=$certs resumption=$resume: $line" >&2
      stop_server
    done
  done
  for server in qpage nginx; do
    if [[ $server == qpage ]]; then start_qpage "$(edge_toml "$WORK/data1" on)"; port=18443; else start_nginx; port=18444; fi
    url="https://127.0.0.1:$port/small.html"
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d1 -H 'Host: bench.test' "$url" >/dev/null
    t0=$(cpu_ticks "$SERVER_PID")
    out=$(taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"$DURATION" -H 'Host: bench.test' "$url")
    t1=$(cpu_ticks "$SERVER_PID")
    r=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
    echo -e "h1-cpu-us\t$server\t$round\t$(us_per_req "$t0" "$t1" "$(awk '/requests in/ {print $1}' <<<"$out")")\t" >> "$RES"
    bad=$(awk '/Non-2xx/ {print $5}' <<<"$out")
    [[ -n "$bad" ]] && { echo "wrk got $bad non-2xx responses from $server:" >&2; echo "$out" >&2; exit 1; }
    echo -e "h1-req/s\t$server\t$round\t$r\t" >> "$RES"
    # h2load sends the SNI and :authority of the URL; --connect-to points it at loopback.
    t0=$(cpu_ticks "$SERVER_PID")
    out=$(taskset -c "$LOAD_CPU" h2load -t1 -c"$CONNS" -m"$STREAMS" -D"$DURATION" --warm-up-time=1 \
        --connect-to="127.0.0.1:$port" "https://bench.test:$port/small.html")
    t1=$(cpu_ticks "$SERVER_PID")
    h=$(awk '/^finished in/ {print $4}' <<<"$out")
    ok2=$(awk '/^status codes:/ {print $3}' <<<"$out")
    done2=$(awk '/^requests:/ {print $6}' <<<"$out")
    [[ "$ok2" != "$done2" ]] && { echo "h2load: not every response was 2xx from $server:" >&2; echo "$out" >&2; exit 1; }
    echo -e "h2-req/s\t$server\t$round\t$h\t" >> "$RES"
    echo -e "h2-cpu-us\t$server\t$round\t$(us_per_req "$t0" "$t1" "$done2")\t" >> "$RES"
    echo "round $round $server: h1 $r req/s, h2 $h req/s" >&2
    stop_server
  done
done

python3 - "$RES" <<'PY' | tee "$OUT/summary.md"
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
def vals(b, c):
    return [float(r["value"]) for r in rows if r["bench"] == b and r["case"] == c and r["value"]]
def fmt(v):
    return f"{statistics.median(v):.0f} ({min(v):.0f}-{max(v):.0f})" if v else "-"
if vals("handshake", "1-off"):
    print("| certificates | resumption | handshakes/s median (min-max) | vs 1 cert | server CPU us/handshake | server core busy | resumed | RSS idle MiB | RSS after MiB |")
    print("|---|---|---|---|---|---|---|---|---|")
for resume in (("off", "on") if vals("handshake", "1-off") else ()):
    base = vals("handshake", f"1-{resume}")
    for certs in ("1", "10k"):
        v = vals("handshake", f"{certs}-{resume}")
        ratio = f"{statistics.median(v) / statistics.median(base):.3f}" if v and base else "-"
        idle = vals("rss-idle-kb", f"{certs}-{resume}")
        after = vals("rss-after-kb", f"{certs}-{resume}")
        cpu = vals("hs-cpu-us", f"{certs}-{resume}")
        util = vals("hs-util", f"{certs}-{resume}")
        res = [r["extra"] for r in rows if r["bench"] == "handshake" and r["case"] == f"{certs}-{resume}"]
        cpus = f"{statistics.median(cpu):.0f} ({min(cpu):.0f}-{max(cpu):.0f})" if cpu else "-"
        utils = f"{statistics.median(util):.2f}" if util else "-"
        print(f"| {certs} | {resume} | {fmt(v)} | {ratio} | {cpus} | {utils} | {res[-1].split('=')[1] if res else '-'} | {statistics.median(idle)/1024:.1f} | {statistics.median(after)/1024:.1f} |")
cold = vals("handshake-cold", "10k-off") + vals("handshake-cold", "10k-on")
if cold:
    print(f"\nFirst pass over all 10k names (each certificate read from disk on its first handshake): {fmt(cold)} handshakes/s")
start = vals("start-ms", "10k")
if start:
    print(f"Start to HTTPS listening with 10k certificates in data/certs: {fmt(start)} ms (1 certificate: {fmt(vals('start-ms', '1'))} ms)\n")
print("| protocol | server | req/s median (min-max) | qpage / nginx |")
print("|---|---|---|---|")
for b, label in (("h1-req/s", "HTTP/1.1 (wrk)"), ("h2-req/s", "HTTP/2 (h2load)")):
    q, n = vals(b, "qpage"), vals(b, "nginx")
    ratio = f"{statistics.median(q) / statistics.median(n):.2f}" if q and n else "-"
    print(f"| {label} | qpage | {fmt(q)} | {ratio} |")
    print(f"| | nginx | {fmt(n)} | |")
def fmt2(v):
    return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})" if v else "-"
print("\n| protocol | server | server CPU us/request median (min-max) | qpage / nginx (median of per-round ratios) |")
print("|---|---|---|---|")
for b, label in (("h1-cpu-us", "HTTP/1.1 (wrk)"), ("h2-cpu-us", "HTTP/2 (h2load)")):
    q, n = vals(b, "qpage"), vals(b, "nginx")
    per_round = [a / c for a, c in zip(q, n) if c]
    ratio = f"{statistics.median(per_round):.2f} ({', '.join(f'{x:.2f}' for x in per_round)})" if per_round else "-"
    print(f"| {label} | qpage | {fmt2(q)} | {ratio} |")
    print(f"| | nginx | {fmt2(n)} | |")
PY
