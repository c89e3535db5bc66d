#!/usr/bin/env bash
# Swarm deploy speed (issue 14): `tiny-forge deploy` of a new slot on the swarm engine against the
# same deploy done with the docker CLI (`docker service create`, then polling until its task is
# running and healthy), alternating which goes first. Turns swarm mode on when it is off and off
# again at the end. Run by hand: bench/swarm.sh [runs]   (default 11). Prints figures.
source "$(dirname "$0")/lib.sh"
runs=${1:-11}
setup
swarm_was=$(docker info --format '{{.Swarm.LocalNodeState}}')
[ "$swarm_was" = active ] || docker swarm init --advertise-addr 127.0.0.1 >/dev/null
ov="tf-bench-ov-$$"
swarm_cleanup() {
  docker service rm $(docker service ls -q --filter "label=tf-bench=$$") $(docker service ls -q --filter "label=dev.tiny-forge.project=sw") >/dev/null 2>&1 || true
  sleep 2
  docker network rm "$ov" >/dev/null 2>&1 || true
  [ "$swarm_was" = active ] || docker swarm leave --force >/dev/null 2>&1 || true
  cleanup
}
trap swarm_cleanup EXIT
docker network create -d overlay --attachable "$ov" >/dev/null
push_tags "$runs"
probe_ms=100
cat > "$work/tf.toml" <<TOML
[settings]
network = "$ov"
state = "$work/state.db"
[health]
start_period = "0s"
interval = "${probe_ms}ms"
start_interval = "${probe_ms}ms"
retries = 3
timeout = "2s"
[projects.sw]
image = "$img"
port = 8080
max_instances = 1000
engine = { kind = "swarm", endpoint_mode = "dnsrr" }
health = { command = ["/demo-app", "probe"] }
[projects.sw.stages.dev]
default_tag = "base"
TOML
forge() { "$tf" --config "$work/tf.toml" "$@"; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
echo "swarm: deploy of a new slot ($runs runs of each side, alternating; image in the registry and the cache; proxy none)"
echo "   both sides: health checked by Swarm every ${probe_ms} ms with the app's own probe (start_interval needs Engine API 1.44; this engine speaks 1.41, so none on either side)"
tf_times=(); sh_times=()
run_tf() {
  local t0; t0=$(now_ns)
  forge -q deploy sw dev "r$1" >/dev/null
  tf_times+=($(ms_since "$t0"))
  forge -q remove sw dev "r$1" >/dev/null
}
run_sh() {
  local t0 name="bench-$$-r$1"; t0=$(now_ns)
  docker service create -q --detach --label "tf-bench=$$" --name "$name" --network "$ov" --endpoint-mode dnsrr \
    --health-cmd "/demo-app probe" --health-interval "${probe_ms}ms" \
    --health-start-period 0s --health-retries 3 --health-timeout 2s "$img:r$1" >/dev/null
  until [ "$(docker service ps -q --filter desired-state=running --filter "name=$name" --format '{{.CurrentState}}' "$name" | grep -c '^Running')" -ge 1 ]; do
    sleep 0.1
  done
  sh_times+=($(ms_since "$t0"))
  docker service rm "$name" >/dev/null
}
for i in $(seq "$runs"); do
  if (( i % 2 )); then run_tf "$i"; run_sh "$i"; else run_sh "$i"; run_tf "$i"; fi
done
mt=$(median "${tf_times[@]}"); ms=$(median "${sh_times[@]}")
echo "   tiny-forge deploy (swarm)       median $mt ms   (all: ${tf_times[*]})"
echo "   docker service create + polling median $ms ms   (all: ${sh_times[*]})"
echo "   ratio $(ratio "$mt" "$ms")  (target: <= 1.10)"
