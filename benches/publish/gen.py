#!/usr/bin/env python3
"""Writes a deterministic 10,000-file built site: HTML pages, CSS/JS, binary images."""
import os, random, sys

out, n = sys.argv[1], int(sys.argv[2])
rng = random.Random(42)
words = ("lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor "
         "incididunt ut labore et dolore magna aliqua product review price offer local "
         "business opening hours delivery shipping warranty").split()
n_bin = n // 20
n_asset = n // 20
n_html = n - n_bin - n_asset

def write(rel, data):
    p = os.path.join(out, rel)
    os.makedirs(os.path.dirname(p), exist_ok=True)
    with open(p, "wb") as f:
        f.write(data)

for i in range(n_html):
    body = " ".join(rng.choice(words) for _ in range(rng.randint(200, 600)))
    rel = "index.html" if i == 0 else f"p/{i // 100}/{i}/index.html"
    html = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>Page {i}</title>"
            f"<link rel=stylesheet href=/assets/site.{i % n_asset:08x}.css></head>"
            f"<body><h1 id=marker>page {i} v0</h1><p>{body}</p></body></html>")
    write(rel, html.encode())
for i in range(n_asset):
    ext = "css" if i % 2 == 0 else "js"
    txt = "".join(f".c{j}{{margin:{j}px;color:#{rng.randrange(1 << 24):06x}}}\n"
                  for j in range(rng.randint(50, 400)))
    write(f"assets/site.{i:08x}.{ext}", txt.encode())
for i in range(n_bin):
    write(f"img/{i}.png", rng.randbytes(rng.randint(5_000, 40_000)))
