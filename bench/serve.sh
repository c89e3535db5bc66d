#!/usr/bin/env bash
# tiny-forge serve (issue 13): webhook answer time under 50 concurrent deliveries, one deploy for
# six notifications, push to first deploy step, remote against local deploy time (alternating),
# SSE delivery latency, and the server's memory idle and at its peak.
# Run by hand: bench/serve.sh [runs]   (default 10). Prints figures; writes nothing in the repo.
source "$(dirname "$0")/lib.sh"
runs=${1:-10}
setup
push_tags "$runs"
secret="bench-hook-secret-$$"
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
debounce_ms=500
cat > "$work/tf.toml" <<TOML
[settings]
network = "$net"
state = "$work/state.db"
[server]
listen = "127.0.0.1:$sport"
debounce = "${debounce_ms}ms"
auth_failures = 1000000
[[receivers]]
name = "reg"
kind = "distribution"
secret_env = "TF_BENCH_HOOK"
[projects.bench]
image = "$img"
port = 8080
max_instances = 1000
[projects.bench.stages.dev]
default_tag = "base"
[projects.bench.stages.remote]
default_tag = "base"
[projects.bench.stages.sse]
default_tag = "base"
[projects.bench.stages.hook]
default_tag = "base"
[[projects.bench.stages.hook.on_push]]
tags = "*"
TOML
rm_all() { docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=bench") >/dev/null 2>&1 || true; }
token=$("$tf" --config "$work/tf.toml" -q token create --name bench)
TF_BENCH_HOOK="$secret" "$tf" --config "$work/tf.toml" -q serve &
server_pid=$!
trap 'kill $server_pid 2>/dev/null; wait $server_pid 2>/dev/null; cleanup' EXIT
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$sport/healthz" >/dev/null && break; sleep 0.1; done
sleep 2
echo "server idle RSS: $(awk '/VmRSS/ {print $2, $3}' /proc/$server_pid/status) (target <= 25 MB)"
digest=$(docker inspect -f '{{index .RepoDigests 0}}' "$img:base" | cut -d@ -f2)
repo=${img#*/}
registry=${img%%/*}

python3 bench/serve.py webhooks "127.0.0.1:$sport" "$secret" "$registry" "$repo" "$digest" 20 50
sleep 3; rm_all
python3 bench/serve.py six "127.0.0.1:$sport" "$secret" "$registry" "$repo" "$digest" "$work/state.db"
python3 bench/serve.py push "127.0.0.1:$sport" "$secret" "$registry" "$repo" "$digest" "$work/state.db" "$debounce_ms" "$runs"
rm_all

echo "remote against local deploy ($runs alternating runs; new slots; image in registry and cache)"
local_t=(); remote_t=()
for i in $(seq "$runs"); do
  t0=$(now_ns); "$tf" --config "$work/tf.toml" -q deploy bench dev "r$i" >/dev/null; t1=$(now_ns)
  local_t+=($(( (t1 - t0) / 1000000 )))
  t0=$(now_ns)
  TINY_FORGE_REMOTE="http://127.0.0.1:$sport" TINY_FORGE_TOKEN="$token" "$tf" --config "$work/tf.toml" -q deploy bench remote "r$i" >/dev/null
  t1=$(now_ns)
  remote_t+=($(( (t1 - t0) / 1000000 )))
  rm_all
done
lm=$(median "${local_t[@]}"); rm_=$(median "${remote_t[@]}")
echo "  local ${lm} ms, remote ${rm_} ms (medians), ratio $(ratio "$rm_" "$lm") (target <= 1.05)"
python3 bench/serve.py sse "127.0.0.1:$sport" "$token" "$runs"
rm_all
echo "server peak RSS (VmHWM, after all of the above): $(awk '/VmHWM/ {print $2, $3}' /proc/$server_pid/status) (target <= 40 MB during a deploy)"
