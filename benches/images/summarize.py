#!/usr/bin/env python3
"""Summarizes a benches/images/run.sh work folder as Markdown tables.

Quality is the mean DSSIM (1/SSIM - 1, lower is better) over the corpus; bytes are totals;
time is the sum of per-image median encode times divided by the corpus' megapixels.
"Equal quality" figures interpolate bytes (and time) log-linearly in DSSIM between the two
settings of a sweep that bracket the target.
"""
import csv
import math
import os
import sys
from collections import defaultdict

work, source_q = sys.argv[1], sys.argv[2]


def rows(name):
    path = os.path.join(work, name)
    return list(csv.reader(open(path))) if os.path.exists(path) else []


# jpeg.csv: jpeg,q,name,ssim,dssim,bytes
jpeg = defaultdict(list)
for _, q, name, ssim, dssim, size in rows("jpeg.csv"):
    jpeg[int(q)].append((float(ssim), float(dssim), int(size)))

# qpage.csv: qpage,q,s,name,pixels,bytes,secs ; qpage-ssim.csv: qQ-sS,name,ssim,dssim,bytes
pixels = {}
qtime = defaultdict(float)
for _, q, s, name, px, size, secs in rows("qpage.csv"):
    key = f"q{q}-s{s}"
    pixels[name] = int(px)
    qtime[key] += float(secs)
qsim = defaultdict(list)
for key, name, ssim, dssim, size in rows("qpage-ssim.csv"):
    qsim[key].append((float(ssim), float(dssim), int(size)))

atime = defaultdict(float)
for _, q, s, name, size, secs in rows("avifenc.csv"):
    atime[f"q{q}-s{s}"] += float(secs)
asim = defaultdict(list)
for key, name, ssim, dssim, size in rows("avifenc-ssim.csv"):
    asim[key].append((float(ssim), float(dssim), int(size)))

mp = sum(pixels.values()) / 1e6


def agg(entries):
    n = len(entries)
    return (sum(e[0] for e in entries) / n, sum(e[1] for e in entries) / n,
            sum(e[2] for e in entries))


def parse(key):
    q, s = key[1:].split("-s")
    return float(q), int(s)


print(f"Corpus: {len(pixels)} photographs, {mp:.2f} megapixels in all.\n")
print("| encoder | setting | total bytes | mean SSIM | mean DSSIM | s/MP (1 thread) |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for q in sorted(jpeg):
    ssim, dssim, size = agg(jpeg[q])
    print(f"| JPEG (libjpeg-turbo) | q={q} | {size:,} | {ssim:.4f} | {dssim:.4f} | |")
for key in sorted(qsim, key=lambda k: (parse(k)[1], parse(k)[0])):
    ssim, dssim, size = agg(qsim[key])
    q, s = parse(key)
    print(f"| qpage (ravif) | quality {q:g}, speed {s} | {size:,} | {ssim:.4f} | {dssim:.4f} "
          f"| {qtime[key] / mp:.2f} |")
for key in sorted(asim, key=lambda k: (parse(k)[1], parse(k)[0])):
    ssim, dssim, size = agg(asim[key])
    q, s = parse(key)
    print(f"| avifenc (aom) | quantizer {q:g}, speed {s} | {size:,} | {ssim:.4f} | {dssim:.4f} "
          f"| {atime[key] / mp:.2f} |")


def at_dssim(points, target):
    """points: [(dssim, bytes, secs)] -> (bytes, secs) interpolated at dssim=target."""
    pts = sorted(points)
    for (d0, b0, t0), (d1, b1, t1) in zip(pts, pts[1:]):
        if d0 <= target <= d1 and d0 > 0:
            f = (math.log(target) - math.log(d0)) / (math.log(d1) - math.log(d0))
            return (math.exp(math.log(b0) + f * (math.log(b1) - math.log(b0))),
                    t0 + f * (t1 - t0))
    return None


def sweep(sim, times, speed):
    return [(agg(v)[1], agg(v)[2], times[k]) for k, v in sim.items() if parse(k)[1] == speed]


print()
src_ssim, src_dssim, src_bytes = agg(jpeg[int(source_q)])
print(f"Source JPEGs (q={source_q}): {src_bytes:,} bytes, mean DSSIM {src_dssim:.4f}.\n")
speeds = sorted({parse(k)[1] for k in qsim})
for s in speeds:
    r = at_dssim(sweep(qsim, qtime, s), src_dssim)
    if r:
        print(f"- qpage speed {s} at the source JPEGs' DSSIM: {r[0]:,.0f} bytes = "
              f"{r[0] / src_bytes:.0%} of the JPEGs; {r[1] / mp:.2f} s/MP")
for s in sorted({parse(k)[1] for k in asim}):
    r = at_dssim(sweep(asim, atime, s), src_dssim)
    if r:
        print(f"- avifenc speed {s} at the source JPEGs' DSSIM: {r[0]:,.0f} bytes = "
              f"{r[0] / src_bytes:.0%} of the JPEGs; {r[1] / mp:.2f} s/MP")

rebuild = rows("rebuild.csv")
if rebuild:
    print()
    for r in rebuild:
        if r[1] == "first":
            print(f"- first build of {r[2]} photos: {float(r[3]):.1f} s "
                  f"({r[4]} decodes, {r[5]} encodes), {int(r[7]):,} bytes out")
        if r[1] == "median_warm":
            print(f"- cached rebuild of {r[2]} photos: median {float(r[3]) * 1000:.0f} ms")
