#!/usr/bin/env bash
# qpage vs Hugo generator benchmark. Prints a Markdown table on stdout.
#
#   benches/generator/run.sh [--quick] [--runs N] [--many-runs N] [--sizes "1000 10000"]
#                            [--sites N] [--fs "tmpfs disk"] [--many-fs "tmpfs disk"]
#                            [--no-build] [--hugo-only] [--keep]
#
# Full run: N = 1,000 and 10,000 pages, median of 5 interleaved runs (qpage, hugo, qpage, ...)
# on tmpfs (/dev/shm) and on disk (/var/tmp); plus 500 sites x 20 pages: one
# `qpage build --sites DIR` against 500 sequential `hugo` runs (5 runs; --many-runs 3 to save time).
# --quick: N = 200 and 1,000, 50 sites, 3 runs.
# Env: QPAGE (binary, default target/release/qpage), HUGO (default hugo),
#      TMPFS_DIR (default /dev/shm), DISK_DIR (default /var/tmp), SEED.
# Progress goes to stderr; set RESULTS=FILE to keep the raw samples ("label seconds rss_kib").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
QPAGE="${QPAGE:-$ROOT/target/release/qpage}"
HUGO="${HUGO:-hugo}"
TMPFS_DIR="${TMPFS_DIR:-/dev/shm}"
DISK_DIR="${DISK_DIR:-/var/tmp}"
SEED="${SEED:-20240501}"

SIZES="1000 10000"; RUNS=5; MANY_SITES=500; MANY_PAGES=20; MANY_RUNS=5
FSES="tmpfs disk"; MANY_FSES="tmpfs disk"; BUILD=1; HUGO_ONLY=0; KEEP=0
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) SIZES="200 1000"; RUNS=3; MANY_SITES=50; MANY_RUNS=3 ;;
    --runs) RUNS="$2"; shift ;;
    --many-runs) MANY_RUNS="$2"; shift ;;
    --sizes) SIZES="$2"; shift ;;
    --sites) MANY_SITES="$2"; shift ;;
    --fs) FSES="$2"; shift ;;
    --many-fs) MANY_FSES="$2"; shift ;;
    --no-build) BUILD=0 ;;
    --hugo-only) HUGO_ONLY=1; BUILD=0 ;;
    --keep) KEEP=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done

[ -x /usr/bin/time ] || { echo "needs /usr/bin/time (apt-get install time)" >&2; exit 1; }
command -v "$HUGO" >/dev/null || { echo "needs hugo" >&2; exit 1; }
command -v python3 >/dev/null || { echo "needs python3" >&2; exit 1; }

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

