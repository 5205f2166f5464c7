#!/usr/bin/env python3
"""Medians (min-max) per events mode, and overhead against "off" (ratio of medians, and
the median of the per-round ratios, since rounds share the machine's noise)."""
import collections
import statistics
import sys

rows = collections.defaultdict(list)
by_round = collections.defaultdict(dict)
with open(sys.argv[1]) as f:
    header = f.readline().rstrip("\n").split("\t")
    for line in f:
        r = dict(zip(header, line.rstrip("\n").split("\t")))
        rows[r["mode"]].append(r)
        by_round[r["round"]][r["mode"]] = r


def vals(rs, key):
    return [float(r[key]) for r in rs if r[key] not in ("", "nan")]


def med(rs, key, fmt):
    v = vals(rs, key)
    return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}-{fmt.format(max(v))})" if v else "-"


def base(mode):
    """The mode a mode is compared with: the same server without events or logs."""
    return "nginx-off" if mode.startswith("nginx") else "off"


def paired(mode, key):
    b = base(mode)
    ratios = [float(rd[mode][key]) / float(rd[b][key]) - 1
              for rd in by_round.values() if mode in rd and b in rd]
    if not ratios:
        return "-"
    return f"{statistics.median(ratios) * 100:+.1f}% ({min(ratios) * 100:+.1f}..{max(ratios) * 100:+.1f})"


has_user = "user_us_per_req" in header
has_parts = "events_us_per_req" in header
has_busy = "load_core_busy" in header
print("| events | req/s median (min-max) | p99 ms | CPU us/req | user us/req | events thread us/req | sink process us/req | req/s vs off (per-round median, range) | CPU/req vs off (per-round median, range) | user/req vs off | requests | emitted = delivered | dropped | server core / load core busy % |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for mode in ["off", "file", "nats", "clickhouse", "nginx-off", "nginx-log"]:
    rs = rows.get(mode)
    if not rs:
        continue
    reqs = sum(int(r["requests"]) for r in rs)
    ok = all(r["mode"] in ("off", "nginx-off") or (r["emitted"] == r["delivered"]) for r in rs)
    dropped = sum(int(r["dropped"] or 0) for r in rs)
    vs_rps = "-" if mode == base(mode) else paired(mode, "rps")
    vs_cpu = "-" if mode == base(mode) else paired(mode, "cpu_us_per_req")
    user = med(rs, "user_us_per_req", "{:.2f}") if has_user else "-"
    vs_user = "-" if mode == base(mode) or not has_user else paired(mode, "user_us_per_req")
    ev = (med(rs, "events_us_per_req", "{:.2f}")
          if has_parts and mode not in ("off", "nginx-off", "nginx-log") else "-")
    sink = med(rs, "sink_us_per_req", "{:.2f}") if has_parts and mode in ("nats", "clickhouse") else "-"
    busy = (f"{med(rs, 'server_core_busy', '{:.0f}')} / {med(rs, 'load_core_busy', '{:.0f}')}"
            if has_busy else "-")
    print(f"| {mode} | {med(rs, 'rps', '{:.0f}')} | {med(rs, 'p99_ms', '{:.2f}')} | "
          f"{med(rs, 'cpu_us_per_req', '{:.2f}')} | {user} | {ev} | {sink} | {vs_rps} | {vs_cpu} | {vs_user} | {reqs} | "
          f"{'yes' if ok else 'NO'} | {dropped} | {busy} |")
