#!/usr/bin/env python3
"""Save-to-served latency of a running dev server (Python 3 stdlib only).

For each edit: append a unique marker paragraph to one page's Markdown file (a plain
open/write/close, as an editor saves), then GET the page's URL in a tight loop over a
kept-alive connection until the served HTML contains the marker. The time from just
before the write to the first response holding the marker is one sample, in ms.
Pages are edited round-robin from a fixed list; each file is restored afterwards.

Kinds of edit (--kind):
  text  append the paragraph (the page keeps its place in every listing);
  date  also give the page another date (it moves in its section's and terms' listings
        and their pagination);
  tags  also add a tag no page has (a new term page; the listings of the term);
  new   write a new page (dated among the others, with a post's tags and category) and
        wait for its URL; the new pages are removed at the end.

  measure.py --port P --site DIR --edits N --pages 1,2,3 [--kind K] [--settle S]
Prints one latency (ms) per line on stdout.
"""
import argparse
import datetime
import http.client
import os
import random
import re
import sys
import time


def fetch(conn, path):
    conn.request("GET", path, headers={"Accept-Encoding": "identity"})
    r = conn.getresponse()
    return r.status, r.read()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--site", required=True)
    ap.add_argument("--edits", type=int, default=20)
    ap.add_argument("--pages", required=True, help="comma-separated post numbers")
    ap.add_argument("--settle", type=float, default=0.5, help="seconds between edits")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--tag", default="run")
    ap.add_argument("--kind", default="text", choices=["text", "date", "tags", "new"])
    a = ap.parse_args()
    rng = random.Random("%s-%s" % (a.tag, a.kind))
    created = []
    pages = [int(x) for x in a.pages.split(",")]
    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
    originals = {}
    try:
        for i in range(a.edits):
            n = pages[i % len(pages)]
            slug = "post-%05d" % n
            path = os.path.join(a.site, "content", "blog", slug + ".md")
            url = "/blog/%s/" % slug
            if path not in originals:
                with open(path, encoding="utf-8") as f:
                    originals[path] = f.read()
            marker = "devbench%s%s%dx%d" % (a.tag, a.kind, i, time.time_ns() % 1000000)
            text = originals[path] + "\n\nEdited %s.\n" % marker
            date = (datetime.date(2015, 1, 1)
                    + datetime.timedelta(days=rng.randrange(3600))).isoformat()
            if a.kind == "date":
                text = re.sub(r"(?m)^date = .*$", "date = " + date, text, count=1)
            elif a.kind == "tags":
                text = re.sub(r"(?m)^tags = \[", 'tags = ["%s", ' % marker, text, count=1)
            elif a.kind == "new":
                slug = "devbench-new-%s-%d" % (a.tag, i)
                path = os.path.join(a.site, "content", "blog", slug + ".md")
                url = "/blog/%s/" % slug
                orig = originals[os.path.join(a.site, "content", "blog", "post-%05d.md" % n)]
                tags = "\n".join(re.search(r"(?m)^%s = .*$" % k, orig).group(0)
                                 for k in ("tags", "categories"))
                if "[taxonomies]" in orig:
                    tags = "[taxonomies]\n" + tags
                text = ('+++\ntitle = "New page %d"\ndate = %s\ndescription = "A new page."\n'
                        "%s\n+++\n\nEdited %s.\n" % (i, date, tags, marker))
                created.append(path)
            want = marker.encode()
            t0 = time.perf_counter()
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            while True:
                try:
                    status, body = fetch(conn, url)
                except (http.client.HTTPException, OSError):
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=a.timeout)
                    continue
                if want in body:
                    break
                if time.perf_counter() - t0 > a.timeout:
                    print("timeout waiting for %s (status %d)" % (url, status), file=sys.stderr)
                    sys.exit(1)
            t1 = time.perf_counter()
            print("%.2f" % ((t1 - t0) * 1000.0), flush=True)
            time.sleep(a.settle)
    finally:
        for path in created:
            os.remove(path)
        for path, text in originals.items():
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)


if __name__ == "__main__":
    main()