TMPDIRS=()
cleanup() {
  if [ -n "${SAMPLER:-}" ]; then kill "$SAMPLER" 2>/dev/null || true; fi
  if [ "$KEEP" = 0 ]; then for d in "${TMPDIRS[@]}"; do rm -rf "$d"; done; else log "kept: ${TMPDIRS[*]}"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
# mkwork BASE: sets W to a new work dir under BASE (not via $(...), so the trap sees it)
mkwork() { W="$(mktemp -d "$1/qpage-bench.XXXXXX")"; TMPDIRS+=("$W"); }

if [ -n "${RESULTS:-}" ]; then :; else RESULTS="$(mktemp /tmp/qpage-bench-results.XXXXXX)"; TMPDIRS+=("$RESULTS"); fi
: > "$RESULTS"

# ---- qpage binary -----------------------------------------------------------------------------
QPAGE_OK=0; QPAGE_WHY=""
if [ "$HUGO_ONLY" = 0 ]; then
  if [ "$BUILD" = 1 ]; then
    log "cargo build --release -p qpage"
    if ! (cd "$ROOT" && cargo build --release -p qpage >&2); then QPAGE_WHY="cargo build --release -p qpage failed"; fi
  fi
  if [ -z "$QPAGE_WHY" ] && [ ! -x "$QPAGE" ]; then QPAGE_WHY="no binary at $QPAGE"; fi
  [ -z "$QPAGE_WHY" ] && QPAGE_OK=1
else
  QPAGE_WHY="skipped (--hugo-only)"
fi

# ---- timing -----------------------------------------------------------------------------------
# timed LABEL CMD...: runs CMD under /usr/bin/time, appends "LABEL seconds peak_rss_kb" to RESULTS.
# Wall time from date +%s%N (ms resolution), peak RSS (KiB) from /usr/bin/time %M; for a shell
# loop %M is the largest single process among the waited-for children.
timed() {
  local label="$1"; shift
  local tf; tf="$(mktemp)"
  local t0 t1 rc=0
  t0=$(date +%s%N)
  /usr/bin/time -f '%M' -o "$tf" "$@" >/dev/null 2>"$tf.err" || rc=$?
  t1=$(date +%s%N)
  if [ "$rc" != 0 ]; then
    log "FAILED ($rc): $*"; sed -n '1,20p' "$tf.err" >&2
    rm -f "$tf" "$tf.err"; return "$rc"
  fi
  local rss; rss="$(tail -n1 "$tf")"
  rm -f "$tf" "$tf.err"
  local secs; secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.3f", (b-a)/1e9}')"
  echo "$label $secs $rss" >> "$RESULTS"
  log "  $label ${secs}s ${rss}KiB"
}

# HTML pages written, not counting Hugo's /page/1/ redirect stubs (qpage writes none).
count_html() { find "$@" -name '*.html' ! -path '*/page/1/index.html' | wc -l; }

# check that qpage can build SITE into OUT; on failure disable qpage with the reason.
qpage_check() {
  local site="$1" out="$2" err
  [ "$QPAGE_OK" = 1 ] || return 0
  rm -rf "$out"
  if ! err="$("$QPAGE" build "$site" --output "$out" 2>&1 >/dev/null)"; then
    QPAGE_OK=0; QPAGE_WHY="qpage build failed: $(echo "$err" | head -c 400 | tr '\n' ' ')"
    log "$QPAGE_WHY"
  fi
}

# ---- single site: N pages ---------------------------------------------------------------------
bench_site() {
  local fs="$1" base="$2" n="$3"
  mkwork "$base"; local w="$W"
  log "[$fs] generating $n pages in $w"
  python3 "$HERE/gen_corpus.py" site --pages "$n" --seed "$SEED" --qpage "$w/q" --hugo "$w/h"
  # warm-up (untimed): page cache, and a correctness check
  "$HUGO" --quiet -s "$w/h" -d "$w/hout"
  echo "files site-$n-$fs hugo $(count_html "$w/hout") $(du -sk "$w/hout" | cut -f1)" >> "$RESULTS"
  qpage_check "$w/q" "$w/qout"
  if [ "$QPAGE_OK" = 1 ]; then
    echo "files site-$n-$fs qpage $(count_html "$w/qout") $(du -sk "$w/qout" | cut -f1)" >> "$RESULTS"
  fi
  local i
  for i in $(seq "$RUNS"); do
    if [ "$QPAGE_OK" = 1 ]; then
      rm -rf "$w/qout"; sync
      timed "site-$n-$fs-qpage" "$QPAGE" build "$w/q" --output "$w/qout" || { QPAGE_OK=0; QPAGE_WHY="qpage build failed at N=$n"; }
    fi
    rm -rf "$w/hout"; sync
    timed "site-$n-$fs-hugo" "$HUGO" --quiet -s "$w/h" -d "$w/hout"
  done
  rm -rf "$w"
}

# ---- many sites: M sites x 20 pages -----------------------------------------------------------
hugo_loop() { # DIR: one hugo run per site, sequentially, output SITE/dist
  local s
  for s in "$1"/*/; do "$HUGO" --quiet -s "$s" -d "${s}dist" || return 1; done
}
export -f hugo_loop
export HUGO

bench_many() {
  local fs="$1" base="$2" m="$3"
  mkwork "$base"; local w="$W"
  log "[$fs] generating $m sites x $MANY_PAGES pages in $w"
  python3 "$HERE/gen_corpus.py" sites --sites "$m" --pages "$MANY_PAGES" --seed "$SEED" --qpage "$w/q" --hugo "$w/h"
  local clean_q="rm -rf $w/q/*/dist" clean_h="rm -rf $w/h/*/dist"
  bash -c "hugo_loop $w/h"
  echo "files many-$m-$fs hugo $(count_html "$w"/h/*/dist) $(du -skc "$w"/h/*/dist | tail -n1 | cut -f1)" >> "$RESULTS"
  if [ "$QPAGE_OK" = 1 ]; then
    local err
    if ! err="$("$QPAGE" build --sites "$w/q" 2>&1 >/dev/null)"; then
      QPAGE_OK=0; QPAGE_WHY="qpage build --sites failed: $(echo "$err" | head -c 400 | tr '\n' ' ')"; log "$QPAGE_WHY"
    else
      echo "files many-$m-$fs qpage $(count_html "$w"/q/*/dist) $(du -skc "$w"/q/*/dist | tail -n1 | cut -f1)" >> "$RESULTS"
    fi
  fi
  local i
  for i in $(seq "$MANY_RUNS"); do
    if [ "$QPAGE_OK" = 1 ]; then
      $clean_q; sync
      timed "many-$m-$fs-qpage" "$QPAGE" build --sites "$w/q" || { QPAGE_OK=0; QPAGE_WHY="qpage build --sites failed"; }
    fi
    $clean_h; sync
    timed "many-$m-$fs-hugo" bash -c "hugo_loop $w/h"
  done
  rm -rf "$w"
}

fsdir() { case "$1" in tmpfs) echo "$TMPFS_DIR" ;; disk) echo "$DISK_DIR" ;; *) echo "bad fs $1" >&2; exit 2 ;; esac; }

# compiler processes running now (anyone's: the machine is shared)
compilers() { ps -e -o comm= | grep -c -x -E 'rustc|cargo|cc|c\+\+|gcc|clang|ld|ld\.lld|cc1|cc1plus|lld|mold|build-script-b.*' || true; }
load_now() { echo "load $(cut -d' ' -f1-3 /proc/loadavg), compiler processes: $(compilers)"; }

LOADLOG="$(mktemp /tmp/qpage-bench-load.XXXXXX)"; TMPDIRS+=("$LOADLOG")
( while :; do echo "$(cut -d' ' -f1 /proc/loadavg) $(compilers)" >> "$LOADLOG"; sleep 5; done ) &
SAMPLER=$!
TOOLS="$("$HUGO" version | cut -d' ' -f1-2)"
if [ "$QPAGE_OK" = 1 ]; then
  TOOLS="$TOOLS; $("$QPAGE" --version) binary of $(date -u -r "$QPAGE" '+%Y-%m-%d %H:%M UTC'), tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
fi
START_LOAD="$(load_now)"; START_TIME="$(date -u '+%Y-%m-%d %H:%M UTC')"
log "start: $START_LOAD"
for fs in $FSES; do
  for n in $SIZES; do bench_site "$fs" "$(fsdir "$fs")" "$n"; done
done
for fs in $MANY_FSES; do
  [ "$MANY_SITES" -gt 0 ] && bench_many "$fs" "$(fsdir "$fs")" "$MANY_SITES"
done
END_LOAD="$(load_now)"
kill "$SAMPLER" 2>/dev/null || true
DURING="$(awk '{l+=$1; if ($1>m) m=$1; if ($2>0) c++; n++} END {if (n) printf "during the run: 1-min load mean %.1f, max %.1f; compiler processes running in %d%% of %d samples", l/n, m, 100*c/n, n}' "$LOADLOG")"
log "end: $END_LOAD"

# ---- report -----------------------------------------------------------------------------------
python3 - "$RESULTS" "$QPAGE_OK" "$QPAGE_WHY" "$START_TIME" "$START_LOAD" "$END_LOAD" "$DURING" "$TOOLS" <<'PY'
import statistics, sys
path, ok, why, when, l0, l1, during, tools = sys.argv[1:]
samples, files, order = {}, {}, []
for line in open(path):
    f = line.split()
    if f[0] == "files":
        files[(f[1], f[2])] = (int(f[3]), int(f[4]))
        continue
    label, secs, rss = f[0], float(f[1]), int(f[2])
    case, tool = label.rsplit("-", 1)
    if case not in order:
        order.append(case)
    samples.setdefault((case, tool), []).append((secs, rss))

def desc(case):
    kind, n, fs = case.split("-")
    n = int(n)
    return (f"{n:,} pages" if kind == "site" else f"{n} sites x 20 pages"), fs

def stat(xs):
    if not xs:
        return None
    t = [x[0] for x in xs]
    r = [x[1] for x in xs]
    return statistics.median(t), min(t), max(t), statistics.median(r) / 1024, max(r) / 1024, len(xs)

print(f"Run {when}; {l0} at start, {l1} at end; {during}.")
print(f"Tools: {tools}.")
if ok != "1":
    print(f"\n**qpage not measured**: {why}")
print()
print("| case | fs | qpage s, median (min–max) | Hugo s, median (min–max) | qpage/Hugo | qpage peak RSS MiB | Hugo peak RSS MiB | runs | HTML pages out (qpage / Hugo) |")
print("|---|---|---|---|---|---|---|---|---|")
for case in order:
    what, fs = desc(case)
    q, h = stat(samples.get((case, "qpage"))), stat(samples.get((case, "hugo")))
    fq = files.get((case, "qpage")); fh = files.get((case, "hugo"))
    qs = f"{q[0]:.2f} ({q[1]:.2f}–{q[2]:.2f})" if q else "n/a"
    hs = f"{h[0]:.2f} ({h[1]:.2f}–{h[2]:.2f})" if h else "n/a"
    ratio = f"**{q[0]/h[0]:.2f}**" if q and h else "n/a"
    qm = f"{q[4]:.0f}" if q else "n/a"
    hm = f"{h[4]:.0f}" if h else "n/a"
    nruns = max(q[5] if q else 0, h[5] if h else 0)
    fo = f"{fq[0] if fq else 'n/a'} / {fh[0] if fh else 'n/a'}"
    print(f"| {what} | {fs} | {qs} | {hs} | {ratio} | {qm} | {hm} | {nruns} | {fo} |")
PY
