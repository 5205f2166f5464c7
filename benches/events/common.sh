# Setup shared by the events benchmarks (sourced by run.sh and paired.sh; uses ROOT,
# and after benches/lib.sh's bench_work, EDGE, WORK, SERVER_CPU, LOAD_CPU and SINK_NICE).

# The page every request asks for (benches/edge/gen_files.py: small.html 4 KiB,
# medium.html 40 KiB); clients.lua reads it from EVENTS_PAGE.
PAGE=${PAGE:-small.html}
export EVENTS_PAGE=$PAGE

# Seconds of load before each measured run: a fresh edge first allocates its event
# rings and batch buffers (and ClickHouse's one insert a second holds some 10-60 of
# them), which a long-running edge has done once; measuring from the first second
# counted that start-up as the cost of events.
WARMUP=${WARMUP:-3}

# events_tools: wrk, ClickHouse and nats-server installed, the edge built (unless
# SKIP_BUILD is set) and EDGE set to it (unless given).
events_tools() {
  cd "$ROOT"
  . scripts/lib.sh
  need_deb wrk wrk
  need_deb clickhouse-server clickhouse-server
  need_nats_server
  local target=${CARGO_TARGET_DIR:-$ROOT/target}
  [[ -z "${SKIP_BUILD:-}" ]] && cargo build --release -p qpage-edge --example edge-serve
  EDGE=${EDGE:-"$target/release/examples/edge-serve"}
}

# events_setup: the benchmark's site in DATA, and nats-server (NATS_PORT, NATS_PID) and
# ClickHouse (CH_PORT, CH_PID) started on the load core (at nice SINK_NICE), or with
# SINK_IDLE set, on either core under SCHED_IDLE.
events_setup() {
  python3 "$ROOT/benches/edge/gen_files.py" "$WORK/site" >/dev/null
  DATA="$WORK/data"
  "$EDGE" add-site bench --host bench.test --data "$DATA" "$WORK/site" >/dev/null
  NATS_PORT=$(free_port)
  local sink=(nice -n "$SINK_NICE" taskset -c "$LOAD_CPU")
  if [[ -n "${SINK_IDLE:-}" ]]; then
    sink=(chrt --idle 0 taskset -c "$SERVER_CPU,$LOAD_CPU")
  fi
  "${sink[@]}" "$QPAGE_NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/js" >"$WORK/nats.log" 2>&1 &
  NATS_PID=$!
  PIDS+=($!)
  start_clickhouse "$ROOT" "${sink[@]}"
  CH_PID=${PIDS[-1]}
}

# nginx_events_conf MODE FILE PORT: nginx (one process) serving the benchmark's site on
# PORT, with (nginx-log) or without (nginx-off) its JSON access log, written to
# access.log beside FILE (an older one removed).
nginx_events_conf() {
  mkdir -p "$(dirname "$2")/nginx-tmp"
  rm -f "$(dirname "$2")/access.log"
  nginx_static_conf "$2" "$WORK/site" "$3" off "" off
  if [[ $1 == nginx-log ]]; then
    local log
    log=$(cat <<'LOG'
  log_format events escape=json '{"ts":$msec,"host":"$host","path":"$uri","status":$status,"bytes":$bytes_sent,"dur":$request_time,"proto":"$server_protocol","ref":"$http_referer","ua":"$http_user_agent","xff":"$http_x_forwarded_for","id":"$request_id"}';
LOG
)
    python3 - "$2" "$log" "$(dirname "$2")/access.log" <<'PY'
import sys
path, fmt, log = sys.argv[1:4]
conf = open(path).read().replace("  access_log off;", fmt + f"\n  access_log {log} events buffer=64k flush=1s;", 1)
open(path, "w").write(conf)
PY
  fi
}

# nginx_log_lines FILE: the lines of the access log beside nginx configuration FILE
# (0 without one); nginx writes its log buffer when it exits.
nginx_log_lines() {
  local log
  log="$(dirname "$1")/access.log"
  if [[ -f $log ]]; then wc -l <"$log"; else echo 0; fi
}

# config MODE PORT ADMIN: the edge's configuration for events MODE (off, file, nats,
# clickhouse), one worker thread, listening on PORT with its admin listener on ADMIN.
config() {
  cat <<TOML
listen = "127.0.0.1:$2"
admin = "127.0.0.1:$3"
data_dir = "$DATA"
workers = 1
[limits]
max_connections_per_ip = 100000
[events]
enabled = $([[ $1 == off ]] && echo false || echo true)
node_id = "bench"
trusted_proxies = ["127.0.0.1"]
[events.file]
enabled = $([[ $1 == file ]] && echo true || echo false)
TOML
  [[ $1 == nats ]] && printf '[events.nats]\nurl = "nats://127.0.0.1:%s"\n' "$NATS_PORT"
  [[ $1 == clickhouse ]] && printf '[events.clickhouse]\nurl = "http://127.0.0.1:%s"\n' "$CH_PORT"
  true
}

# metric ADMIN NAME{labels}: one value of the edge's /metrics on admin port ADMIN.
metric() {
  curl -s "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {print $2}'
}

# sink_pid MODE: the sink process of MODE (empty for off and file).
sink_pid() { case $1 in nats) echo "$NATS_PID" ;; clickhouse) echo "$CH_PID" ;; *) echo "" ;; esac; }

# event_counts MODE ADMIN: "emitted delivered dropped" from an edge's /metrics, once
# the last batch is made (the batcher's 200 ms timer) and every emitted event is
# delivered or dropped (waiting up to 10 s: ClickHouse gets one insert a second).
# Delivered and dropped are read before emitted, so that equal counts cannot hide a
# batch emitted between the reads.
event_counts() {
  local emitted delivered q s i
  if [[ $1 == off ]]; then emitted=$(metric "$2" qpage_events_emitted_total); echo "${emitted:-0} 0 0"; return; fi
  sleep 0.3
  for i in $(seq 1 50); do
    delivered=$(metric "$2" "qpage_events_delivered_total{sink=\"$1\"}")
    q=$(metric "$2" 'qpage_events_dropped_total{sink="queue"}'); s=$(metric "$2" "qpage_events_dropped_total{sink=\"$1\"}")
    emitted=$(metric "$2" qpage_events_emitted_total)
    (( ${delivered:-0} + q + s >= ${emitted:-0} )) && break
    sleep 0.2
  done
  echo "${emitted:-0} ${delivered:-0} $((q + s))"
}
