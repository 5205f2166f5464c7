#!/usr/bin/env python3
"""Re-scores a benches/images/run.sh work folder with a perceptual metric tool, and
reports qpage's AVIF bytes against the source JPEGs at equal quality.

usage: dssim_tool.py WORK_DIR TOOL_BINARY [SOURCE_Q]
TOOL_BINARY is Kornel Lesinski's `dssim` (multi-scale SSIM in L*a*b*; prints 1/SSIM-1,
lower is better) or `ssimulacra2_rs` (SSIMULACRA 2; prints a 0-100 score, higher is
better, reported here as the distance 100 - score). Needs avifdec (libavif-bin) to decode
AVIF to PNG first. Prints a Markdown table.
"""
import math
import os
import subprocess
import sys
import tempfile

work, dssim_bin = sys.argv[1], sys.argv[2]
source_q = int(sys.argv[3]) if len(sys.argv) > 3 else 85
ref_dir = os.path.join(work, "ref")
names = sorted(os.path.splitext(n)[0] for n in os.listdir(ref_dir))
tmp = tempfile.mkdtemp()
SSIMULACRA = "ssimulacra" in os.path.basename(dssim_bin)
METRIC = "100 - SSIMULACRA2" if SSIMULACRA else "DSSIM (dssim tool)"


def score(folder, ext):
    """(total bytes, mean dssim) of folder/NAME.ext against the references."""
    total, scores = 0, []
    for n in names:
        path = os.path.join(folder, f"{n}.{ext}")
        if not os.path.exists(path):
            return None
        total += os.path.getsize(path)
        png = path
        if ext in ("avif", "jpg"):
            png = os.path.join(tmp, f"{os.path.basename(folder)}-{n}.png")
            if ext == "avif":
                subprocess.run(["avifdec", path, png], check=True, stdout=subprocess.DEVNULL)
            else:
                from PIL import Image
                Image.open(path).convert("RGB").save(png)
        ref = os.path.join(ref_dir, f"{n}.png")
        if SSIMULACRA:
            out = subprocess.run([dssim_bin, "image", ref, png],
                                 check=True, capture_output=True, text=True).stdout
            scores.append(100.0 - float(out.split()[-1]))
        else:
            out = subprocess.run([dssim_bin, ref, png],
                                 check=True, capture_output=True, text=True).stdout
            scores.append(float(out.split()[0]))
    return total, sum(scores) / len(scores)


def at_quality(curve, target):
    """Bytes at DSSIM `target`, interpolating log(bytes) in log(dssim)."""
    pts = sorted(curve, key=lambda p: p[1])
    for (b0, d0), (b1, d1) in zip(pts, pts[1:]):
        if d0 <= target <= d1:
            t = (math.log(target) - math.log(d0)) / (math.log(d1) - math.log(d0))
            return math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0)))
    return None


jpeg = {}
for q in (50, 60, 70, 80, 85, 90, 95):
    r = score(os.path.join(work, f"jpeg-q{q}"), "jpg")
    if r:
        jpeg[q] = r
qpage = {}
for setting in sorted(os.listdir(os.path.join(work, "qpage"))):
    r = score(os.path.join(work, "qpage", setting), "avif")
    if r:
        qpage[setting] = r

print(f"| encoder | setting | total bytes | mean {METRIC} |")
print("| --- | --- | ---: | ---: |")
for q, (b, d) in sorted(jpeg.items()):
    print(f"| JPEG{' (source)' if q == source_q else ''} | q={q} | {b:,} | {d:.5f} |")
for s, (b, d) in qpage.items():
    print(f"| qpage AVIF | {s} | {b:,} | {d:.5f} |")

src_bytes, src_d = jpeg[source_q]
curve = [qpage[s] for s in qpage if s.endswith("-s6")]
eq = at_quality(curve, src_d)
print()
if eq:
    print(f"At the source JPEGs' {METRIC} ({src_d:.5f}): qpage AVIF {eq:,.0f} bytes = "
          f"{100 * eq / src_bytes:.1f}% of the source JPEGs ({src_bytes:,} bytes).")
default = qpage.get("q75-s6")
if default:
    jb = at_quality(list(jpeg.values()), default[1])
    if jb:
        print(f"At qpage's default (q75-s6, {METRIC} {default[1]:.5f}): JPEG of equal quality "
              f"{jb:,.0f} bytes; qpage {default[0]:,} = {100 * default[0] / jb:.1f}%.")
