#!/usr/bin/env bash
# User-space instructions per request of the qpage edge and of nginx serving the same
# file, counted by valgrind's callgrind. Instruction counts barely move with the load
# of other processes, unlike CPU time on a shared machine; they leave out the kernel
# (system calls), which `run.sh` measures with the rest of the CPU time.
#
# Each server runs alone under callgrind (one worker, access log / events off); after a
# warm-up the counters are zeroed, `wrk -t1 -c8` runs DURATION seconds, the counters
# are dumped and divided by the requests wrk completed. Per-function costs (self,
# per request) are written next to the totals.
#
# Usage: benches/edge/callgrind.sh   (after `cargo build --release -p qpage-edge --example edge-serve`)
# Env:   FILES="small.html medium.html" ENCODINGS="br identity" DURATION=6 OUT=target/bench-edge-callgrind
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/benches/edge"
DURATION=${DURATION:-6}
OUT=${OUT:-$ROOT/target/bench-edge-callgrind}
read -r -a FILES <<<"${FILES:-small.html medium.html}"
read -r -a ENCODINGS <<<"${ENCODINGS:-br identity}"
cd "$ROOT"
. scripts/lib.sh
. benches/lib.sh
need_deb valgrind valgrind
need_deb wrk wrk
need_deb nginx nginx
[[ -e /usr/lib/nginx/modules/ngx_http_brotli_static_module.so ]] ||
  DEBIAN_FRONTEND=noninteractive apt-get install -y libnginx-mod-http-brotli-static >/dev/null
EDGE=${CARGO_TARGET_DIR:-$ROOT/target}/release/examples/edge-serve
PORT=$(free_port)
ADMIN=$(free_port)
NGINX_PORT=$(free_port)

rm -rf "$OUT"; mkdir -p "$OUT"
bench_work

# The same files for both, nginx with qpage's .br/.gz variants as sidecars.
SITE="$WORK/site"
python3 "$HERE/gen_files.py" "$SITE" >/dev/null
"$EDGE" add-site bench --host bench.test --data "$WORK/data" "$SITE" >/dev/null
peer_sidecars "$WORK/data" "$SITE"
printf 'listen = "127.0.0.1:%s"\nadmin = "127.0.0.1:%s"\ndata_dir = "%s"\nworkers = 1\n[limits]\nmax_connections_per_ip = 100000\n[events]\nenabled = false\n' \
  "$PORT" "$ADMIN" "$WORK/data" >"$WORK/edge.toml"
nginx_static_conf "$WORK/nginx.conf" "$SITE" "$NGINX_PORT" off

echo -e "server\tfile\tencoding\trequests\tinstructions\tinstructions_per_request" >"$OUT/results.tsv"
for file in "${FILES[@]}"; do
  for enc in "${ENCODINGS[@]}"; do
    hdr=(-H 'Host: bench.test')
    [[ $enc == br ]] && hdr+=(-H 'Accept-Encoding: br')
    for server in qpage nginx; do
      tag="$server-$file-$enc"
      case $server in
        qpage) valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$tag" \
                 "$EDGE" serve --config "$WORK/edge.toml" >"$OUT/$tag.log" 2>&1 &
               port=$PORT ;;
        nginx) valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.$tag" \
                 nginx -c "$WORK/nginx.conf" >"$OUT/$tag.log" 2>&1 &
               port=$NGINX_PORT ;;
      esac
      pid=$!
      PIDS+=("$pid")
      up=
      for _ in $(seq 1 300); do
        curl -sf -o /dev/null "${hdr[@]}" "http://127.0.0.1:$port/$file" && { up=1; break; }
        sleep 0.2
      done
      [[ -n $up ]] || { echo "$server did not start (see $OUT/$tag.log)" >&2; exit 1; }
      wrk -t1 -c8 -d2s "${hdr[@]}" "http://127.0.0.1:$port/$file" >/dev/null
      callgrind_control -z "$pid" >/dev/null
      wrk -t1 -c8 -d"${DURATION}s" "${hdr[@]}" "http://127.0.0.1:$port/$file" >"$OUT/wrk-$tag.txt"
      callgrind_control -d "$pid" >/dev/null
      kill "$pid"; wait "$pid" 2>/dev/null || true
      reqs=$(awk '/requests in/ {print $1}' "$OUT/wrk-$tag.txt")
      non2xx=$(awk '/Non-2xx/ {print $NF}' "$OUT/wrk-$tag.txt")
      [[ -z $non2xx ]] || { echo "$server answered $non2xx non-2xx responses" >&2; exit 1; }
      dump=$(ls "$OUT"/callgrind."$tag".* | sort | tail -1)
      python3 "$ROOT/benches/events/selfcost.py" "$dump" "$reqs" 40 >"$OUT/profile-$tag.txt"
      total=$(awk '/^summary:/ {print $2}' "$dump")
      echo -e "$server\t$file\t$enc\t$reqs\t$total\t$((total / reqs))" | tee -a "$OUT/results.tsv"
    done
  done
done
python3 - "$OUT/results.tsv" <<'PY' | tee "$OUT/summary.md"
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])][1:]
by = {}
for server, f, enc, reqs, tot, per in rows:
    by.setdefault((f, enc), {})[server] = int(per)
print("| file | Accept-Encoding | qpage instructions/request | nginx instructions/request | qpage/nginx |")
print("|---|---|---|---|---|")
for (f, enc), d in by.items():
    q, n = d.get("qpage"), d.get("nginx")
    ratio = f"{q / n:.2f}" if q and n else "-"
    print(f"| {f} | {enc} | {q:,} | {n:,} | {ratio} |")
PY
