#!/usr/bin/env bash
# Instructions per TLS handshake in the qpage edge with 1 and with CERTS (10,000)
# certificates, counted by valgrind's callgrind: deterministic where wall-clock rates
# on a shared machine are not. The server runs under callgrind with instrumentation
# off while a first pass touches every name (loading each certificate), then counting
# is switched on for HANDSHAKES handshakes with a random SNI (resumption off), and the
# instructions executed by the whole server process are divided by that count.
#
# Usage: benches/tls/instructions.sh   (after benches/tls/run.sh has built the tools)
# Env:   CERTS=10000 SECS=20 CONC=16 OUT=target/bench-tls-ir
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CERTS=${CERTS:-10000}
SECS=${SECS:-20}
CONC=${CONC:-16}
OUT=${OUT:-$ROOT/target/bench-tls-ir}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
SERVE="$TARGET/release/examples/edge-serve"
TB="$TARGET/release/examples/tls-bench"
command -v valgrind >/dev/null || { echo "valgrind is missing: sudo apt-get install -y valgrind" >&2; exit 1; }
rm -rf "$OUT"; mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'kill $VPID 2>/dev/null || true; wait 2>/dev/null || true; rm -rf "$WORK"' EXIT
VPID=
"$TB" gen --out "$WORK/gen" --count "$CERTS"
python3 "$ROOT/benches/edge/gen_files.py" "$WORK/site"
for certs in 1 many; do
  data="$WORK/data-$certs"
  "$SERVE" add-site bench --host bench.test --data "$data" "$WORK/site" >/dev/null
  mkdir -p "$data/certs"
  if [[ $certs == 1 ]]; then
    head -1 "$WORK/gen/names.txt" > "$WORK/names-$certs.txt"
  else
    cp "$WORK/gen/names.txt" "$WORK/names-$certs.txt"
  fi
  while read -r n; do cp "$WORK/gen/certs/$n.pem" "$data/certs/"; done < "$WORK/names-$certs.txt"
  cat > "$WORK/edge-$certs.toml" <<TOML
listen = "127.0.0.1:28080"
admin = ""
data_dir = "$data"
workers = 1
[limits]
max_connections_per_ip = 100000
[tls]
listen = "127.0.0.1:28443"
session_cache = 0
session_tickets = false
[tls.acme]
enabled = false
[events]
enabled = false
TOML
  valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$OUT/callgrind-$certs.out" \
    "$SERVE" serve --config "$WORK/edge-$certs.toml" >"$OUT/server-$certs.log" 2>&1 &
  VPID=$!
  for _ in $(seq 1 600); do (exec 3<>/dev/tcp/127.0.0.1/28443) 2>/dev/null && break; sleep 0.1; done
  "$TB" handshakes --addr 127.0.0.1:28443 --names "$WORK/names-$certs.txt" --conc "$CONC" --secs 1 --prime >/dev/null
  callgrind_control -i on "$VPID" >/dev/null
  line=$("$TB" handshakes --addr 127.0.0.1:28443 --names "$WORK/names-$certs.txt" --conc "$CONC" --secs "$SECS")
  callgrind_control -i off "$VPID" >/dev/null
  callgrind_control -d "$VPID" >/dev/null
  sleep 1
  kill -INT "$VPID"; wait "$VPID" 2>/dev/null || true; VPID=
  n=$(sed 's/.* handshakes=\([0-9]*\).*/\1/' <<<"$line")
  ir=$(cat "$OUT"/callgrind-$certs.out* | awk '/^totals:/ {s+=$2} END {printf "%.0f", s}')
  echo -e "$certs\t$n\t$ir" >> "$OUT/ir.tsv"
  echo "certs=$certs handshakes=$n instructions=$ir" >&2
done
python3 - "$OUT/ir.tsv" <<'PY'
import sys
rows = [l.split("\t") for l in open(sys.argv[1]).read().split("\n") if l]
per = {r[0]: int(r[2]) / int(r[1]) for r in rows}
print(f"instructions per handshake: 1 certificate {per['1']:.0f}, many {per['many']:.0f}, ratio {per['many'] / per['1']:.3f}")
PY
