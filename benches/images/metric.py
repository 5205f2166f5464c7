#!/usr/bin/env python3
"""SSIM (Wang et al. 2004: Gaussian window sigma 1.5, population covariance) of decoded
images against their references, computed on RGB with scikit-image; DSSIM = 1/SSIM - 1
(the same transform Kornel Lesinski's dssim applies, though his SSIM is computed in L*a*b*
at several scales, so the numbers are not interchangeable with his tool's).

usage: metric.py REF_DIR TEST_DIR EXT   -> prints "name,ssim,dssim,bytes" per image
(TEST_DIR/NAME.EXT must be PNG/JPEG readable by Pillow; AVIF is decoded with avifdec first.)
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity

ref_dir, test_dir, ext = sys.argv[1:4]
tmp = tempfile.mkdtemp()
for name in sorted(os.listdir(ref_dir)):
    stem = os.path.splitext(name)[0]
    test = os.path.join(test_dir, stem + "." + ext)
    if not os.path.exists(test):
        continue
    path = test
    if ext == "avif":
        path = os.path.join(tmp, stem + ".png")
        subprocess.run(["avifdec", test, path], check=True, stdout=subprocess.DEVNULL)
    a = np.asarray(Image.open(os.path.join(ref_dir, name)).convert("RGB"))
    b = np.asarray(Image.open(path).convert("RGB"))
    s = structural_similarity(a, b, channel_axis=2, data_range=255, gaussian_weights=True,
                              sigma=1.5, use_sample_covariance=False)
    print(f"{stem},{s:.6f},{1 / s - 1:.6f},{os.path.getsize(test)}")
