# Shared set-up for the benchmark scripts: a release build, the demo app image in a registry on
# loopback, a Docker network, a work directory; all removed on exit. Source it, then call setup.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

need() { command -v "$1" >/dev/null || { echo "installing $2"; apt-get install -y -qq "$2" >/dev/null; }; }

setup() {
  need docker-registry docker-registry
  need hyperfine hyperfine
  cargo build --release --locked --quiet
  tf="$root/target/release/tiny-forge"
  work=$(mktemp -d)
  net="tf-bench-$$"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
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
  docker push -q "$img:base" >/dev/null
  docker network create "$net" >/dev/null
}

cleanup() {
  docker rm -f $(docker ps -aq --filter "label=tf-bench=$$") $(docker ps -aq --filter "label=dev.tiny-forge.managed=true" --filter "name=tf-bench") >/dev/null 2>&1 || true
  docker network rm "$net" >/dev/null 2>&1 || true
  kill "${registry_pid:-0}" 2>/dev/null || true
  rm -rf "$work"
}

# push_tags N: make tags r1..rN of the image (in the registry and the local cache).
push_tags() {
  for i in $(seq "$1"); do docker tag "$img:base" "$img:r$i"; docker push -q "$img:r$i" >/dev/null; done
}

now_ns() { date +%s%N; }
# ms_since T0: milliseconds from T0 (now_ns) to now.
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
# forge ARGS…: tiny-forge with the script's config ($work/tf.toml).
forge() { "$tf" --config "$work/tf.toml" "$@"; }
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print (a[NR/2]+a[NR/2+1])/2}'; }
ratio() { python3 -c "print(f'{$1/$2:.3f}')"; }

# ms_between ID STEP_A PREFIX_A STEP_B PREFIX_B: milliseconds between two log entries of a deploy.
ms_between() {
  "$tf" --config "$work/tf.toml" --output json history show "$1" | python3 -c '
import json, sys, datetime
d = json.load(sys.stdin)
ts = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
def find(step, prefix):
    return next(ts(l["ts"]) for l in d["logs"] if l["step"] == step and l["message"].startswith(prefix))
print(round((find(sys.argv[3], sys.argv[4]) - find(sys.argv[1], sys.argv[2])) * 1000))' "$2" "$3" "$4" "$5"
}

last_id() { "$tf" --config "$work/tf.toml" --output json history --limit 1 | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["id"])'; }
