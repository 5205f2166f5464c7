#!/usr/bin/env python3
"""Writes the benchmark's files: 4 KiB and 40 KiB HTML pages, a 200 KiB image."""
import os
import random
import sys

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
rnd = random.Random(42)
words = ("static site edge server cache brotli request response header content "
         "deploy tenant routing latency origin browser page index product review "
         "location question answer schema markup image picture source").split()


def html(size):
    head = "<!doctype html><html lang=en><head><meta charset=utf-8><title>bench</title>" \
           "<link rel=stylesheet href=/style.css></head><body><main>"
    body = []
    n = len(head)
    while n < size - 30:
        p = "<p>" + " ".join(rnd.choice(words) for _ in range(rnd.randint(8, 30))) + ".</p>\n"
        body.append(p)
        n += len(p)
    text = head + "".join(body) + "</main></body></html>\n"
    return text[:size - 1] + "\n" if len(text) > size else text + " " * (size - len(text))


with open(os.path.join(out, "small.html"), "w") as f:
    f.write(html(4 * 1024))
with open(os.path.join(out, "medium.html"), "w") as f:
    f.write(html(40 * 1024))
with open(os.path.join(out, "image.jpg"), "wb") as f:
    f.write(bytes(rnd.getrandbits(8) for _ in range(200 * 1024)))
