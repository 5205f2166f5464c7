#!/usr/bin/env python3
"""Self cost per function of a callgrind dump, per request: selfcost.py DUMP REQUESTS [TOP]."""
import sys, re, collections
names = {}
selfc = collections.Counter()
fn = None
skip_next = False
for line in open(sys.argv[1], errors='replace'):
    line = line.rstrip('\n')
    if line.startswith('fn='):
        m = re.match(r'fn=\((\d+)\)(?: (.*))?', line)
        if m:
            if m.group(2): names[m.group(1)] = m.group(2)
            fn = names.get(m.group(1), m.group(1))
        else:
            fn = line[3:]
        continue
    if line.startswith(('cfn=', 'cfi=', 'cfl=', 'cob=')):
        m = re.match(r'cfn=\((\d+)\)(?: (.*))?', line)
        if m and m.group(2): names[m.group(1)] = m.group(2)
        continue
    if line.startswith('calls='):
        skip_next = True
        continue
    if line and (line[0].isdigit() or line[0] in '+-*'):
        parts = line.split()
        if len(parts) >= 2:
            if skip_next:
                skip_next = False
                continue
            try:
                selfc[fn] += int(parts[1])
            except ValueError:
                pass
        continue
tot = sum(selfc.values())
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1
print(f"total {tot:,}  per request {tot/n:,.0f}")
for f, c in selfc.most_common(int(sys.argv[3]) if len(sys.argv) > 3 else 40):
    print(f"{c:>12,} {c/n:>8,.0f}/req  {f[:150]}")
