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
# Both sides use the image's own HEALTHCHECK (exec form: the image has no shell, and the CLI's
# --health-cmd is always shell form).
printf 'FROM %s\nHEALTHCHECK --interval=100ms --timeout=2s --retries=3 CMD ["/demo-app", "probe"]\n' "$img:base" > "$work/image/Dockerfile.hc"
DOCKER_BUILDKIT=0 docker build -q -t "$img:hc" -f "$work/image/Dockerfile.hc" "$work/image" >/dev/null
for i in $(seq "$runs"); do docker tag "$img:hc" "$img:h$i"; docker push -q "$img:h$i" >/dev/null; done
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
[projects.sw.stages.dev]
default_tag = "base"
TOML
echo "swarm: deploy of a new slot ($runs runs of each side, alternating; image in the registry and the cache; proxy none)"
echo "   both sides: the image's HEALTHCHECK (the app's own probe, every ${probe_ms} ms), run by Swarm"
tf_times=(); sh_times=()
run_tf() {
  local t0; t0=$(now_ns)
  forge -q deploy sw dev "h$1" >/dev/null
  tf_times+=($(ms_since "$t0"))
  forge -q remove sw dev "h$1" >/dev/null
}
run_sh() {
  local t0 name="bench-$$-h$1"; t0=$(now_ns)
  docker service create -q --detach --label "tf-bench=$$" --name "$name" --network "$ov" --endpoint-mode dnsrr \
    "$img:h$1" >/dev/null
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
