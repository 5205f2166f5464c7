#!/usr/bin/env python3
"""Scores encoded images against their references with three metrics, appending to a CSV
(rows already in the CSV are not scored again).

usage: score.py REF_DIR CSV DIR...
  REF_DIR/NAME.png are the references; each DIR holds NAME.avif or NAME.jpg.
  CSV rows: setting,name,bytes,ssim_rgb,dssim,ssimulacra2
    setting      the DIR's folder name (e.g. q75-s6-420-10-psy, jpeg-q85, jpeg-src)
    ssim_rgb     DSSIM = 1/SSIM - 1 of SSIM on RGB (Wang et al., Gaussian sigma 1.5,
                 scikit-image); lower is better
    dssim        Kornel Lesinski's `dssim` (multi-scale SSIM in L*a*b*); lower is better
    ssimulacra2  SSIMULACRA 2 score (`ssimulacra2_rs image`); 0-100, higher is better
Tools: DSSIM_BIN (default `dssim`), SSIMULACRA2_BIN (default `ssimulacra2_rs`), avifdec
(libavif-bin) to decode AVIF. Both metric tools are documented in docs/benchmarks.md.
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

ref_dir, out_csv, dirs = sys.argv[1], sys.argv[2], sys.argv[3:]
dssim_bin = os.environ.get("DSSIM_BIN", "dssim")
ss2_bin = os.environ.get("SSIMULACRA2_BIN", "ssimulacra2_rs")
for tool in (dssim_bin, ss2_bin, "avifdec"):
    if not shutil.which(tool):
        sys.exit(f"score.py: {tool} not found (see docs/benchmarks.md, Images, for installing)")

done = set()
if os.path.exists(out_csv):
    done = {(r[0], r[1]) for r in csv.reader(open(out_csv))}
tmp = tempfile.mkdtemp()
names = sorted(os.path.splitext(n)[0] for n in os.listdir(ref_dir) if n.endswith(".png"))


def score(job):
    folder, name = job
    setting = os.path.basename(os.path.normpath(folder))
    for ext in ("avif", "jpg"):
        path = os.path.join(folder, f"{name}.{ext}")
        if os.path.exists(path):
            break
    else:
        return None
    png = os.path.join(tmp, f"{setting}-{name}.png")
    if ext == "avif":
        subprocess.run(["avifdec", path, png], check=True, stdout=subprocess.DEVNULL)
    else:
        Image.open(path).convert("RGB").save(png)
    ref = os.path.join(ref_dir, f"{name}.png")
    a = np.asarray(Image.open(ref).convert("RGB"))
    b = np.asarray(Image.open(png).convert("RGB"))
    s = structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True,
                              sigma=1.5, use_sample_covariance=False)
    d = subprocess.run([dssim_bin, ref, png], check=True, capture_output=True, text=True)
    q = subprocess.run([ss2_bin, "image", ref, png], check=True, capture_output=True,
                       text=True)
    os.remove(png)
    return [setting, name, os.path.getsize(path), f"{1 / s - 1:.6f}",
            d.stdout.split()[0], q.stdout.split()[-1]]


jobs = [(d, n) for d in dirs for n in names
        if (os.path.basename(os.path.normpath(d)), n) not in done]
with open(out_csv, "a", newline="") as f, ThreadPoolExecutor(int(os.environ.get("JOBS", "2"))) as ex:
    w = csv.writer(f)
    for row in ex.map(score, jobs):
        if row:
            w.writerow(row)
            f.flush()
