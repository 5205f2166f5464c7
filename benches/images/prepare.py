#!/usr/bin/env python3
"""Builds the benchmark corpus from scikit-image's bundled photographs (real photographs,
public domain / CC0; see skimage/data/README.txt): lossless references and the "source"
JPEGs a site owner would upload.

usage: prepare.py OUT_DIR JPEG_QUALITY
  OUT_DIR/ref/NAME.png    reference pixels (RGB)
  OUT_DIR/src/NAME.jpg    source JPEG: Pillow (libjpeg-turbo), quality Q, 4:2:0, optimized
"""
import os
import sys

import skimage
from PIL import Image

PHOTOS = [
    # colour photographs
    "astronaut.png", "chelsea.png", "coffee.png", "motorcycle_left.png",
    "motorcycle_right.png", "rocket.jpg", "hubble_deep_field.jpg", "retina.jpg", "ihc.png",
    # greyscale photographs
    "camera.png", "coins.png", "moon.png",
]

out, quality = sys.argv[1], int(sys.argv[2])
data = os.path.join(os.path.dirname(skimage.__file__), "data")
os.makedirs(os.path.join(out, "ref"), exist_ok=True)
os.makedirs(os.path.join(out, "src"), exist_ok=True)
for name in PHOTOS:
    stem = os.path.splitext(name)[0]
    im = Image.open(os.path.join(data, name)).convert("RGB")
    im.save(os.path.join(out, "ref", stem + ".png"))
    im.save(os.path.join(out, "src", stem + ".jpg"), quality=quality, optimize=True)
