#!/usr/bin/env bash
# The web page at scale (issue 25): `serve` over a state file with 100,000 deploys (20 log
# entries each) and 1,000 live instances, signed in with a token; medians of 20 requests after
# one warm-up, measured by a client on loopback (so: server-side time plus one local round
# trip, an upper bound), and each page's size. Target: <= 50 ms and < 100 kB a page.
# Run by hand: bench/ui.sh. Needs Docker running (the previews cross-check the engine).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --quiet
tf="$PWD/target/release/tiny-forge"
work=$(mktemp -d)
trap 'kill ${server_pid:-0} 2>/dev/null || true; rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

cat > "$work/tf.toml" <<TOML
[settings]
state = "$work/state.db"
history_retention = "3650d"
[server]
listen = "127.0.0.1:$port"
[projects.shop]
image = "r/shop"
port = 8080
max_instances = 100000
[projects.shop.stages.dev]
[projects.shop.stages.prod]
TOML
# Rows are written straight into a state file that tiny-forge created (its own migrations).
"$tf" --config "$work/tf.toml" check >/dev/null 2>&1 || true
token=$("$tf" --config "$work/tf.toml" token create --name bench 2>/dev/null)
python3 - "$work/state.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA user_version").fetchone()[0] >= 7, "tiny-forge did not create the state file"
now = int(time.time() * 1000)
start = now - 100000 * 1000
for chunk in range(10):
    ids = range(1 + chunk * 10000, 1 + (chunk + 1) * 10000)
    rows = [(i, "shop", "dev" if i % 10 else "prod", f"i{i % 1000}", f"shop/dev/i{i % 1000}", f"r/shop:i{i % 1000}",
             "sha256:" + "ab" * 32, "succeeded" if i % 7 else "failed", 1, "h", start + i * 1000,
             start + i * 1000 + 900, None if i % 7 else "health check failed", "deploy", "http://x") for i in ids]
    db.executemany("INSERT INTO deploys (id, project, stage, tag, slot, image, digest, status, pid, host, started_at, finished_at, error, trigger, url) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO deploy_logs (deploy_id, seq, ts, level, step, message) VALUES (?,?,?,?,?,?)",
                   ((i, s, start + i * 1000, "info", "health", f"probe {s} of deploy {i}: 200 OK") for i in ids for s in range(1, 21)))
    db.commit()
db.executemany("INSERT INTO instances (deploy_id, project, stage, tag, slot, container_name, container_id, digest, url, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
               ((99000 + n, "shop", "dev", f"i{n}", f"shop/dev/i{n}", f"tf-shop-dev-i{n}-1", None, "sha256:" + "cd" * 32,
                 f"http://shop-dev-i{n}.example.test", "live", now, now) for n in range(1000)))
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY

"$tf" --config "$work/tf.toml" -q serve 2>/dev/null &
server_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

python3 - "$port" "$token" <<'PY'
import http.client, statistics, sys, time, urllib.parse
port, token = int(sys.argv[1]), sys.argv[2]
c = http.client.HTTPConnection("127.0.0.1", port)
c.request("POST", "/ui/login", body=urllib.parse.urlencode({"token": token}),
          headers={"Content-Type": "application/x-www-form-urlencoded", "Origin": f"http://127.0.0.1:{port}"})
r = c.getresponse(); r.read()
cookie = next(v.split(";")[0] for k, v in r.getheaders() if k.lower() == "set-cookie")
assets = 0
for path in ("/ui/assets/ui.css", "/ui/assets/ui.js"):
    c.request("GET", path); r = c.getresponse(); assets += len(r.read())
def timed(path):
    times, size = [], 0
    for _ in range(21):
        t0 = time.perf_counter()
        c.request("GET", path, headers={"Cookie": cookie})
        r = c.getresponse(); body = r.read()
        assert r.status == 200, (path, r.status)
        times.append((time.perf_counter() - t0) * 1000); size = len(body)
    return statistics.median(times[1:]), size
print(f"   stylesheet + script: {assets / 1000:.1f} kB")
for label, path in [("previews, 1,000 instances (GET /ui)", "/ui"),
                    ("previews filtered to shop/prod", "/ui?project=shop&stage=prod"),
                    ("history, first page of 50 (of 100,000)", "/ui/deploys"),
                    ("history, a page deep in the past", "/ui/deploys?before=1234"),
                    ("history of shop/prod only", "/ui/deploys?project=shop&stage=prod"),
                    ("a deploy with 20 entries", "/ui/deploys/70000"),
                    ("a failed deploy with its evidence", "/ui/deploys/70007")]:
    ms, size = timed(path)
    print(f"   {label:<42} {ms:6.1f} ms  {size / 1000:6.1f} kB (+ {assets / 1000:.1f} kB assets)")
PY
