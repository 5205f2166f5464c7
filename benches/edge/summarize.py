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


print("| file | Accept-Encoding | server | req/s median (min-max) | p99 ms | CPU us/req | wrk CPU us/req | non-2xx |")
print("|---|---|---|---|---|---|---|---|")
for (file, enc, server), rs in sorted(rows.items()):
    errs = sum(int(r["non2xx"]) for r in rs)
    print(f"| {file} | {enc} | {server} | {med(rs, 'rps', '{:.0f}')} | "
          f"{med(rs, 'p99_ms', '{:.2f}')} | {med(rs, 'cpu_us_per_req', '{:.1f}')} | "
          f"{med(rs, 'wrk_cpu_us_per_req', '{:.1f}') if 'wrk_cpu_us_per_req' in rs[0] else '-'} | {errs} |")

# qpage against the best peer, round by round (each round runs every server under
# the same load): the median of the per-round ratios with their spread.
by_round = collections.defaultdict(dict)
for (file, enc, server), rs in rows.items():
    for r in rs:
        by_round[(file, enc, r["round"])][server] = r
peers = sorted({s for (_, _, s) in rows} - {"qpage"})
if "qpage" in {s for (_, _, s) in rows} and peers:
    print()
    print("| file | Accept-Encoding | best peer (req/s) | req/s qpage/peer | p99 qpage/peer | CPU/req qpage/nginx |")
    print("|---|---|---|---|---|---|")
    for file, enc in sorted({(f, e) for (f, e, _) in rows}):
        best = max(peers, key=lambda p: statistics.median(float(r["rps"]) for r in rows[(file, enc, p)]))
        ratios = {"rps": [], "p99": [], "cpu": []}
        for (f, e, _), servers in by_round.items():
            if (f, e) != (file, enc) or "qpage" not in servers:
                continue
            q = servers["qpage"]
            if best in servers:
                ratios["rps"].append(float(q["rps"]) / float(servers[best]["rps"]))
                ratios["p99"].append(float(q["p99_ms"]) / float(servers[best]["p99_ms"]))
            if "nginx" in servers:
                ratios["cpu"].append(float(q["cpu_us_per_req"]) / float(servers["nginx"]["cpu_us_per_req"]))

        def show(v):
            if not v:
                return "-"
            return f"{statistics.median(v):.2f} ({min(v):.2f}-{max(v):.2f})"

        print(f"| {file} | {enc} | {best} | {show(ratios['rps'])} | {show(ratios['p99'])} | {show(ratios['cpu'])} |")
