#!/usr/bin/env bash
# ClickHouse's own CPU per event by insert size: the edge's ClickHouse sink gathers
# batches into one insert per `insert_interval_ms` (docs/events.md); this shows why.
#
# 300,000 events of the edge's schema (made up, see below) are inserted into the
# docs/events.md table with `INSERT ... FORMAT JSONEachRow` over one kept-alive HTTP
# connection, paced at RATE events a second, in inserts of each SIZE in turn. Reported
# per size: the server's CPU time (utime+stime from /proc) during the inserts and in
# the 5 s after (merges), per event. ClickHouse runs on LOAD_CPU (core 1), as in run.sh.
#
# Usage: benches/events/clickhouse_inserts.sh      (from the repository root)
# Env:   SIZES="4096 15000 32768 75000" RATE=75000 OUT=target/bench-events-inserts
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SIZES=(${SIZES:-4096 15000 32768 75000})
RATE=${RATE:-75000}
LOAD_CPU=${LOAD_CPU:-1}
OUT=${OUT:-$ROOT/target/bench-events-inserts}
EVENTS=300000

cd "$ROOT"
. scripts/lib.sh
need_deb clickhouse-server clickhouse-server
. benches/lib.sh
bench_work
rm -rf "$OUT"
mkdir -p "$OUT"

# Events as the edge writes them: 12 fields of short text, 5 numbers; the id and the
# visitor hash vary, referrer and user-agent class take a few values.
python3 - "$WORK/events.ndjson" "$EVENTS" "$RATE" <<'PY'
import json, random, sys
path, n, rate = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(7)
with open(path, "w") as f:
    for i in range(n):
        f.write(json.dumps({
            "v": 1, "id": "5f0c2a9e41d7b3c8%016x" % i, "ts": 1765000000000 + i * 1000 // rate,
            "node": "bench", "site": "bench", "host": "bench.test", "path": "/small.html",
            "status": 200, "bytes": 4400, "dur_us": rnd.randint(20, 90), "proto": "HTTP/1.1",
            "tls": "", "cache": "hit", "ctype": "text/html; charset=utf-8",
            "ref": rnd.choice(["", "www.google.com", "t.co", "news.ycombinator.com"]),
            "ua": rnd.choice(["browser", "bot", "other"]), "bot": "",
            "visitor": "%016x" % rnd.getrandbits(64),
        }, separators=(",", ":")) + "\n")
PY

start_clickhouse "$ROOT" taskset -c "$LOAD_CPU"
CH_PID=${PIDS[-1]}
per_event() { awk -v d="$1" -v t="$(getconf CLK_TCK)" -v n="$EVENTS" 'BEGIN { printf "%.2f", d / t * 1e6 / n }'; }
sleep 3 # start-up work done

echo -e "size\tinserts\trows\tcpu_us_per_event\tafter_5s_us_per_event" | tee "$OUT/results.tsv"
for size in "${SIZES[@]}"; do
  curl -sf "http://127.0.0.1:$CH_PORT/" --data-binary "TRUNCATE TABLE qpage_events"
  sleep 2
  t0=$(cpu_ticks "$CH_PID")
  python3 - "$CH_PORT" "$size" "$RATE" "$WORK/events.ndjson" <<'PY'
import http.client, sys, time
port, size, rate, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
lines = open(path, "rb").read().splitlines(keepends=True)
conn = http.client.HTTPConnection("127.0.0.1", port)
start = time.monotonic()
for i in range(0, len(lines), size):
    ahead = start + i / rate - time.monotonic()
    if ahead > 0:
        time.sleep(ahead)
    conn.request("POST", "/?query=INSERT%20INTO%20qpage_events%20FORMAT%20JSONEachRow", b"".join(lines[i:i + size]))
    r = conn.getresponse()
    body = r.read()
    if r.status != 200:
        sys.exit(f"ClickHouse answered {r.status}: {body[:300]!r}")
PY
  t1=$(cpu_ticks "$CH_PID")
  sleep 5
  t2=$(cpu_ticks "$CH_PID")
  rows=$(curl -sf "http://127.0.0.1:$CH_PORT/?query=SELECT%20count()%20FROM%20qpage_events")
  [[ $rows == "$EVENTS" ]] || { echo "error: $rows rows in ClickHouse, $EVENTS inserted" >&2; exit 1; }
  echo -e "$size\t$(((EVENTS + size - 1) / size))\t$rows\t$(per_event $((t1 - t0)))\t$(per_event $((t2 - t1)))" | tee -a "$OUT/results.tsv"
done
