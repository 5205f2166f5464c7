#!/usr/bin/env bash
# Image pipeline benchmark: qpage's AVIF (ravif) vs the source JPEGs and vs avifenc (aom),
# bytes against SSIM, encode time per megapixel, and a cached rebuild of 500 images.
# Figures go to docs/benchmarks.md ("Images") and docs/images.md (the curve).
#
# Needs: python3 with scikit-image + pillow (pip install scikit-image pillow),
#        avifenc/avifdec (apt-get install libavif-bin), nasm (for ravif's assembly).
# usage: benches/images/run.sh [WORK_DIR]     (RUNS=3 by default; the median is kept)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-${TMPDIR:-/tmp}/qpage-images-bench}"
runs="${RUNS:-3}"
source_q="${SOURCE_Q:-85}"
qpage_settings="${QPAGE_SETTINGS:-30:6,45:6,60:6,75:6,90:6,60:3,60:8,60:10}"
avifenc_q="${AVIFENC_Q:-16 24 32 40 48}"
avifenc_speeds="${AVIFENC_SPEEDS:-6}"
rm -rf "$work" && mkdir -p "$work"
cleanup() { jobs -p | xargs -r kill 2>/dev/null || true; }
trap cleanup INT TERM

for tool in avifenc avifdec python3 nasm; do
  command -v "$tool" >/dev/null || { echo "missing $tool (see the header of $0)"; exit 1; }
done
python3 -c 'import skimage, PIL' || { echo "pip install scikit-image pillow"; exit 1; }

echo "== corpus (scikit-image photographs, source JPEG quality $source_q)"
python3 "$here/prepare.py" "$work" "$source_q"
ls "$work/ref" | wc -l

echo "== JPEG curve (Pillow/libjpeg-turbo, 4:2:0, optimized Huffman)"
: > "$work/jpeg.csv"
for q in 50 60 70 80 85 90 95; do
  mkdir -p "$work/jpeg-q$q"
  python3 - "$work" "$q" <<'PY'
import os, sys
from PIL import Image
work, q = sys.argv[1], int(sys.argv[2])
for n in sorted(os.listdir(f"{work}/ref")):
    Image.open(f"{work}/ref/{n}").save(f"{work}/jpeg-q{q}/{n[:-4]}.jpg", quality=q, optimize=True)
PY
  python3 "$here/metric.py" "$work/ref" "$work/jpeg-q$q" jpg | sed "s/^/jpeg,$q,/" >> "$work/jpeg.csv"
done

echo "== qpage (ravif, one thread) at quality:speed $qpage_settings"
(cd "$root" && cargo build -q --release -p qpage-generator --example image_bench)
QPAGE_BENCH_MODE=encode QPAGE_BENCH_IN="$work/ref" QPAGE_BENCH_OUT="$work/qpage" \
  QPAGE_BENCH_SETTINGS="$qpage_settings" QPAGE_BENCH_RUNS="$runs" \
  cargo run -q --release --manifest-path "$root/Cargo.toml" -p qpage-generator --example image_bench | grep '^qpage,' > "$work/qpage.csv"
: > "$work/qpage-ssim.csv"
for d in "$work"/qpage/*/; do
  s="$(basename "$d")"
  python3 "$here/metric.py" "$work/ref" "$d" avif | sed "s/^/$s,/" >> "$work/qpage-ssim.csv"
done

echo "== avifenc (aom, -j 1, 4:4:4, 10-bit) at quantizers $avifenc_q, speeds $avifenc_speeds"
: > "$work/avifenc.csv"
for s in $avifenc_speeds; do
  for q in $avifenc_q; do
    out="$work/avifenc/q$q-s$s"; mkdir -p "$out"
    for f in "$work"/ref/*.png; do
      n="$(basename "$f" .png)"; times=()
      for _ in $(seq "$runs"); do
        t0=$(date +%s.%N)
        avifenc -c aom -j 1 -s "$s" -y 444 -d 10 --min "$q" --max "$q" "$f" "$out/$n.avif" >/dev/null
        t1=$(date +%s.%N)
        times+=("$(echo "$t1 - $t0" | bc)")
      done
      med=$(printf '%s\n' "${times[@]}" | sort -g | sed -n "$(( (runs + 1) / 2 ))p")
      echo "avifenc,$q,$s,$n,$(stat -c %s "$out/$n.avif"),$med" >> "$work/avifenc.csv"
    done
    python3 "$here/metric.py" "$work/ref" "$out" avif | sed "s/^/q$q-s$s,/" >> "$work/avifenc-ssim.csv"
  done
done

echo "== cached rebuild: 500 distinct photos (480 px wide, default settings)"
python3 - "$work" <<'PY'
import os, sys
from PIL import Image
work = sys.argv[1]
os.makedirs(f"{work}/rebuild-in", exist_ok=True)
names = sorted(os.listdir(f"{work}/ref"))
base = {}
for n in names:
    im = Image.open(f"{work}/ref/{n}")
    im = im.resize((480, round(480 * im.height / im.width)), Image.LANCZOS)
    path = f"{work}/rebuild-{n[:-4]}.jpg"
    im.save(path, quality=85, optimize=True)
    base[n] = open(path, "rb").read()
for i in range(500):
    n = names[i % len(names)]
    # Distinct files (distinct cache keys): a unique trailer after the JPEG's EOI marker.
    with open(f"{work}/rebuild-in/{i:03d}-{n[:-4]}.jpg", "wb") as f:
        f.write(base[n] + b"qpage-bench-%03d" % i)
PY
QPAGE_BENCH_MODE=rebuild QPAGE_BENCH_IN="$work/rebuild-in" QPAGE_BENCH_CACHE="$work/cache" \
  QPAGE_BENCH_RUNS="${REBUILD_RUNS:-5}" \
  cargo run -q --release --manifest-path "$root/Cargo.toml" -p qpage-generator --example image_bench | grep '^rebuild,' | tee "$work/rebuild.csv"

echo "== summary"
python3 "$here/summarize.py" "$work" "$source_q" | tee "$work/summary.md"
