#!/usr/bin/env python3
"""Drives the publish benchmark (see run.sh): interleaved rounds of qpage publish and
rsync for a one-page change, and the finalize -> first-new-response latency."""
import gzip, hashlib, http.client, json, os, re, statistics, subprocess, sys, threading, time

dist, qpage, admin, public, rsync_url, rounds, token = sys.argv[1:8]
rounds = int(rounds)
env = dict(os.environ, QPAGE_TOKEN=token)
page = os.path.join(dist, "index.html")

def timed(cmd):
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        sys.exit(f"{cmd[3]} failed ({r.returncode}): {r.stderr}")
    took = time.perf_counter() - t
    print(f"  {cmd[3]}: {took:.2f} s", file=sys.stderr, flush=True)
    return took, r.stdout

def qpublish():
    took, out = timed(["taskset", "-c", "1", qpage, "publish", dist, "--edge", f"http://{admin}",
                       "--site", "bench", "--quiet"])
    sent = int(re.search(r"sent (\d+) bytes", out).group(1))
    blobs = int(re.search(r"uploaded (\d+) blobs", out).group(1))
    return took, sent, blobs

def rsync():
    took, out = timed(["taskset", "-c", "1", "rsync", "-a", "--delete", "--stats", dist + "/", rsync_url])
    sent = int(re.search(r"Total bytes sent: ([\d,]+)", out).group(1).replace(",", ""))
    return took, sent

def change(marker):
    text = open(page).read()
    text = re.sub(r"<h1 id=marker>[^<]*</h1>", f"<h1 id=marker>{marker}</h1>", text)
    open(page, "w").write(text)

def call(method, path, body=b"", headers=None):
    c = http.client.HTTPConnection(admin, timeout=120)
    h = {"Authorization": f"Bearer {token}"}
    h.update(headers or {})
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    assert r.status < 300, (method, path, r.status, data)
    return json.loads(data)

def swap_latency(marker):
    """Publish by hand; time finalize's answer and the first public response that
    carries the new page, measured from the moment finalize is sent."""
    change(marker)
    files = []
    for root, _, names in os.walk(dist):
        for n in names:
            p = os.path.join(root, n)
            b = open(p, "rb").read()
            files.append({"path": "/" + os.path.relpath(p, dist), "sha256": hashlib.sha256(b).hexdigest(),
                          "size": len(b)})
    by_hash = {f["sha256"]: "/" + f["path"].lstrip("/") for f in files}
    ans = call("POST", "/v1/sites/bench/deploys", gzip.compress(json.dumps({"files": files}).encode()),
               {"Content-Encoding": "gzip"})
    for h in ans["missing"]:
        call("PUT", f"/v1/sites/bench/blobs/{h}", open(dist + by_hash[h], "rb").read())
    pub = http.client.HTTPConnection(public, timeout=10)
    done = {}
    def fin():
        call("POST", f"/v1/sites/bench/deploys/{ans['deploy']}/finalize", b"{}")
        done["t"] = time.perf_counter()
    t0 = time.perf_counter()
    th = threading.Thread(target=fin)
    th.start()
    while True:
        pub.request("GET", "/", headers={"Host": "bench.test"})
        if marker.encode() in pub.getresponse().read():
            seen = time.perf_counter()
            break
    th.join()
    return done["t"] - t0, seen - t0

def fmt(xs, unit="s", scale=1.0):
    xs = [x * scale for x in xs]
    return f"{statistics.median(xs):.3f} {unit} ({min(xs):.3f}-{max(xs):.3f})"

res = {"q_first": qpublish(), "r_first": rsync()}
q_change, r_change, q_same, fin, seen = [], [], [], [], []
for i in range(rounds):
    change(f"page 0 round {i}")
    q_change.append(qpublish())
    r_change.append(rsync())
    q_same.append(qpublish())
    f, s = swap_latency(f"page 0 swap {i}")
    fin.append(f)
    seen.append(s)
    rsync()  # keep rsync's copy in step with the swap round's change
print(f"| step | qpage publish: wall | qpage: bytes sent | qpage: blobs uploaded | rsync: wall | rsync: bytes sent |")
print(f"| --- | ---: | ---: | ---: | ---: | ---: |")
q, r = res["q_first"], res["r_first"]
print(f"| first publish, {sys.argv[8]} files | {q[0]:.2f} s | {q[1]:,} | {q[2]:,} | {r[0]:.2f} s | {r[1]:,} |")
print(f"| one page changed (median of {rounds}, min-max) | {fmt([x[0] for x in q_change])} | "
      f"{int(statistics.median([x[1] for x in q_change])):,} | {int(statistics.median([x[2] for x in q_change]))} | "
      f"{fmt([x[0] for x in r_change])} | {int(statistics.median([x[1] for x in r_change])):,} |")
print(f"| unchanged re-publish | {fmt([x[0] for x in q_same])} | {int(statistics.median([x[1] for x in q_same])):,} | "
      f"{int(statistics.median([x[2] for x in q_same]))} | | |")
print()
print(f"- finalize call answered (new deploy live, routing swapped): {fmt(fin, 'ms', 1000)}")
print(f"- first public response with the new page, from sending finalize: {fmt(seen, 'ms', 1000)}")
