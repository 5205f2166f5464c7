#!/usr/bin/env python3
"""Medians (with min-max spread) of the rounds in results.tsv, as a Markdown table."""
import collections
import statistics
import sys

rows = collections.defaultdict(list)
with open(sys.argv[1]) as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
        r = dict(zip(header, line.rstrip("\n").split("\t")))
        rows[(r["file"], r["encoding"], r["server"])].append(r)


def med(rs, key, fmt):
    vals = [float(r[key]) for r in rs if r[key] not in ("", "nan")]
    if not vals:
        return "-"
    return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}-{fmt.format(max(vals))})"


print("| file | Accept-Encoding | server | req/s median (min-max) | p99 ms | CPU us/req | non-2xx |")
print("|---|---|---|---|---|---|---|")
for (file, enc, server), rs in sorted(rows.items()):
    errs = sum(int(r["non2xx"]) for r in rs)
    print(f"| {file} | {enc} | {server} | {med(rs, 'rps', '{:.0f}')} | "
          f"{med(rs, 'p99_ms', '{:.2f}')} | {med(rs, 'cpu_us_per_req', '{:.1f}')} | {errs} |")
