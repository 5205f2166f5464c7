#!/usr/bin/env bash
# Image pipeline benchmark: qpage's AVIF against the source JPEGs (bytes at equal perceived
# quality under three metrics), encode time per megapixel against avifenc (aom), and a
# cached rebuild of 500 images. Figures go to docs/benchmarks.md ("Images") and
# docs/images.md (the curve).
#
# Three corpora (CORPORA, default "skimage camera plasma"):
#   skimage  scikit-image's 12 photographs (lossless), source JPEGs = Pillow q85 re-saves
#   camera   the 12 photographs of Debian's mate-backgrounds (JPEGs as published), at the
#            site's widths; source = each re-encoded with its own quantization tables
#   plasma   the same for the 8 camera JPEGs of Debian's plasma-workspace-wallpapers
# Needs, and installs when missing: scikit-image + pillow (PyPI, into target/tools/pyimg),
# avifenc/avifdec (Debian libavif-bin), nasm (ravif/rav1e assembly), apt-get + dpkg (camera
# corpus), dssim 3.5.1 and ssimulacra2_rs 0.5.2 (cargo install into target/tools; or name
# your own with DSSIM_BIN / SSIMULACRA2_BIN).
#
# usage: benches/images/run.sh [WORK_DIR]
#   QPAGE_SETTINGS_SKIMAGE, QPAGE_SETTINGS_CAMERA   the bytes/quality sweeps (comma-separated
#                      image_bench settings, see generator/examples/image_bench.rs)
#   TIMED_SETTINGS     settings timed on the skimage corpus, ROUNDS interleaved rounds
#                      (default 3; the median round per image is kept), with avifenc
#   AVIFENC_Q          avifenc quantizers (skimage corpus), default "24 32"
#   BENCH_LOCK=FILE    hold `flock FILE` around each timed step (a shared machine's lock)
#   SKIP_REBUILD=1     skip the 500-image cached rebuild
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
work="${1:-${TMPDIR:-/tmp}/qpage-images-bench}"
rounds="${ROUNDS:-3}"
corpora="${CORPORA:-skimage camera plasma}"
default_setting="q75-s4-444-10-psy"
skimage_settings="${QPAGE_SETTINGS_SKIMAGE:-ravif:60:6,ravif:75:6,ravif:90:6,50:6:420,60:6:420,70:6:420,75:6:420,80:6:420,85:6:420,90:6:420,95:6:420,60:6:444,75:6:444,90:6:444,75:6:420:8,75:6:420:10:psnr,75:8:420,60:4:420,75:4:420,90:4:420,60:4:444,75:4:444,90:4:444}"
camera_settings="${QPAGE_SETTINGS_CAMERA:-60:6:420,75:6:420,85:6:420,90:6:420,95:6:420,98:6:420,ravif:75:6,ravif:90:6,ravif:95:6,75:4:420,90:4:420,60:4:444,75:4:444,85:4:444,90:4:444,95:4:444,98:4:444}"
timed_settings="${TIMED_SETTINGS:-ravif:75:6,75:4:444,75:6:444,75:6:420}"
avifenc_q="${AVIFENC_Q:-24 32}"
mkdir -p "$work"
locked() { if [ -n "${BENCH_LOCK:-}" ]; then flock "$BENCH_LOCK" "$@"; else "$@"; fi; }

# What the benchmark needs, installed when missing (into target/tools where not from apt).
cd "$root"
. scripts/lib.sh
need_build_tools
need_deb avifenc libavif-bin
need_deb avifdec libavif-bin
need_deb dpkg-deb dpkg
need_py_modules pyimg skimage=scikit-image PIL=pillow
DSSIM_BIN="${DSSIM_BIN:-$(command -v dssim || need_cargo_bin dssim dssim 3.5.1)}"
SSIMULACRA2_BIN="${SSIMULACRA2_BIN:-$(command -v ssimulacra2_rs || need_cargo_bin ssimulacra2_rs ssimulacra2_rs 0.5.2 --no-default-features)}"
export DSSIM_BIN SSIMULACRA2_BIN
cd - >/dev/null

(cd "$root" && cargo build -q --release -p qpage-generator --example image_bench)
bench="$root/target/release/examples/image_bench"

