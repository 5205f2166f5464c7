#!/usr/bin/env python3
"""Adds N sites (s0..sN-1.bench.test) straight into an edge store, as `qpage edge
add-site` would leave them: each with its own 4 KiB index.html blob and a stylesheet
shared by all. Writing the store directly keeps setup to seconds; the layout is the
one of edge/src/store.rs."""
import hashlib
import json
import os
import sys
import time

data, n = sys.argv[1], int(sys.argv[2])
blobs = os.path.join(data, "blobs")
sites = os.path.join(data, "sites")
os.makedirs(blobs, exist_ok=True)
os.makedirs(sites, exist_ok=True)


def put(content):
    h = hashlib.sha256(content).hexdigest()
    d = os.path.join(blobs, h[:2])
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, h)
    if not os.path.exists(p):
        with open(p, "wb") as f:
            f.write(content)
    return h


css = b"body{margin:0 auto;max-width:40rem;font-family:system-ui,sans-serif}\n" * 40
css_hash = put(css)
now = int(time.time())
for i in range(n):
    name = f"s{i}"
    page = (f"<!doctype html><title>site {i}</title><h1>site {i}</h1>"
            + "<p>lorem ipsum dolor sit amet</p>" * 120).encode()[:4096]
    files = {
        "/index.html": {"sha256": put(page), "size": len(page),
                        "content_type": "text/html; charset=utf-8"},
        "/style.css": {"sha256": css_hash, "size": len(css),
                       "content_type": "text/css; charset=utf-8"},
    }
    did = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    sd = os.path.join(sites, name)
    os.makedirs(os.path.join(sd, "deploys"), exist_ok=True)
    with open(os.path.join(sd, "site.toml"), "w") as f:
        f.write(f'hosts = ["{name}.bench.test"]\naliases = []\nwww = "apex"\n')
    with open(os.path.join(sd, "deploys", did + ".json"), "w") as f:
        json.dump({"id": did, "site": name, "created": now, "files": files}, f)
    with open(os.path.join(sd, "live"), "w") as f:
        f.write(did)
with open(os.path.join(data, "epoch"), "w") as f:
    f.write(str(time.time_ns()))
