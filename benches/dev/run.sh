#!/usr/bin/env bash
# qpage dev vs hugo server: time from saving one page to the changed page being served,
# on the generator benchmark's corpus. Prints a Markdown table on stdout.
#
#   benches/dev/run.sh [--pages N] [--edits N] [--rounds N] [--hugo-rounds N]
#                      [--hugo-edits N] [--kinds K,K] [--no-build] [--keep]
#
# Default: N = 10,000 pages, 3 rounds (qpage, hugo, qpage, hugo, ...), 20 edits per
# round, each edit appending a paragraph to a different post. Samples from all rounds
# are pooled: median, p10 and p90 per tool, and the ratio of the medians.
# Hugo rebuilds the whole site on each edit (minutes per round): --hugo-rounds N runs
# it in the first N rounds only (0: not at all), --hugo-edits N makes N edits per
# Hugo round (default: --edits).
# --kinds: the kinds of edit (measure.py --kind), each measured in every round and
# reported on its own line: text (default), date, tags, new. The last three change
# the site's structure (listings, pagination, term pages).
# Env: QPAGE (default target/release/qpage), HUGO (default hugo), WORK_DIR (default
# /dev/shm), SEED. Progress on stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
QPAGE="${QPAGE:-$ROOT/target/release/qpage}"
HUGO="${HUGO:-hugo}"
WORK_DIR="${WORK_DIR:-/dev/shm}"
SEED="${SEED:-20240501}"
PAGES=10000; EDITS=20; ROUNDS=3; BUILD=1; KEEP=0; HUGO_ROUNDS=""; HUGO_EDITS=""; KINDS=text
while [ $# -gt 0 ]; do
  case "$1" in
    --pages) PAGES="$2"; shift ;;
    --edits) EDITS="$2"; shift ;;
    --rounds) ROUNDS="$2"; shift ;;
    --hugo-rounds) HUGO_ROUNDS="$2"; shift ;;
    --hugo-edits) HUGO_EDITS="$2"; shift ;;
    --kinds) KINDS="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
HUGO_ROUNDS="${HUGO_ROUNDS:-$ROUNDS}"; HUGO_EDITS="${HUGO_EDITS:-$EDITS}"
[ "$HUGO_ROUNDS" = 0 ] || command -v "$HUGO" >/dev/null || { echo "needs hugo (apt-get install hugo)" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }
log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

W="$(mktemp -d "$WORK_DIR/qpage-devbench.XXXXXX")"
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  if [ "$KEEP" = 0 ]; then rm -rf "$W"; else log "kept $W"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "$BUILD" = 1 ]; then
  log "cargo build --release -p qpage"
  (cd "$ROOT" && cargo build --release -p qpage >&2)
fi
[ -x "$QPAGE" ] || { echo "no qpage binary at $QPAGE" >&2; exit 1; }

log "generating $PAGES pages in $W"
python3 "$ROOT/benches/generator/gen_corpus.py" site --pages "$PAGES" --seed "$SEED" --qpage "$W/q" --hugo "$W/h"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# wait_up PORT PATH: until the server answers 200 for PATH (at most 600 s).
wait_up() {
  local i
  for i in $(seq 1 6000); do
    if python3 - "$1" "$2" <<'PY' 2>/dev/null; then return 0; fi
import http.client, sys
c = http.client.HTTPConnection("127.0.0.1", int(sys.argv[1]), timeout=2)
c.request("GET", sys.argv[2]); r = c.getresponse(); r.read()
sys.exit(0 if r.status == 200 else 1)
PY
    sleep 0.1
  done
  echo "server on port $1 did not come up" >&2; return 1
}

# Pages edited: spread over the corpus, the same for both tools.
EDIT_PAGES="$(python3 -c "import random; r=random.Random(7); print(','.join(str(r.randrange($PAGES)) for _ in range($EDITS)))")"
RESULTS="$W/samples"; : > "$RESULTS"

run_tool() {
  local tool="$1" round="$2" port; port="$(free_port)"
  local t0 t1 edits="$EDITS"
  [ "$tool" = qpage ] || edits="$HUGO_EDITS"
  t0=$(date +%s%N)
  if [ "$tool" = qpage ]; then
    "$QPAGE" dev "$W/q" --port "$port" --output "$W/qout" 2>"$W/qpage-dev.$round.log" &
  else
    "$HUGO" server -s "$W/h" --port "$port" --bind 127.0.0.1 \
      >"$W/hugo-server.$round.log" 2>&1 &
  fi
  SERVER_PID=$!
  wait_up "$port" "/blog/post-00000/"
  t1=$(date +%s%N)
  log "[$tool round $round] serving after $(( (t1 - t0) / 1000000 )) ms; $edits edits; load $(cut -d' ' -f1-3 /proc/loadavg)"
  sleep 1
  local kind
  for kind in ${KINDS//,/ }; do
    python3 "$HERE/measure.py" --port "$port" --site "$W/$( [ "$tool" = qpage ] && echo q || echo h )" \
      --edits "$edits" --pages "$EDIT_PAGES" --tag "${tool}${round}" --kind "$kind" \
      --settle "$( [ "$kind" = text ] && echo 0.5 || echo 1.5 )" \
      | sed "s/^/$tool $kind /" >> "$RESULTS"
    sleep 2
  done
  kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""
}

for r in $(seq 1 "$ROUNDS"); do
  run_tool qpage "$r"
  if [ "$r" -le "$HUGO_ROUNDS" ]; then run_tool hugo "$r"; fi
done
grep -E 'rebuilt|re-rendered|full rebuild' "$W/qpage-dev.$ROUNDS.log" | tail -n 3 >&2 || true

HUGO_VERSION="none"
[ "$HUGO_ROUNDS" = 0 ] || HUGO_VERSION="$("$HUGO" version | head -c 60)"
python3 - "$RESULTS" "$PAGES" "$EDITS" "$ROUNDS" "$HUGO_VERSION" <<'PY'
import statistics, sys
path, pages, edits, rounds, hugo = sys.argv[1:6]
s = {}
for line in open(path):
    tool, kind, ms = line.split()
    s.setdefault((tool, kind), []).append(float(ms))
def q(xs, p):
    xs = sorted(xs); k = (len(xs) - 1) * p; f = int(k); c = min(f + 1, len(xs) - 1)
    return xs[f] + (xs[c] - xs[f]) * (k - f)
print(f"| {pages} pages, {rounds} rounds x {edits} edits | median ms | p10 ms | p90 ms | min ms | max ms | samples |")
print("|---|---:|---:|---:|---:|---:|---:|")
kinds = sorted({k for _, k in s}, key=lambda k: ["text", "date", "tags", "new"].index(k))
for kind in kinds:
    for tool, label in (("qpage", "qpage dev"), ("hugo", f"hugo server ({hugo.strip()})")):
        xs = s.get((tool, kind))
        if xs:
            print(f"| {label}, {kind} edits | {statistics.median(xs):.1f} | {q(xs, .1):.1f} | {q(xs, .9):.1f} | {min(xs):.1f} | {max(xs):.1f} | {len(xs)} |")
print()
for kind in kinds:
    h, qp = s.get(("hugo", kind)), s.get(("qpage", kind))
    if h and qp:
        print(f"{kind} edits: hugo median / qpage median: {statistics.median(h) / statistics.median(qp):.1f}x")
PY
