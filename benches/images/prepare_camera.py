#!/usr/bin/env python3
"""Builds a camera-JPEG corpus, served at a site's widths, from a Debian package of
photographs as published:
  mate    the 12 photographs of `mate-backgrounds` (usr/share/backgrounds/mate/nature/
          *.jpg, JPEGs as the photographers published them, 1280-2560 px wide)
  plasma  the wallpapers of `plasma-workspace-wallpapers` that are JPEGs carrying a
          camera's EXIF (make and model), each at its largest size (2560x1600; 8 in
          4:5.27.5-2); the others are renders, PNGs or carry no camera data

usage: prepare_camera.py EXTRACTED_DEB OUT_DIR [WIDTHS] [PACKAGE]
                          (WIDTHS default 480,960,1600; PACKAGE mate (default) or plasma)
  EXTRACTED_DEB   `apt-get download PACKAGE_DEB && dpkg -x PACKAGE_DEB_*.deb DIR`
  OUT_DIR/ref/NAME-W.png       the source JPEG decoded (EXIF orientation applied) and
                               resized to W px wide (Lanczos), at each width qpage would
                               produce for it (the configured widths up to its own, plus
                               its own width when below the largest): the reference
  OUT_DIR/jpeg-src/NAME-W.jpg  that reference re-encoded as the source was: the source's
                               own quantization tables and chroma subsampling
                               (libjpeg-turbo through Pillow, optimized Huffman); at the
                               source's own width (and orientation), the source file
                               itself, which is what a site serves there
  OUT_DIR/sources.csv          name,width,height,subsampling,ijg_quality_estimate,camera
"""
import csv
import glob
import os
import shutil
import sys

from PIL import Image, ImageOps, JpegImagePlugin

deb, out = sys.argv[1], sys.argv[2]
widths = [int(w) for w in (sys.argv[3] if len(sys.argv) > 3 else "480,960,1600").split(",")]
package = sys.argv[4] if len(sys.argv) > 4 else "mate"


def camera_of(im):
    """The camera's make and model from an opened image's EXIF ("" when none)."""
    exif = im.getexif()
    return " ".join(str(exif.get(t, "")).strip() for t in (0x010F, 0x0110)).strip()


if package == "mate":
    files = sorted(glob.glob(os.path.join(deb, "usr/share/backgrounds/mate/nature/*.jpg")))
    if len(files) != 12:
        sys.exit(f"expected the 12 photographs of mate-backgrounds 1.26 in {deb}, found {len(files)}")
    names = {f: os.path.splitext(os.path.basename(f))[0] for f in files}
elif package == "plasma":
    names = {}
    for d in sorted(glob.glob(os.path.join(deb, "usr/share/wallpapers/*/contents/images"))):
        jpegs = [Image.open(f) for f in glob.glob(os.path.join(d, "*.jpg"))]
        if not jpegs:
            continue
        largest = max(jpegs, key=lambda im: im.width * im.height)
        if camera_of(largest):
            names[largest.filename] = d.split(os.sep)[-3]
    files = sorted(names, key=names.get)
    if not files:
        sys.exit(f"no camera JPEGs under {deb}/usr/share/wallpapers")
else:
    sys.exit(f"unknown package {package}: mate or plasma")
for d in ("ref", "jpeg-src"):
    os.makedirs(os.path.join(out, d), exist_ok=True)

# IJG (libjpeg) standard luminance table, natural order.
STD_LUMA = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24,
            40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77,
            24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95,
            98, 112, 100, 103, 99]


def ijg_quality(table):
    """The IJG quality whose scaled standard luma table is closest to `table`."""
    def scaled(q):
        s = 5000 / q if q < 50 else 200 - 2 * q
        return [min(max((t * s + 50) // 100, 1), 255) for t in STD_LUMA]
    return min(range(1, 101), key=lambda q: sum(abs(a - b) for a, b in zip(scaled(q), table)))


def target_widths(w):
    out = sorted({x for x in widths if x <= w} | ({w} if w < max(widths) else set()))
    return out


SUB = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}
with open(os.path.join(out, "sources.csv"), "w", newline="") as f:
    rows = csv.writer(f)
    for path in files:
        src = Image.open(path)
        tables = src.quantization
        sampling = JpegImagePlugin.get_sampling(src)
        exif = src.getexif()
        camera = camera_of(src)
        name = names[path]
        # Sorted by table id: Pillow reads them sorted the same way.
        q = ijg_quality(sorted(tables.items())[0][1])
        upright = ImageOps.exif_transpose(src).convert("RGB")
        rows.writerow([name, upright.width, upright.height, SUB.get(sampling, sampling), q,
                       camera])
        for w in target_widths(upright.width):
            h = max(1, round(upright.height * w / upright.width))
            im = upright if w == upright.width else upright.resize((w, h), Image.LANCZOS)
            im.save(os.path.join(out, "ref", f"{name}-{w}.png"))
            dest = os.path.join(out, "jpeg-src", f"{name}-{w}.jpg")
            if w == src.width and exif.get(0x0112, 1) == 1:
                # Served at its own size, the source is the reference's own encoding:
                # its distance is 0, and no lossy encoder can match it (compare.py
                # leaves such files out). Re-encoding the decoded JPEG with the same
                # tables instead reproduces it almost exactly (JPEG is close to
                # idempotent), a distance no photograph's quality explains.
                shutil.copyfile(path, dest)
            else:
                im.save(dest, qtables=tables, subsampling=sampling, optimize=True)
