#!/usr/bin/env bash
# Instructions per request with access events off and on, counted by valgrind's
# callgrind: unlike CPU time on this shared machine, instruction counts barely move
# between runs. The edge (workers = 1) runs under callgrind; after a warm-up the
# counters are zeroed, wrk sends requests (clients.lua) for DURATION seconds, and the
# counters are dumped: instructions of the whole process (request path, events
# thread, sink clients) divided by the requests wrk completed. Per-function costs
# (self, per request) are written next to the totals.
#
# Usage: benches/events/callgrind.sh     (after `cargo build --release -p qpage-edge --example edge-serve`)
# Env:   MODES="off file nats clickhouse" DURATION=10 OUT=target/bench-events-callgrind EDGE=<binary>
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/benches/events"
DURATION=${DURATION:-10}
OUT=${OUT:-$ROOT/target/bench-events-callgrind}
MODES=(${MODES:-off file nats clickhouse})
cd "$ROOT"
. scripts/lib.sh
need_deb valgrind valgrind
need_deb wrk wrk
need_deb clickhouse-server clickhouse-server
need_nats_server
EDGE=${EDGE:-${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/edge-serve}
PORT=18490
ADMIN=19490
rm -rf "$OUT"; mkdir -p "$OUT"
. "$ROOT/benches/lib.sh"
bench_work

python3 "$ROOT/benches/edge/gen_files.py" "$WORK/site" >/dev/null
"$EDGE" add-site bench --host bench.test --data "$WORK/data" "$WORK/site" >/dev/null
NATS_PORT=$(free_port)
"$QPAGE_NATS_SERVER" -a 127.0.0.1 -p "$NATS_PORT" -js -sd "$WORK/js" >/dev/null 2>&1 &
PIDS+=($!)
start_clickhouse "$ROOT"

echo -e "mode\trequests\tinstructions\tinstructions_per_request" >"$OUT/results.tsv"
for mode in "${MODES[@]}"; do
  {
    printf 'listen = "127.0.0.1:%s"\nadmin = "127.0.0.1:%s"\ndata_dir = "%s"\nworkers = 1\n' "$PORT" "$ADMIN" "$WORK/data"
    printf '[limits]\nmax_connections_per_ip = 100000\n[events]\nenabled = %s\nnode_id = "bench"\ntrusted_proxies = ["127.0.0.1"]\n' "$([[ $mode == off ]] && echo false || echo true)"
    printf '[events.file]\nenabled = %s\n' "$([[ $mode == file ]] && echo true || echo false)"
    [[ $mode == nats ]] && printf '[events.nats]\nurl = "nats://127.0.0.1:%s"\n' "$NATS_PORT"
    [[ $mode == clickhouse ]] && printf '[events.clickhouse]\nurl = "http://127.0.0.1:%s"\n' "$CH_PORT"
    true
  } >"$WORK/$mode.toml"
  rm -rf "$WORK/data/events"
  valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$mode" "$EDGE" serve --config "$WORK/$mode.toml" >"$OUT/edge-$mode.log" 2>&1 &
  pid=$!
  PIDS+=("$pid")
  for _ in $(seq 1 300); do curl -sf -o /dev/null -H 'Host: bench.test' "http://127.0.0.1:$PORT/small.html" && break; sleep 0.2; done
  wrk -t1 -c8 -d2s -s "$HERE/clients.lua" "http://127.0.0.1:$PORT/small.html" >/dev/null
  callgrind_control -z "$pid" >/dev/null
  wrk -t1 -c8 -d"${DURATION}s" -s "$HERE/clients.lua" "http://127.0.0.1:$PORT/small.html" >"$OUT/wrk-$mode.txt"
  sleep 1.5 # the batcher's last tick and the deliveries
  callgrind_control -d "$pid" >/dev/null
  kill "$pid"; wait "$pid" 2>/dev/null || true
  reqs=$(awk '/requests in/ {print $1}' "$OUT/wrk-$mode.txt")
  dump=$(ls "$OUT"/callgrind."$mode".* | sort | head -1)
  python3 "$HERE/selfcost.py" "$dump" "$reqs" 40 >"$OUT/profile-$mode.txt"
  total=$(awk '/^summary:/ {print $2}' "$dump")
  echo -e "$mode\t$reqs\t$total\t$((total / reqs))" | tee -a "$OUT/results.tsv"
done
python3 - "$OUT/results.tsv" <<'PY' | tee "$OUT/summary.md"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
off = next((int(r[3]) for r in rows if r[0] == "off"), None)
print("| events | requests | instructions/request | vs off |")
print("|---|---|---|---|")
for m, reqs, tot, per in rows:
    vs = "-" if off is None or m == "off" else f"{(int(per) / off - 1) * 100:+.1f}% ({int(per) - off:+d})"
    print(f"| {m} | {reqs} | {int(per):,} | {vs} |")
PY
