"""Client side of bench/serve.sh: webhook latency under concurrency, push to first step, six
notifications of one push, SSE delivery latency. Standard library only; prints figures."""
import http.client
import json
import sqlite3
import sys
import threading
import time
import urllib.request
import uuid

MANIFEST_TYPES = ", ".join([
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
])


def tag_in_registry(registry, repo, src, dst):
    """Points tag `dst` at the manifest of `src` (same bytes, same digest), as a push of that
    build would: serve resolves every notified tag in the registry before it deploys."""
    url = f"http://{registry}/v2/{repo}/manifests"
    with urllib.request.urlopen(urllib.request.Request(f"{url}/{src}", headers={"Accept": MANIFEST_TYPES})) as r:
        body, ctype = r.read(), r.headers["Content-Type"]
    put = urllib.request.Request(f"{url}/{dst}", data=body, method="PUT", headers={"Content-Type": ctype})
    with urllib.request.urlopen(put) as r:
        r.read()


def envelope(host, repo, tag, digest, event_id=None):
    return json.dumps({"events": [{
        "id": event_id or str(uuid.uuid4()), "timestamp": "2025-01-15T10:00:02Z", "action": "push",
        "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest, "size": 1,
                   "repository": repo, "url": f"http://{host}/v2/{repo}/manifests/{digest}", "tag": tag},
        "request": {"id": "r", "host": host, "method": "PUT", "useragent": "bench"},
        "actor": {"name": "bench"}, "source": {"addr": "bench"}}]}).encode()


def post(addr, path, body, headers):
    h, p = addr.split(":")
    c = http.client.HTTPConnection(h, int(p), timeout=10)
    t0 = time.perf_counter()
    c.request("POST", path, body=body, headers=headers)
    r = c.getresponse()
    r.read()
    dt = time.perf_counter() - t0
    c.close()
    return r.status, dt


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def webhooks(addr, secret, registry, repo, digest, rounds, conc):
    tag_in_registry(registry, repo, "base", "hook")
    lat, statuses = [], {}
    auth = {"Authorization": f"Bearer {secret}", "Content-Type": "application/vnd.docker.distribution.events.v2+json"}
    for _ in range(rounds):
        barrier = threading.Barrier(conc)
        out = []

        def one():
            body = envelope(registry, repo, "hook", digest)
            barrier.wait()
            out.append(post(addr, "/hooks/reg", body, auth))

        ts = [threading.Thread(target=one) for _ in range(conc)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for s, dt in out:
            statuses[s] = statuses.get(s, 0) + 1
            lat.append(dt * 1000)
    print(f"webhook answer, {conc} concurrent x {rounds} rounds ({len(lat)} requests): "
          f"p50 {pct(lat, .5):.1f} ms, p99 {pct(lat, .99):.1f} ms, max {max(lat):.1f} ms; statuses {statuses} "
          f"(target: p99 <= 50 ms)")


def deploys_of(db, tag):
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT id, status FROM deploys WHERE tag = ? AND trigger = 'webhook'", (tag,)).fetchall()
    finally:
        c.close()


def first_entry_ms(db, deploy_id):
    c = sqlite3.connect(db)
    try:
        return c.execute("SELECT MIN(ts) FROM deploy_logs WHERE deploy_id = ?", (deploy_id,)).fetchone()[0]
    finally:
        c.close()


def wait_done(db, tag, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        rows = deploys_of(db, tag)
        if rows and all(s != "running" for _, s in rows):
            return rows
        time.sleep(0.05)
    raise SystemExit(f"no finished webhook deploy of {tag}")


def push_to_step(addr, secret, registry, repo, digest, db, debounce_ms, runs):
    auth = {"Authorization": f"Bearer {secret}"}
    extra = []
    for i in range(runs):
        tag = f"p{i}-{uuid.uuid4().hex[:6]}"
        tag_in_registry(registry, repo, "base", tag)
        t0 = time.time() * 1000
        post(addr, "/hooks/reg", envelope(registry, repo, tag, digest), auth)
        rows = wait_done(db, tag)
        extra.append(first_entry_ms(db, rows[0][0]) - t0 - debounce_ms)
    print(f"push to first deploy step (tag resolved in the registry first), beyond the {debounce_ms} ms debounce ({runs} runs): "
          f"median {sorted(extra)[len(extra) // 2]:.0f} ms, max {max(extra):.0f} ms (target <= 100 ms)")


def six(addr, secret, registry, repo, digest, db):
    auth = {"Authorization": f"Bearer {secret}"}
    tag = f"six-{uuid.uuid4().hex[:6]}"
    tag_in_registry(registry, repo, "base", tag)
    for _ in range(6):
        post(addr, "/hooks/reg", envelope(registry, repo, tag, digest), auth)
        time.sleep(0.05)
    rows = wait_done(db, tag)
    time.sleep(3)
    rows = deploys_of(db, tag)
    print(f"one push sending 6 notifications (distinct ids, 50 ms apart): {len(rows)} deploy(s) (target: exactly 1)")


def sse(addr, token, runs):
    h, p = addr.split(":")
    lat = []
    for i in range(runs):
        c = http.client.HTTPConnection(h, int(p), timeout=30)
        body = json.dumps({"project": "bench", "stage": "sse", "tag": f"r{i + 1}"})
        c.request("POST", "/v1/deploys", body=body,
                  headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        job = json.loads(c.getresponse().read())
        while job["state"] == "waiting":
            c.request("GET", f"/v1/jobs/{job['id']}?wait=5", headers={"Authorization": f"Bearer {token}"})
            job = json.loads(c.getresponse().read())
        s = http.client.HTTPConnection(h, int(p), timeout=60)
        s.request("GET", f"/v1/deploys/{job['deploy_id']}/events", headers={"Authorization": f"Bearer {token}"})
        r = s.getresponse()
        opened = time.time() * 1000
        event, data = None, None
        while True:
            line = r.fp.readline().decode()
            if not line:
                break
            line = line.rstrip("\n")
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data = line[6:]
            elif line == "" and event:
                now = time.time() * 1000
                if event == "result":
                    break
                ts = json.loads(data)["ts_ms"]
                if ts > opened:  # written after we were listening: a live event
                    lat.append(now - ts)
                event = None
        s.close()
        c.close()
    print(f"SSE event after its entry's time stamp ({len(lat)} live events of {runs} deploys): "
          f"p50 {pct(lat, .5):.1f} ms, p99 {pct(lat, .99):.1f} ms, max {max(lat):.1f} ms (target <= 20 ms)")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "webhooks":
        webhooks(args[0], args[1], args[2], args[3], args[4], int(args[5]), int(args[6]))
    elif cmd == "push":
        push_to_step(args[0], args[1], args[2], args[3], args[4], args[5], int(args[6]), int(args[7]))
    elif cmd == "six":
        six(args[0], args[1], args[2], args[3], args[4], args[5])
    elif cmd == "sse":
        sse(args[0], args[1], int(args[2]))
