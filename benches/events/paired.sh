#!/usr/bin/env bash
# Cost of access events, measured in pairs: an edge with events off and an edge with
# events on (files, NATS or ClickHouse) run at the same time on the same core, each in
# a CPU cgroup of its own with equal weight, each loaded by its own pipelined wrk on
# the other core. Both edges see the same machine at every moment, which run.sh's
# one-after-the-other runs cannot give on a shared VM: there the same configuration
# moves by 10-20% from one run to the next (the host), more than the effect measured.
#
# Per pair: each edge's CPU time (the sum of its threads' run time from
# /proc/PID/task/*/schedstat, nanoseconds, the events thread included) divided by the
# requests its wrk completed. The cost of events is the ratio of the two, per round;
# the report gives its median and range over the rounds. Both edges are saturated
# (pipelined requests), so the ratio of their request rates says the same with more
# noise (it also moves with how the scheduler splits the core). After each pair the
# events edge's /metrics must show every request emitted and delivered, none dropped.
#
# The edges share the core's caches, and one's misses are partly caused by the other:
# the events' extra memory traffic slows the `off` edge a little too, so this method
# can understate their cost somewhat; run.sh (the edge alone on its core) is the
# complement. The `off`/`off` pair (mode off) measures the method's own spread.
#
# EDGE_SHARE=P limits each edge's cgroup to P% of the core (a CPU quota) instead of
# sharing it by weight. Then each edge is saturated at the same CPU budget even
# without pipelining (PIPELINE=0: one request per write, as browsers and CDNs send
# them), each wrk keeps room on the load core, and the ratio of the two request rates
# is the share of its capacity the events edge gives up, measured at every moment
# against the same machine. SINK_IDLE=1 (see run.sh) keeps nats-server and ClickHouse
# off both budgets.
#
# The peer: MODES may also name nginx-log, a pair of Debian's nginx processes, one
# without and one with the JSON access log of run.sh (common.sh), run the same way.
#
# Usage: benches/events/paired.sh            (from the repository root, as root: it
#        makes two cgroups under /sys/fs/cgroup)
# Env:   WARMUP=3 (seconds, see common.sh) ROUNDS=10 DURATION=4 CONNS=32 PIPELINE=16 (0: none) EDGE_SHARE= SINK_IDLE= MODES="off file nats clickhouse" PAGE=small.html
#        OUT=target/bench-events-paired SKIP_BUILD=1 EDGE=<binary> EDGE_OFF=<binary>
#        CLIENT_RMEM=1048576 (starting TCP receive buffer during the run, see benches/lib.sh; 0 = the machine's)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/benches/events"
ROUNDS=${ROUNDS:-10}
DURATION=${DURATION:-4}
CONNS=${CONNS:-32}
PIPELINE=${PIPELINE:-16}
OUT=${OUT:-$ROOT/target/bench-events-paired}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
SINK_NICE=0
MODES=(${MODES:-off file nats clickhouse})

. "$HERE/common.sh"
events_tools
if [[ " ${MODES[*]} " == *" nginx-"* ]]; then need_deb nginx nginx; fi
EDGE_OFF=${EDGE_OFF:-$EDGE}

. "$ROOT/benches/lib.sh"

# Two CPU cgroups of equal weight.
cpu_cgroup_root || exit 1
CG=$CPU_CG_ROOT
mkdir -p "$CG/qpage-bench-a" "$CG/qpage-bench-b" || {
  echo "paired.sh: cannot make cgroups under $CG (run as root)" >&2
  exit 1
}
set_cpu_quota "$CG/qpage-bench-a" "${EDGE_SHARE:-max}"
set_cpu_quota "$CG/qpage-bench-b" "${EDGE_SHARE:-max}"
into_cgroup() { echo "$1" >"$CG/$2/cgroup.procs"; } # pid cgroup: all its threads

rm -rf "$OUT"
mkdir -p "$OUT"
bench_work
client_rmem "${CLIENT_RMEM:-1048576}"
events_setup

run_ns() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d", s}'; }
start_edge() { # binary mode port admin cgroup -> pid (binary "nginx": nginx-off or nginx-log)
  local pid
  if [[ $1 == nginx ]]; then
    nginx_events_conf "$2" "$WORK/nginx-$3/nginx.conf" "$3"
    taskset -c "$SERVER_CPU" nginx -c "$WORK/nginx-$3/nginx.conf" >"$WORK/nginx-$3.log" 2>&1 &
    pid=$!
  else
    config "$2" "$3" "$4" >"$WORK/edge-$2-$3.toml"
    taskset -c "$SERVER_CPU" "$1" serve --config "$WORK/edge-$2-$3.toml" >"$WORK/edge-$2-$3.log" 2>&1 &
    pid=$!
  fi
  for _ in $(seq 1 200); do curl -sf -o /dev/null -H 'Host: bench.test' "http://127.0.0.1:$3/$PAGE" && break; sleep 0.05; done
  into_cgroup "$pid" "$5"
  echo "$pid"
}

