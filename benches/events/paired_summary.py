"""The summary of paired.sh: per mode, the median of the pairs' ratios (CPU time per
request and request rate, events edge against off edge) with a 95% bootstrap interval.

Usage: python3 benches/events/paired_summary.py RESULTS.tsv [MORE.tsv ...]
Several runs' results.tsv are pooled (every pair of every run counts once).
"""
import csv, random, statistics, sys
rows = [r for f in sys.argv[1:] for r in csv.DictReader(open(f), delimiter="\t")]
rnd = random.Random(1)
def ci(v):
    """95% bootstrap interval of the median (2,000 resamples)."""
    meds = sorted(statistics.median(rnd.choices(v, k=len(v))) for _ in range(2000))
    return meds[50], meds[1949]
pct = lambda v: f"{(v - 1) * 100:+.1f}%"
print("| events | pairs | CPU per request vs off: median [95% CI] (min..max) | request rate vs off: median [95% CI] (min..max) | off ns/req | events ns/req | emitted = delivered, 0 dropped |")
print("|---|---|---|---|---|---|---|")
for m in dict.fromkeys(r["mode"] for r in rows):
    rs = [r for r in rows if r["mode"] == m]
    ok = all(m == "off" or (r["emitted"] == r["delivered"] and r["dropped"] == "0") for r in rs)
    cells = []
    for key in ("cpu_ratio", "rate_ratio"):
        v = [float(r[key]) for r in rs]
        lo, hi = ci(v)
        cells.append(f"{pct(statistics.median(v))} [{pct(lo)}..{pct(hi)}] ({pct(min(v))}..{pct(max(v))})")
    print(f"| {m} | {len(rs)} | {cells[0]} | {cells[1]} "
          f"| {statistics.median(float(r['off_ns_per_req']) for r in rs):.0f} "
          f"| {statistics.median(float(r['mode_ns_per_req']) for r in rs):.0f} | {'yes' if ok else 'NO'} |")