for corpus in $corpora; do
  c="$work/$corpus"
  mkdir -p "$c"
  echo "== corpus $corpus"
  case "$corpus" in
    skimage)
      [ -d "$c/ref" ] || python3 "$here/prepare.py" "$c" 85
      settings="$skimage_settings"
      source=jpeg-q85 ;;
    camera|plasma)
      if [ "$corpus" = plasma ]; then kind=plasma pkg=plasma-workspace-wallpapers
      else kind=mate pkg=mate-backgrounds; fi
      if [ ! -d "$c/ref" ]; then
        deb="$c/deb"; mkdir -p "$deb"
        (cd "$deb" && apt-get download "$pkg" >/dev/null && dpkg -x "$pkg"_*.deb x)
        python3 "$here/prepare_camera.py" "$deb/x" "$c" 480,960,1600 "$kind"
      fi
      settings="$camera_settings"
      source=jpeg-src ;;
    *) echo "unknown corpus $corpus"; exit 1 ;;
  esac

  echo "== $corpus: JPEG curve (Pillow/libjpeg-turbo, 4:2:0, optimized Huffman)"
  for q in 50 60 70 80 85 90 95; do
    [ -d "$c/jpeg-q$q" ] && continue
    mkdir -p "$c/jpeg-q$q"
    python3 - "$c" "$q" <<'PY'
import os, sys
from PIL import Image
c, q = sys.argv[1], int(sys.argv[2])
for n in sorted(os.listdir(f"{c}/ref")):
    Image.open(f"{c}/ref/{n}").save(f"{c}/jpeg-q{q}/{n[:-4]}.jpg", quality=q, optimize=True)
PY
  done

  echo "== $corpus: qpage AVIF (one thread) at $settings"
  QPAGE_BENCH_MODE=encode QPAGE_BENCH_IN="$c/ref" QPAGE_BENCH_OUT="$c/qpage" \
    QPAGE_BENCH_SETTINGS="$settings" QPAGE_BENCH_RUNS=1 "$bench" | grep '^qpage,' >> "$c/sweep-times.csv"

  if [ "$corpus" = skimage ]; then
    echo "== $corpus: encode time, $rounds interleaved rounds of $timed_settings and avifenc $avifenc_q"
    : > "$c/times.csv"
    for r in $(seq "$rounds"); do
      QPAGE_BENCH_MODE=encode QPAGE_BENCH_IN="$c/ref" QPAGE_BENCH_OUT="$c/timed" \
        QPAGE_BENCH_SETTINGS="$timed_settings" QPAGE_BENCH_RUNS=1 \
        locked "$bench" | grep '^qpage,' >> "$c/times.csv"
      for q in $avifenc_q; do
        out="$c/avifenc/avifenc-q$q-s6"; mkdir -p "$out"
        for f in "$c"/ref/*.png; do
          n="$(basename "$f" .png)"
          secs=$(locked python3 - "$f" "$out/$n.avif" "$q" <<'PY'
import subprocess, sys, time
src, dst, q = sys.argv[1:4]
t = time.perf_counter()
subprocess.run(["avifenc", "-c", "aom", "-j", "1", "-s", "6", "-y", "444", "-d", "10",
                "--min", q, "--max", q, src, dst], check=True, stdout=subprocess.DEVNULL)
print(f"{time.perf_counter() - t:.4f}")
PY
)
          echo "avifenc,avifenc-q$q-s6,$n,0,$(stat -c %s "$out/$n.avif"),$secs" >> "$c/times.csv"
        done
      done
    done
  else
    cp "$c/sweep-times.csv" "$c/times.csv"
  fi

  echo "== $corpus: scoring (RGB SSIM, dssim, SSIMULACRA 2)"
  dirs=("$c"/jpeg-* "$c"/qpage/*/)
  [ -d "$c/avifenc" ] && dirs+=("$c"/avifenc/*/)
  python3 "$here/score.py" "$c/ref" "$c/scores.csv" "${dirs[@]}"
  python3 "$here/compare.py" "$c/scores.csv" "$c/times.csv" "$source" "$default_setting" \
    | tee "$c/summary.md"
done

[ -n "${SKIP_REBUILD:-}" ] && exit 0
echo "== cached rebuild: 500 distinct photos (480 px wide, default settings)"
python3 - "$work" <<'PY'
import os, sys
from PIL import Image
work = sys.argv[1]
ref = f"{work}/skimage/ref"
os.makedirs(f"{work}/rebuild-in", exist_ok=True)
names = sorted(os.listdir(ref))
base = {}
for n in names:
    im = Image.open(f"{ref}/{n}")
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
rm -rf "$work/cache"
QPAGE_BENCH_MODE=rebuild QPAGE_BENCH_IN="$work/rebuild-in" QPAGE_BENCH_CACHE="$work/cache" \
  QPAGE_BENCH_RUNS="${REBUILD_RUNS:-5}" locked "$bench" | grep '^rebuild,' | tee "$work/rebuild.csv"
