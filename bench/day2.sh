#!/usr/bin/env bash
# Day two (issue 12): disk after many tag deploys and removes, prune with 1,000 images present,
# and a no-op redeploy (the slot already runs that digest) with process start included.
# Run by hand: bench/day2.sh [TAGS=100] [IMAGES=1000]. Prints the figures for BENCHMARKS.md.
source "$(dirname "$0")/lib.sh"
tags=${1:-100}
many=${2:-1000}
setup
cat > "$work/tf.toml" <<EOF
[settings]
network = "$net"
state = "$work/state.db"
[health]
start_period = "0s"
interval = "100ms"
start_interval = "50ms"
[projects.d2]
image = "$img"
port = 8080
max_instances = 200
[projects.d2.stages.dev]
default_tag = "base"
EOF
repo_bytes() {
  docker images --format '{{.Repository}} {{.ID}}' | awk -v r="$img" '$1 == r {print $2}' | sort -u \
    | xargs -r docker image inspect -f '{{.Size}}' | awk '{s += $1} END {print s + 0}'
}
repo_count() { docker images --format '{{.Repository}} {{.ID}}' | awk -v r="$img" '$1 == r {print $2}' | sort -u | wc -l; }

echo "== 1. disk after $tags tag deploys and removes (each tag a distinct image)"
for i in $(seq "$tags"); do
  printf 'FROM %s\nENV BUILD=%s\n' "$img:base" "$i" > "$work/image/Dockerfile.t"
  DOCKER_BUILDKIT=0 docker build -q -t "$img:t$i" -f "$work/image/Dockerfile.t" "$work/image" >/dev/null
  docker push -q "$img:t$i" >/dev/null
  docker rmi "$img:t$i" >/dev/null
done
docker rmi "$img:base" >/dev/null 2>&1 || true
before_n=$(repo_count); before_b=$(repo_bytes)
for i in $(seq "$tags"); do
  forge -q deploy d2 dev "t$i" >/dev/null
  forge -q remove d2 dev "t$i" >/dev/null
done
after_n=$(repo_count); after_b=$(repo_bytes)
echo "images of the repository on disk: before $before_n ($before_b bytes), after $tags deploys and removes: $after_n ($after_b bytes)"
forge -q deploy d2 dev >/dev/null
for i in 1 2 3 4; do forge -q deploy d2 dev "t$i" >/dev/null; done
echo "with the default slot and 4 tag slots live (keep_images 3): $(repo_count) images on disk"

echo "== 2. prune with $many other images present"
printf 'FROM scratch\nLABEL n=0\n' > "$work/image/Dockerfile.e"
touch "$work/image/empty"
for i in $(seq "$many"); do
  printf 'FROM scratch\nCOPY empty /empty\nLABEL n=%s\n' "$i" > "$work/image/Dockerfile.e"
  DOCKER_BUILDKIT=0 docker build -q -t "tf-bench-noise-$$:$i" -f "$work/image/Dockerfile.e" "$work/image" >/dev/null
done
echo "images in the engine: $(docker images -q | wc -l)"
hyperfine -N --warmup 1 --runs 10 --export-json "$work/prune.json" "$tf --config $work/tf.toml -q prune" >/dev/null
python3 -c "import json; r=json.load(open('$work/prune.json'))['results'][0]; print(f'prune: median {r[\"median\"]*1000:.1f} ms (min {r[\"min\"]*1000:.1f}, max {r[\"max\"]*1000:.1f})')"
docker images --format '{{.Repository}}:{{.Tag}}' | grep "^tf-bench-noise-$$:" | xargs -r docker rmi >/dev/null

echo "== 3. no-op redeploy (the slot already runs the digest the tag resolves to)"
hyperfine -N --warmup 3 --runs 30 --export-json "$work/noop.json" "$tf --config $work/tf.toml -q deploy d2 dev" >/dev/null
python3 -c "import json; r=json.load(open('$work/noop.json'))['results'][0]; print(f'no-op redeploy: median {r[\"median\"]*1000:.1f} ms (min {r[\"min\"]*1000:.1f}, max {r[\"max\"]*1000:.1f}); target <= 50 ms')"
forge -q prune >/dev/null || true
for t in base t1 t2 t3 t4; do forge -q remove d2 dev "$t" >/dev/null || true; done
docker images --format '{{.Repository}}:{{.Tag}}' | grep "^$img:" | xargs -r docker rmi >/dev/null 2>&1 || true
