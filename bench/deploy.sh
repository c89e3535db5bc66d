#!/usr/bin/env bash
# Benchmark: `tiny-forge deploy` against a shell baseline doing the same job with the docker CLI,
# alternating runs, and readiness detection of an app that gets ready 2 s after start.
# Run by hand: bench/deploy.sh [runs]   (default 15). Prints figures; writes nothing in the repo.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
runs=${1:-15}

command -v docker-registry >/dev/null || { echo "install docker-registry first (scripts/test does)" >&2; exit 1; }
cargo build --release --locked --quiet
tf="$root/target/release/tiny-forge"

work=$(mktemp -d)
net="tf-bench-$$"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cleanup() {
  docker rm -f $(docker ps -aq --filter "label=tf-bench=$$") $(docker ps -aq --filter "label=dev.tiny-forge.project=bench") >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
  kill "${registry_pid:-0}" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/image" "$work/reg"
rustc -O -C target-feature=+crt-static -o "$work/image/demo-app" examples/demo-app/main.rs
cp examples/demo-app/Dockerfile "$work/image/"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' "$work/reg/data" "$port" > "$work/reg/config.yml"
docker-registry serve "$work/reg/config.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
img="127.0.0.1:$port/bench/demo"
DOCKER_BUILDKIT=0 docker build -q -t "$img:base" "$work/image" >/dev/null
for i in $(seq "$runs"); do
  docker tag "$img:base" "$img:r$i"; docker push -q "$img:r$i" >/dev/null   # in the registry and in the cache
done
docker network create "$net" >/dev/null

cat > "$work/tf.toml" <<TOML
[settings]
network = "$net"
state = "$work/state.db"
[projects.bench]
image = "$img"
port = 8080
max_instances = 1000
[projects.bench.stages.dev]
default_tag = "base"
[projects.bench.stages.slow]
default_tag = "base"
env = { READY_AFTER_MS = "2000" }
TOML

now() { date +%s%N; }
tf_times=(); sh_times=()
for i in $(seq "$runs"); do
  # tiny-forge: a new slot each run (tag r$i), proxy none.
  t0=$(now); "$tf" --config "$work/tf.toml" -q deploy bench dev "r$i" >/dev/null; t1=$(now)
  tf_times+=($(( (t1 - t0) / 1000 )))
  # baseline: the same job with the docker CLI, polling the health URL every 50 ms.
  t0=$(now)
  docker pull -q "$img:r$i" >/dev/null
  cid=$(docker run -d --label "tf-bench=$$" --network "$net" "$img:r$i")
  ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$cid")
  until curl -fs -o /dev/null "http://$ip:8080/health"; do sleep 0.05; done
  t1=$(now)
  sh_times+=($(( (t1 - t0) / 1000 )))
  docker rm -f "$cid" $(docker ps -aq --filter "label=dev.tiny-forge.project=bench") >/dev/null
done

median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
mt=$(median "${tf_times[@]}"); ms=$(median "${sh_times[@]}")
echo "deploy overhead ($runs alternating runs, image in registry and cache, proxy none)"
printf '  tiny-forge deploy   median %7.1f ms\n' "$(echo "$mt/1000" | bc -l)"
printf '  docker CLI baseline median %7.1f ms\n' "$(echo "$ms/1000" | bc -l)"
printf '  ratio                      %7.3f  (target <= 1.15)\n' "$(echo "$mt/$ms" | bc -l)"

# Readiness: the app answers 503 until 2 s after it starts; how soon after that is it reported?
lat=()
for i in 1 2 3 4 5; do
  "$tf" --config "$work/tf.toml" -q deploy bench slow "r$i" >/dev/null
  id=$("$tf" --config "$work/tf.toml" --output json history bench slow --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])')
  # From the state file: when `start` finished (the app's start) and when health was reported.
  read -r started healthy < <("$tf" --config "$work/tf.toml" --output json history show "$id" | python3 -c '
import json, sys, datetime
d = json.load(sys.stdin)
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
start = next(l for l in d["logs"] if l["step"] == "start" and l["message"].startswith("start done"))
health = next(l for l in d["logs"] if l["step"] == "health" and l["message"].startswith("healthy after"))
print(ts(start["ts"]), ts(health["ts"]))')
  lat+=($(echo "($healthy - $started) * 1000" | bc -l | cut -d. -f1))
  docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=bench") >/dev/null
done
echo "readiness (app ready 2000 ms after start; 5 runs)"
echo "  reported healthy after start: $(printf '%s ms ' "${lat[@]}")(median $(median "${lat[@]}") ms; target <= 2250 ms)"
