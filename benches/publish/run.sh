#!/usr/bin/env bash
# Publish benchmark: a 10,000-file built site published with `qpage publish` to
# `qpage edge serve` over loopback, then one page changed and published again (and an
# unchanged re-publish); the same transfers with rsync (daemon on loopback) as the
# peer, in interleaved rounds. Also: time from sending finalize to the first public
# response served from the new deploy.
#
# The edge and the rsync daemon are pinned to core 0, the clients to core 1.
# Usage: benches/publish/run.sh           (from the repository root)
# Env:   FILES=10000 ROUNDS=5 OUT=target/bench-publish QPAGE=target/release/qpage SKIP_BUILD=1
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/benches/publish"
FILES=${FILES:-10000}
ROUNDS=${ROUNDS:-5}
OUT=${OUT:-$ROOT/target/bench-publish}
QPAGE=${QPAGE:-$ROOT/target/release/qpage}
TOKEN=bench-operator-token-0123456789abcdef

command -v rsync >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y rsync >/dev/null
[[ -z "${SKIP_BUILD:-}" ]] && (cd "$ROOT" && cargo build --release -p qpage)

mkdir -p "$OUT"
. "$ROOT/benches/lib.sh"
bench_work

PUB=127.0.0.1:$(free_port)
ADM=127.0.0.1:$(free_port)
RSP=$(free_port)

echo "generating $FILES files..."
python3 "$HERE/gen.py" "$WORK/dist" "$FILES"
du -sh "$WORK/dist"

QPAGE_OPERATOR_TOKEN=$TOKEN RUST_LOG=warn taskset -c 0 "$QPAGE" edge serve \
  --data "$WORK/data" --listen "$PUB" --admin "$ADM" 2>"$OUT/edge.log" &
PIDS+=($!)
mkdir -p "$WORK/rsync-dst"
cat > "$WORK/rsyncd.conf" <<CONF
use chroot = false
uid = $(id -u)
gid = $(id -g)
[dst]
path = $WORK/rsync-dst
read only = false
CONF
taskset -c 0 rsync --daemon --no-detach --config="$WORK/rsyncd.conf" --address=127.0.0.1 --port="$RSP" &
PIDS+=($!)
for _ in $(seq 100); do curl -fs "http://$ADM/healthz" >/dev/null && break; sleep 0.1; done
curl -fs -X PUT -H "Authorization: Bearer $TOKEN" -d '{"hosts":["bench.test"]}' \
  "http://$ADM/v1/sites/bench" >/dev/null

python3 "$HERE/bench.py" "$WORK/dist" "$QPAGE" "$ADM" "$PUB" "rsync://127.0.0.1:$RSP/dst/" \
  "$ROUNDS" "$TOKEN" "$FILES" | tee "$OUT/results.md"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$OUT/results.md"
