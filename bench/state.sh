#!/usr/bin/env bash
# Scale of the state file: `list` with 1,000 instances, `history` with 100,000 deploys of 20
# log entries each, `history show` of a deploy with 10,000 entries (medians from hyperfine,
# process start included); state file size as it grows, and after `prune` trims it.
# Run by hand: bench/state.sh. Needs Docker running (list cross-checks it). Prints figures.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v hyperfine >/dev/null || apt-get install -y -qq hyperfine >/dev/null
cargo build --release --locked --quiet
tf="$PWD/target/release/tiny-forge"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cat > "$work/tf.toml" <<TOML
[settings]
state = "$work/state.db"
history_retention = "30d"
[projects.shop]
image = "r/shop"
port = 8080
max_instances = 100000
[projects.shop.stages.dev]
TOML
# Rows are written straight into a state file that tiny-forge created (its own migration).
"$tf" --config "$work/tf.toml" check >/dev/null 2>&1 || true
python3 - "$work/state.db" <<'PY'
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1])
assert db.execute("PRAGMA user_version").fetchone()[0] >= 1, "tiny-forge did not create the state file"
now = int(time.time() * 1000)
old = now - 400 * 86400 * 1000
sizes = []
def deploys(start, n, logs, started):
    rows = [(i, "shop", "dev", f"t{i % 500}", f"shop/dev/t{i % 500}", "r/shop:t", "sha256:" + "ab" * 32,
             "succeeded", 1, "h", started + i, started + i + 900, None, "deploy", "http://x") for i in range(start, start + n)]
    db.executemany("INSERT INTO deploys (id, project, stage, tag, slot, image, digest, status, pid, host, started_at, finished_at, error, trigger, url) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    db.executemany("INSERT INTO deploy_logs (deploy_id, seq, ts, level, step, message) VALUES (?,?,?,?,?,?)",
                   ((i, s, started + i, "info", "health", f"probe {s} of deploy {i}: 200 OK") for i in range(start, start + n) for s in range(1, logs + 1)))
    db.commit()
for chunk in range(10):
    deploys(1 + chunk * 10000, 10000, 20, old)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    import os
    sizes.append(((chunk + 1) * 10000, os.path.getsize(sys.argv[1])))
# One deploy with 10,000 log entries, and 1,000 live instances.
deploys(100001, 1, 10000, now)
db.executemany("INSERT INTO instances (deploy_id, project, stage, tag, slot, container_name, container_id, digest, url, status, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
               ((100001, "other", "dev", f"i{n}", f"other/dev/i{n}", f"tf-other-dev-i{n}-1", None, "sha256:" + "cd" * 32, "http://x", "live", now, now) for n in range(1000)))
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
for n, size in sizes:
    print(f"   state file with {n:>6} deploys x 20 entries: {size / 1e6:7.1f} MB ({size / n:.0f} bytes per deploy)")
PY

bench() { hyperfine -N --warmup 3 --runs 30 --export-json "$work/h.json" "$@" >/dev/null 2>&1
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; m=r["median"]*1000; print(f"{m:.1f} ms")' "$work/h.json"; }
echo "   list, 1,000 instances:                      $(bench "$tf --config $work/tf.toml list") (target <= 50 ms)"
echo "   history, 100,000 deploys:                   $(bench "$tf --config $work/tf.toml history") (target <= 50 ms)"
echo "   history shop dev --limit 100:               $(bench "$tf --config $work/tf.toml history shop dev --limit 100")"
echo "   history show, 10,000 entries:               $(bench "$tf --config $work/tf.toml history show 100001") (target <= 100 ms)"
before=$(stat -c %s "$work/state.db")
t0=$(date +%s%N); "$tf" --config "$work/tf.toml" prune >/dev/null; t1=$(date +%s%N)
after=$(stat -c %s "$work/state.db")
echo "   prune (history_retention 30d) took $(( (t1 - t0) / 1000000 )) ms: state file $(python3 -c "print(f'{$before/1e6:.1f} MB -> {$after/1e6:.1f} MB')")"