if ((PIPELINE > 1)); then export EVENTS_PIPELINE=$PIPELINE; else unset EVENTS_PIPELINE; fi
echo -e "round\tmode\toff_rps\tmode_rps\toff_ns_per_req\tmode_ns_per_req\tcpu_ratio\trate_ratio\temitted\tdelivered\tdropped" >"$OUT/results.tsv"
for round in $(seq 1 "$ROUNDS"); do
  for mode in "${MODES[@]}"; do
    rm -rf "$DATA/events"
    # The two places (ports, cgroups, which edge and which wrk start first) swap
    # every round: in off/off pairs the second place got ~2% more requests through.
    if ((round % 2)); then oa=(18470 19470 qpage-bench-a); ob=(18471 19471 qpage-bench-b)
    else oa=(18471 19471 qpage-bench-b); ob=(18470 19470 qpage-bench-a); fi
    first=$(((round % 2) ? 0 : 1))
    # nginx-log pairs nginx without and with its access log.
    off_bin=$EDGE_OFF off_mode=off on_bin=$EDGE
    [[ $mode == nginx-* ]] && off_bin=nginx off_mode=nginx-off on_bin=nginx
    if ((first == 0)); then
      pa=$(start_edge "$off_bin" "$off_mode" "${oa[@]}"); pb=$(start_edge "$on_bin" "$mode" "${ob[@]}")
    else
      pb=$(start_edge "$on_bin" "$mode" "${ob[@]}"); pa=$(start_edge "$off_bin" "$off_mode" "${oa[@]}")
    fi
    PIDS+=("$pa" "$pb") # start_edge ran in a subshell
    warm=()
    for p in "${oa[0]}" "${ob[0]}"; do
      taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${WARMUP}s" -s "$HERE/clients.lua" "http://127.0.0.1:$p/$PAGE" >/dev/null &
      warm+=($!)
    done
    wait "${warm[@]}"
    a0=$(run_ns "$pa"); b0=$(run_ns "$pb")
    load() { # port output
      taskset -c "$LOAD_CPU" wrk -t1 -c"$CONNS" -d"${DURATION}s" -s "$HERE/clients.lua" "http://127.0.0.1:$1/$PAGE" >"$2" &
    }
    if ((first == 0)); then
      load "${oa[0]}" "$OUT/wrk-$round-$mode-off.txt"; wa=$!; load "${ob[0]}" "$OUT/wrk-$round-$mode.txt"; wb=$!
    else
      load "${ob[0]}" "$OUT/wrk-$round-$mode.txt"; wb=$!; load "${oa[0]}" "$OUT/wrk-$round-$mode-off.txt"; wa=$!
    fi
    wait "$wa" "$wb"
    a1=$(run_ns "$pa"); b1=$(run_ns "$pb")
    ra=$(awk '/requests in/ {print $1}' "$OUT/wrk-$round-$mode-off.txt")
    rb=$(awk '/requests in/ {print $1}' "$OUT/wrk-$round-$mode.txt")
    if [[ $mode == nginx-* ]]; then
      kill "$pa" "$pb"; wait "$pa" "$pb" 2>/dev/null || true # nginx writes its log buffer at exit
      emitted=$(nginx_log_lines "$WORK/nginx-${ob[0]}/nginx.conf") delivered=$emitted dropped=0
    else
      read -r emitted delivered dropped < <(event_counts "$mode" "${ob[1]}")
      kill "$pa" "$pb"; wait "$pa" "$pb" 2>/dev/null || true
    fi
    python3 - "$round" "$mode" "$ra" "$rb" "$((a1 - a0))" "$((b1 - b0))" "$DURATION" "$emitted" "$delivered" "$dropped" <<'PY' | tee -a "$OUT/results.tsv"
import sys
r, m, ra, rb, na, nb, d, em, de, dr = sys.argv[1:]
ra, rb, na, nb, d = int(ra), int(rb), int(na), int(nb), float(d)
ca, cb = na / ra, nb / rb
print(f"{r}\t{m}\t{ra / d:.0f}\t{rb / d:.0f}\t{ca:.0f}\t{cb:.0f}\t{cb / ca:.4f}\t{rb / ra:.4f}\t{em}\t{de}\t{dr}")
PY
  done
done
python3 "$HERE/paired_summary.py" "$OUT/results.tsv" | tee "$OUT/summary.md"
rmdir "$CG/qpage-bench-a" "$CG/qpage-bench-b" 2>/dev/null || true
