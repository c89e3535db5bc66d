#!/usr/bin/env bash
# Deploy speed, side by side with the docker CLI, alternating runs; readiness and failure
# detection; blue/green redeploy against a fresh deploy; 8 parallel deploys against one.
# Run by hand: bench/deploy.sh [runs]   (default 15). Prints figures; writes nothing in the repo.
source "$(dirname "$0")/lib.sh"
runs=${1:-15}
setup
push_tags "$runs"

projects=""
for p in $(seq 8); do
  projects+="[projects.par$p]
image = \"$img\"
port = 8080
[projects.par$p.stages.dev]
default_tag = \"base\"
"
done
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
[projects.bench.stages.r500]
env = { READY_AFTER_MS = "500" }
[projects.bench.stages.r2000]
env = { READY_AFTER_MS = "2000" }
[projects.bench.stages.r10000]
env = { READY_AFTER_MS = "10000" }
[projects.bench.stages.crash]
env = { LISTEN_AFTER_MS = "600000", EXIT_AFTER_MS = "0" }
[projects.bench.stages.sick]
env = { HEALTH_STATUS = "500" }
[projects.bench.stages.sick.health]
start_period = "0s"
interval = "1s"
retries = 3
$projects
TOML
rm_all() { docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=bench") >/dev/null 2>&1 || true; }

echo "1. deploy overhead ($runs alternating runs; image in the registry and the cache; app ready at start; proxy none)"
tf_times=(); sh_times=()
for i in $(seq "$runs"); do
  t0=$(now_ns); "$tf" --config "$work/tf.toml" -q deploy bench dev "r$i" >/dev/null; t1=$(now_ns)
  tf_times+=($(( (t1 - t0) / 1000000 )))
  t0=$(now_ns)
  docker pull -q "$img:r$i" >/dev/null
  cid=$(docker run -d --label "tf-bench=$$" --network "$net" "$img:r$i")
  ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$cid")
  until curl -fs -o /dev/null "http://$ip:8080/health"; do sleep 0.05; done
  t1=$(now_ns)
  sh_times+=($(( (t1 - t0) / 1000000 )))
  docker rm -f "$cid" >/dev/null; rm_all
done
mt=$(median "${tf_times[@]}"); ms=$(median "${sh_times[@]}")
echo "   tiny-forge deploy   median $mt ms"
echo "   docker CLI baseline median $ms ms"
echo "   ratio $(ratio "$mt" "$ms")  (targets: <= 1.10, issue 2: <= 1.15)"

echo "2. readiness: reported healthy after the app is ready (target <= 150 ms)"
for ready in 500 2000 10000; do
  lat=()
  for i in 1 2 3; do
    "$tf" --config "$work/tf.toml" -q deploy bench "r$ready" "r$i" >/dev/null
    took=$(ms_between "$(last_id)" start "start done" health "healthy after")
    lat+=($((took - ready)))
    rm_all
  done
  echo "   ready after ${ready} ms: +$(printf '%s ms ' "${lat[@]}")(median +$(median "${lat[@]}") ms)"
done

echo "3. failure detection"
lat=()
for i in 1 2 3; do
  "$tf" --config "$work/tf.toml" -q deploy bench crash r1 >/dev/null 2>&1 || true
  lat+=($(ms_between "$(last_id)" start "start done" health "health failed"))
done
echo "   container exiting at start: failed $(printf '%s ms ' "${lat[@]}")after start (target <= 1000 ms)"
lat=()
for i in 1 2 3; do
  "$tf" --config "$work/tf.toml" -q deploy bench sick r1 >/dev/null 2>&1 || true
  took=$(ms_between "$(last_id)" health "probing" health "health failed")
  lat+=($((took - 2000)))
done
echo "   app answering 500 (3 retries, 1 s apart: 2000 ms from first to last probe): extra $(printf '%s ms ' "${lat[@]}")"

echo "4. blue/green redeploy of an occupied slot against a fresh deploy ($runs alternating runs)"
"$tf" --config "$work/tf.toml" -q deploy bench dev base >/dev/null
fresh=(); re=()
for i in $(seq "$runs"); do
  t0=$(now_ns); "$tf" --config "$work/tf.toml" -q deploy bench dev "r$i" >/dev/null; t1=$(now_ns)
  fresh+=($(( (t1 - t0) / 1000000 )))
  t0=$(now_ns); "$tf" --config "$work/tf.toml" -q deploy bench dev base >/dev/null; t1=$(now_ns)
  re+=($(( (t1 - t0) / 1000000 )))
  "$tf" --config "$work/tf.toml" -q remove bench dev "r$i" >/dev/null
done
mf=$(median "${fresh[@]}"); mr=$(median "${re[@]}")
echo "   fresh median $mf ms, redeploy median $mr ms, ratio $(ratio "$mr" "$mf") (target <= 1.3)"
rm_all

echo "5. 8 deploys of different projects at once against one alone"
one=()
for i in 1 2 3; do
  t0=$(now_ns); "$tf" --config "$work/tf.toml" -q deploy par1 dev >/dev/null; t1=$(now_ns)
  one+=($(( (t1 - t0) / 1000000 )))
  docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=par1") >/dev/null
done
par=()
for i in 1 2 3; do
  t0=$(now_ns)
  pids=()
  for p in $(seq 8); do "$tf" --config "$work/tf.toml" -q deploy "par$p" dev >/dev/null & pids+=($!); done
  wait "${pids[@]}"
  t1=$(now_ns)
  par+=($(( (t1 - t0) / 1000000 )))
  for p in $(seq 8); do docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=par$p") >/dev/null; done
done
m1=$(median "${one[@]}"); m8=$(median "${par[@]}")
echo "   one alone median $m1 ms, eight at once median $m8 ms, ratio $(ratio "$m8" "$m1") (target <= 2)"
# The engine's own figure for the same load: docker run, one and eight at once.
b1=(); b8=()
for i in 1 2 3; do
  t0=$(now_ns); docker run -d --label "tf-bench=$$" --network "$net" "$img:base" >/dev/null; t1=$(now_ns)
  b1+=($(( (t1 - t0) / 1000000 )))
  docker rm -f $(docker ps -aq --filter "label=tf-bench=$$") >/dev/null
  t0=$(now_ns)
  pids=()
  for p in $(seq 8); do docker run -d --label "tf-bench=$$" --network "$net" "$img:base" >/dev/null & pids+=($!); done
  wait "${pids[@]}"
  t1=$(now_ns)
  b8+=($(( (t1 - t0) / 1000000 )))
  docker rm -f $(docker ps -aq --filter "label=tf-bench=$$") >/dev/null
done
n1=$(median "${b1[@]}"); n8=$(median "${b8[@]}")
echo "   docker run alone median $n1 ms, eight at once median $n8 ms, ratio $(ratio "$n8" "$n1") (the engine's own bound)"
