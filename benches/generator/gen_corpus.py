#!/usr/bin/env python3
"""Deterministic benchmark corpus for qpage vs Hugo (Python 3 stdlib only).

Writes the same N blog posts twice: once as a qpage site (site.toml, content/,
templates/) and once as a Hugo site (hugo.toml, content/, layouts/). Same seed =
byte-identical corpus.

  gen_corpus.py site  --pages N --qpage DIR --hugo DIR [--seed S]
  gen_corpus.py sites --sites M --pages N --qpage DIR --hugo DIR [--seed S]
      (M sites site-0000 ... each with N pages, under the two DIRs)
"""
import argparse
import datetime
import os
import random
import shutil

HERE = os.path.dirname(os.path.abspath(__file__))

WORDS = """
the of and to in is that for it as with was on be by this are from at or an have not
which but all were when there can more their if will one has would about into other
what some time could than them these only new then very may first its also after most
system data page site build static content template render markdown fast memory cache
server request response network latency throughput benchmark compile binary library
function module crate thread parallel worker queue stream buffer file directory path
index section taxonomy tag category feed sitemap theme layout style script image asset
deploy release version config option default value field record collection engine
parser token syntax tree node graph edge vertex query search result error warning
design pattern simple complex small large quick slow early late good better best
people team project issue change commit branch merge review test suite coverage check
write read open close start stop begin end move copy link share store load save send
river mountain forest ocean desert valley island city village road bridge tower garden
morning evening winter summer spring autumn light shadow colour sound silence music
history future present story idea reason method result answer question problem detail
""".split()

TAGS = ("rust python go javascript typescript web css html performance memory async "
        "testing devops docker kubernetes linux networking security databases sql "
        "postgres sqlite caching compilers parsing markdown templates static-sites "
        "hosting cdn http tls dns git ci design ux accessibility i18n search seo "
        "analytics logging monitoring observability cloud serverless wasm embedded "
        "hardware tooling").split()
CATEGORIES = ["engineering", "tutorials", "news", "opinion", "releases",
              "case-studies", "community", "research"]
LANGS = ["rust", "python", "javascript", "bash", "toml", "json", "go", "c"]

CODE = {
    "rust": 'fn main() {\n    let v: Vec<u32> = (0..10).map(|x| x * 2).collect();\n    println!("{:?}", v);\n}',
    "python": 'def fib(n):\n    a, b = 0, 1\n    for _ in range(n):\n        a, b = b, a + b\n    return a\n\nprint(fib(30))',
    "javascript": 'const xs = [1, 2, 3].map((x) => x * 2);\nconsole.log(xs.join(", "));',
    "bash": 'for f in *.md; do\n  wc -w "$f"\ndone | sort -n | tail -5',
    "toml": '[server]\nhost = "0.0.0.0"\nport = 8080\nworkers = 4',
    "json": '{\n  "name": "example",\n  "version": "1.0.0",\n  "private": true\n}',
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tfmt.Println("hello")\n}',
    "c": '#include <stdio.h>\n\nint main(void) {\n    printf("%d\\n", 42);\n    return 0;\n}',
}


class Writer:
    def __init__(self, rng):
        self.r = rng

    def words(self, n):
        return [self.r.choice(WORDS) for _ in range(n)]

    def sentence(self):
        w = self.words(self.r.randint(6, 16))
        # inline markup
        i = self.r.randrange(len(w))
        k = self.r.random()
        if k < 0.15:
            w[i] = "**%s**" % w[i]
        elif k < 0.30:
            w[i] = "*%s*" % w[i]
        elif k < 0.38:
            w[i] = "`%s`" % w[i]
        elif k < 0.50:
            w[i] = "[%s](https://example.org/%s/)" % (w[i], self.r.choice(WORDS))
        s = " ".join(w)
        return s[0].upper() + s[1:] + self.r.choice([".", ".", ".", "?", "!"])

    def paragraph(self):
        return " ".join(self.sentence() for _ in range(self.r.randint(3, 6)))

    def body(self, target=700):
        out, n = [], 0
        out.append(self.paragraph())
        out.append("<!-- more -->")
        code_done = table_done = False
        while n < target:
            k = self.r.random()
            if k < 0.12:
                out.append("## " + " ".join(self.words(self.r.randint(2, 5))).capitalize())
            elif k < 0.17:
                out.append("### " + " ".join(self.words(self.r.randint(2, 4))).capitalize())
            elif k < 0.27:
                ordered = self.r.random() < 0.4
                items = []
                for j in range(self.r.randint(3, 6)):
                    mark = "%d." % (j + 1) if ordered else "-"
                    items.append("%s %s" % (mark, self.sentence()))
                out.append("\n".join(items))
            elif k < 0.31 and not code_done and self.r.random() < 0.6:
                code_done = True
                lang = self.r.choice(LANGS)
                out.append("```%s\n%s\n```" % (lang, CODE[lang]))
            elif k < 0.34 and not table_done and self.r.random() < 0.5:
                table_done = True
                cols = self.r.randint(3, 4)
                hdr = [w.capitalize() for w in self.words(cols)]
                rows = ["| " + " | ".join(hdr) + " |", "|" + "---|" * cols]
                for _ in range(self.r.randint(3, 6)):
                    rows.append("| " + " | ".join(self.words(cols)) + " |")
                out.append("\n".join(rows))
            elif k < 0.37:
                out.append("> " + self.sentence())
            else:
                out.append(self.paragraph())
            n = sum(len(b.split()) for b in out)
        return "\n\n".join(out) + "\n"


