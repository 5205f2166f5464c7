#!/usr/bin/env python3
"""Bytes against perceived quality, from score.py's CSV and the encoder timings: a
Markdown table per setting, and for each metric the AVIF bytes needed to match the source
JPEGs' quality.

usage: compare.py SCORES_CSV TIMES_CSV SOURCE_SETTING DEFAULT_SETTING
  SCORES_CSV        score.py output (setting,name,bytes,ssim_rgb,dssim,ssimulacra2)
  TIMES_CSV         image_bench output (qpage,setting,name,pixels,bytes,seconds), one row
                    per image and round (the median round per image is summed); may be empty
  SOURCE_SETTING    the folder holding the source JPEGs (jpeg-src, jpeg-q85)
  DEFAULT_SETTING   qpage's default setting (q75-s6-420-10-psy)

Sweeps ("families") are settings that differ only in quality (the `q<Q>` part of the
name): q<Q>-REST for qpage, ravif-q<Q>-REST, avifenc-q<Q>-REST, jpeg-q<Q> for JPEG. "Equal quality" interpolates log(bytes) linearly in
log(distance), distance being 1/SSIM-1, dssim, or 100 - SSIMULACRA 2:
  - corpus: the family's total bytes at the source's mean distance;
  - per image: each image's bytes at the source's distance for that image, summed (images
    whose source distance lies outside the family's range are counted and left out of
    both sums).
"""
import csv
import math
import re
import sys
from collections import defaultdict

scores_csv, times_csv, source, default = sys.argv[1:5]
METRICS = [("ssim_rgb", "RGB SSIM (1/SSIM-1)"), ("dssim", "dssim"),
           ("ssimulacra2", "SSIMULACRA 2")]

data = defaultdict(dict)  # setting -> name -> {bytes, metrics (as distances)}
for setting, name, size, s, d, q in csv.reader(open(scores_csv)):
    data[setting][name] = {"bytes": int(size), "ssim_rgb": float(s), "dssim": float(d),
                           "ssimulacra2": max(100.0 - float(q), 1e-3)}
runs = defaultdict(list)  # (setting, name) -> seconds of each round
pixels = {}
try:
    for _, setting, name, px, _size, t in csv.reader(open(times_csv)):
        runs[(setting, name)].append(float(t))
        if int(px) > 0:
            pixels[name] = int(px)
except FileNotFoundError:
    pass
secs = defaultdict(float)  # setting -> sum over images of the median round
for (setting, name), ts in runs.items():
    secs[setting] += sorted(ts)[len(ts) // 2]
names = sorted(data[source])
mp = sum(pixels.values()) / 1e6 if pixels else None


def total(setting):
    return sum(data[setting][n]["bytes"] for n in names)


def mean(setting, metric):
    return sum(data[setting][n][metric] for n in names) / len(names)


def complete(setting):
    return all(n in data[setting] for n in names)


def interp(points, target):
    """points [(distance, bytes)] -> bytes at distance `target`, or None outside."""
    pts = sorted(points)
    for (d0, b0), (d1, b1) in zip(pts, pts[1:]):
        if d0 <= target <= d1 and d0 > 0 and d1 > d0:
            f = (math.log(target) - math.log(d0)) / (math.log(d1) - math.log(d0))
            return math.exp(math.log(b0) + f * (math.log(b1) - math.log(b0)))
    return None


families = defaultdict(list)
for setting in data:
    if complete(setting) and re.search(r"q[\d.]+", setting):
        # The setting without its quality: jpeg-q85 -> jpeg-, q75-s6-420-10-psy ->
        # s6-420-10-psy, ravif-q75-s6-444-10 -> ravif-s6-444-10, avifenc-q24-s6 -> avifenc-s6.
        families[re.sub(r"q[\d.]+-?", "", setting, count=1)].append(setting)


def quality_of(setting):
    return float(re.search(r"q([\d.]+)", setting).group(1))


print(f"{len(names)} files; source: `{source}` ({total(source):,} bytes)"
      + (f"; {mp:.2f} megapixels encoded per setting" if mp else "") + ".\n")
print("| setting | total bytes | mean 1/SSIM-1 (RGB) | mean dssim | mean SSIMULACRA 2 | s/MP |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
order = sorted((s for s in data if complete(s)),
               key=lambda s: (not s.startswith("jpeg"), s.split("-", 1)[-1],
                              quality_of(s) if re.search(r"q[\d.]", s) else 0))
for s in order:
    t = f"{secs[s] / mp:.2f}" if mp and s in secs else ""
    mark = " (source)" if s == source else (" (default)" if s == default else "")
    print(f"| `{s}`{mark} | {total(s):,} | {mean(s, 'ssim_rgb'):.4f} | {mean(s, 'dssim'):.5f} "
          f"| {100 - mean(s, 'ssimulacra2'):.2f} | {t} |")

print()
for metric, label in METRICS:
    src_d = mean(source, metric)
    print(f"**{label}** (source mean distance {src_d:.5f}):\n")
    for fam, settings in sorted(families.items()):
        if fam == "jpeg-" or len(settings) < 2:
            continue
        curve = [(mean(s, metric), total(s)) for s in settings]
        b = interp(curve, src_d)
        per, used_src, missed = 0.0, 0, 0
        for n in names:
            pb = interp([(data[s][n][metric], data[s][n]["bytes"]) for s in settings],
                        data[source][n][metric])
            if pb is None:
                missed += 1
            else:
                per += pb
                used_src += data[source][n]["bytes"]
        corpus = f"{b:,.0f} bytes = **{100 * b / total(source):.1f}%**" if b else "outside the sweep"
        image = (f"{100 * per / used_src:.1f}% per image" if used_src else "no image in range")
        if missed:
            image += f" ({missed} of {len(names)} images outside the sweep, left out)"
        print(f"- `{fam}` at the source's quality: {corpus} of the source; {image}")
    if default in data and complete(default) and families.get("jpeg-"):
        jb = interp([(mean(s, metric), total(s)) for s in families["jpeg-"]],
                    mean(default, metric))
        if jb:
            print(f"- default `{default}` ({total(default):,} bytes) against a JPEG of equal "
                  f"quality on the q-sweep ({jb:,.0f} bytes): {100 * total(default) / jb:.1f}%")
    print()