def toml_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def toml_list(xs):
    return "[" + ", ".join(toml_str(x) for x in xs) + "]"


def make_posts(rng, n):
    w = Writer(rng)
    start = datetime.date(2015, 1, 1)
    posts = []
    for i in range(n):
        title = " ".join(w.words(rng.randint(3, 7))).capitalize()
        posts.append({
            "slug": "post-%05d" % i,
            "title": title,
            "date": (start + datetime.timedelta(days=rng.randrange(3600))).isoformat(),
            "description": w.sentence(),
            "tags": sorted(rng.sample(TAGS, rng.randint(1, 4))),
            "categories": [rng.choice(CATEGORIES)],
            "body": w.body(rng.randint(600, 800)),
        })
    return posts


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def write_qpage(site, posts, title):
    write(os.path.join(site, "site.toml"), f"""base_url = "https://bench.example.com"
title = {toml_str(title)}
description = "Benchmark corpus"
language = "en"
author = "Bench"
paginate_by = 10
taxonomies = ["tags", "categories"]
highlight_code = true

[[menus.main]]
name = "Blog"
url = "/blog/"
weight = 1
""")
    write(os.path.join(site, "content", "_index.md"), '+++\ntitle = "Home"\n+++\n')
    write(os.path.join(site, "content", "blog", "_index.md"),
          '+++\ntitle = "Blog"\ndescription = "All posts"\nsort_by = "date"\npaginate_by = 10\n+++\n')
    for p in posts:
        fm = (f"+++\ntitle = {toml_str(p['title'])}\ndate = {p['date']}\n"
              f"description = {toml_str(p['description'])}\n[taxonomies]\n"
              f"tags = {toml_list(p['tags'])}\ncategories = {toml_list(p['categories'])}\n+++\n\n")
        write(os.path.join(site, "content", "blog", p["slug"] + ".md"), fm + p["body"])
    shutil.copytree(os.path.join(HERE, "qpage-templates"), os.path.join(site, "templates"),
                    dirs_exist_ok=True)


def write_hugo(site, posts, title):
    write(os.path.join(site, "hugo.toml"), f"""baseURL = "https://bench.example.com/"
title = {toml_str(title)}
languageCode = "en"
paginate = 10
rssLimit = 20
disableKinds = ["robotsTXT"]
enableRobotsTXT = false

[params]
description = "Benchmark corpus"
author = "Bench"

[taxonomies]
tag = "tags"
category = "categories"

[outputs]
home = ["HTML", "RSS"]
section = ["HTML", "RSS"]
taxonomy = ["HTML"]
term = ["HTML"]

[markup.highlight]
codeFences = true
noClasses = false

[[menu.main]]
name = "Blog"
url = "/blog/"
weight = 1
""")
    write(os.path.join(site, "content", "_index.md"), '+++\ntitle = "Home"\n+++\n')
    write(os.path.join(site, "content", "blog", "_index.md"),
          '+++\ntitle = "Blog"\ndescription = "All posts"\n+++\n')
    for p in posts:
        fm = (f"+++\ntitle = {toml_str(p['title'])}\ndate = {p['date']}\n"
              f"description = {toml_str(p['description'])}\n"
              f"tags = {toml_list(p['tags'])}\ncategories = {toml_list(p['categories'])}\n+++\n\n")
        # Hugo's summary divider is exactly <!--more-->
        write(os.path.join(site, "content", "blog", p["slug"] + ".md"),
              fm + p["body"].replace("<!-- more -->", "<!--more-->"))
    shutil.copytree(os.path.join(HERE, "hugo-layouts"), os.path.join(site, "layouts"),
                    dirs_exist_ok=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["site", "sites"])
    ap.add_argument("--pages", type=int, required=True)
    ap.add_argument("--sites", type=int, default=1)
    ap.add_argument("--qpage", required=True)
    ap.add_argument("--hugo", required=True)
    ap.add_argument("--seed", type=int, default=20240501)
    a = ap.parse_args()
    if a.mode == "site":
        posts = make_posts(random.Random(a.seed), a.pages)
        write_qpage(a.qpage, posts, "Bench site")
        write_hugo(a.hugo, posts, "Bench site")
    else:
        for s in range(a.sites):
            posts = make_posts(random.Random(a.seed * 1000 + s), a.pages)
            name = "site-%04d" % s
            write_qpage(os.path.join(a.qpage, name), posts, "Bench site %d" % s)
            write_hugo(os.path.join(a.hugo, name), posts, "Bench site %d" % s)


if __name__ == "__main__":
    main()
