#!/usr/bin/env bash
# Deploy speed, side by side with the docker CLI, alternating runs; readiness and failure
# detection; blue/green redeploy against a fresh deploy; 8 parallel deploys against one.
# Run by hand: bench/deploy.sh [runs]   (default 15). Prints figures; writes nothing in the repo.
# BENCH_ONLY=N runs section N alone (6: the cost of a verified deploy).
source "$(dirname "$0")/lib.sh"
runs=${1:-15}
skip() { [ -n "${BENCH_ONLY:-}" ] && [ "$BENCH_ONLY" != "$1" ]; }
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
# The baseline polls /health as often as tiny-forge probes during the start period.
probe_ms=100
probe_s=$(awk "BEGIN { print $probe_ms / 1000 }")
cat > "$work/tf.toml" <<TOML
[settings]
network = "$net"
state = "$work/state.db"
[health]
start_interval = "${probe_ms}ms"
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
[projects.bench.stages.verified]
verify = { window = "3s", interval = "1s", failures = 3 }
[projects.bench.stages.sick.health]
start_period = "0s"
interval = "1s"
retries = 3
$projects
TOML
rm_all() { docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=bench") >/dev/null 2>&1 || true; }
# tf_remove PROJECT STAGE TAG: takes an instance down with its row, so that the next deploy of
# the slot is a fresh one (removing only the container leaves a row that deploy then retires).
tf_remove() { forge -q remove "$@" >/dev/null; }
# no_rows: fails unless the state file holds no instance (a "fresh" deploy must retire nothing).
no_rows() {
  local n
  n=$(forge --output json list | python3 -c 'import json, sys; print(len(json.load(sys.stdin)))')
  [ "$n" -eq 0 ] || { echo "error: $n instances left in the state file; a fresh deploy would retire them" >&2; exit 1; }
}

if ! skip 1; then
echo "1. deploy overhead ($runs runs of each side, alternating which goes first; image in the registry and the cache; app ready at start; proxy none)"
echo "   both sides look for readiness every ${probe_ms} ms (tiny-forge: health.start_interval; baseline: curl loop)"
tf_times=(); sh_times=()
run_tf() {
  local t0; t0=$(now_ns)
  forge -q deploy bench dev "r$1" >/dev/null
  tf_times+=($(ms_since "$t0"))
  tf_remove bench dev "r$1"
}
run_sh() {
  local t0 cid ip; t0=$(now_ns)
  docker pull -q "$img:r$1" >/dev/null
  cid=$(docker run -d --label "tf-bench=$$" --network "$net" "$img:r$1")
  ip=$(docker inspect -f "{{(index .NetworkSettings.Networks \"$net\").IPAddress}}" "$cid")
  until curl -fs -o /dev/null "http://$ip:8080/health"; do sleep "$probe_s"; done
  sh_times+=($(ms_since "$t0"))
  docker rm -f "$cid" >/dev/null
}
for i in $(seq "$runs"); do
  if (( i % 2 )); then run_tf "$i"; run_sh "$i"; else run_sh "$i"; run_tf "$i"; fi
done
mt=$(median "${tf_times[@]}"); ms=$(median "${sh_times[@]}")
echo "   tiny-forge deploy   median $mt ms"
echo "   docker CLI baseline median $ms ms"
echo "   ratio $(ratio "$mt" "$ms")  (targets: <= 1.10, issue 2: <= 1.15)"

fi
if ! skip 2; then
echo "2. readiness: reported healthy after the app is ready (target <= 150 ms)"
for ready in 500 2000 10000; do
  lat=()
  for i in 1 2 3; do
    forge -q deploy bench "r$ready" "r$i" >/dev/null
    took=$(ms_between "$(last_id)" start "start done" health "healthy after")
    lat+=($((took - ready)))
    tf_remove bench "r$ready" "r$i"
  done
  echo "   ready after ${ready} ms: +$(printf '%s ms ' "${lat[@]}")(median +$(median "${lat[@]}") ms)"
done

fi
if ! skip 3; then
echo "3. failure detection"
lat=()
for i in 1 2 3; do
  forge -q deploy bench crash r1 >/dev/null 2>&1 || true
  lat+=($(ms_between "$(last_id)" start "start done" health "health failed"))
done
echo "   container exiting at start: failed $(printf '%s ms ' "${lat[@]}")after start (target <= 1000 ms)"
lat=()
for i in 1 2 3; do
  forge -q deploy bench sick r1 >/dev/null 2>&1 || true
  took=$(ms_between "$(last_id)" health "probing" health "health failed")
  lat+=($((took - 2000)))
done
echo "   app answering 500 (3 retries, 1 s apart: 2000 ms from first to last probe): extra $(printf '%s ms ' "${lat[@]}")"

fi
if ! skip 4; then
echo "4. blue/green redeploy of an occupied slot against a fresh deploy ($runs runs of each, alternating which goes first)"
rm_all
no_rows
forge -q deploy bench dev base >/dev/null
fresh=(); re=()
run_fresh() {
  local t0; t0=$(now_ns)
  forge -q deploy bench dev "r$1" >/dev/null
  fresh+=($(ms_since "$t0"))
  tf_remove bench dev "r$1"
}
# --force: the slot already runs this digest with the same settings, which a plain deploy would
# skip (issue 12); the figure is a real blue/green replacement.
run_re() {
  local t0; t0=$(now_ns)
  forge -q deploy --force bench dev base >/dev/null
  re+=($(ms_since "$t0"))
}
for i in $(seq "$runs"); do
  if (( i % 2 )); then run_fresh "$i"; run_re; else run_re; run_fresh "$i"; fi
done
mf=$(median "${fresh[@]}"); mr=$(median "${re[@]}")
echo "   fresh median $mf ms, redeploy median $mr ms, ratio $(ratio "$mr" "$mf") (target <= 1.3)"
tf_remove bench dev base
rm_all

fi
if ! skip 5; then
echo "5. 8 deploys of different projects at once against one alone (3 runs of each, alternating which goes first)"
no_rows
one=(); par=()
run_one() {
  local t0; t0=$(now_ns)
  forge -q deploy par1 dev >/dev/null
  one+=($(ms_since "$t0"))
  tf_remove par1 dev base
}
run_par() {
  local t0 p pids=(); t0=$(now_ns)
  for p in $(seq 8); do forge -q deploy "par$p" dev >/dev/null & pids+=($!); done
  wait "${pids[@]}"
  par+=($(ms_since "$t0"))
  for p in $(seq 8); do tf_remove "par$p" dev base; done
}
for i in 1 2 3; do
  if (( i % 2 )); then run_one; run_par; else run_par; run_one; fi
done
m1=$(median "${one[@]}"); m8=$(median "${par[@]}")
echo "   one alone median $m1 ms, eight at once median $m8 ms, ratio $(ratio "$m8" "$m1") (target <= 2)"
# The engine's own figure for the same load: docker run, one and eight at once.
b1=(); b8=()
run_b1() {
  local t0; t0=$(now_ns)
  docker run -d --label "tf-bench=$$" --network "$net" "$img:base" >/dev/null
  b1+=($(ms_since "$t0"))
  docker rm -f $(docker ps -aq --filter "label=tf-bench=$$") >/dev/null
}
run_b8() {
  local t0 p pids=(); t0=$(now_ns)
  for p in $(seq 8); do docker run -d --label "tf-bench=$$" --network "$net" "$img:base" >/dev/null & pids+=($!); done
  wait "${pids[@]}"
  b8+=($(ms_since "$t0"))
  docker rm -f $(docker ps -aq --filter "label=tf-bench=$$") >/dev/null
}
for i in 1 2 3; do
  if (( i % 2 )); then run_b1; run_b8; else run_b8; run_b1; fi
done
n1=$(median "${b1[@]}"); n8=$(median "${b8[@]}")
echo "   docker run alone median $n1 ms, eight at once median $n8 ms, ratio $(ratio "$n8" "$n1") (the engine's own bound)"
fi

if ! skip 6; then
echo "6. the cost of a verified redeploy (window 3 s) against the same redeploy with --no-verify ($runs runs of each, alternating which goes first; target: window + <= 100 ms)"
rm_all
forge -q deploy bench verified base >/dev/null
plain=(); verified=()
run_plain() {
  local t0; t0=$(now_ns)
  forge -q deploy --force --no-verify bench verified base >/dev/null
  plain+=($(ms_since "$t0"))
}
run_verified() {
  local t0; t0=$(now_ns)
  forge -q deploy --force bench verified base >/dev/null
  verified+=($(ms_since "$t0"))
}
for i in $(seq "$runs"); do
  if (( i % 2 )); then run_plain; run_verified; else run_verified; run_plain; fi
done
mp=$(median "${plain[@]}"); mv=$(median "${verified[@]}")
echo "   --no-verify median $mp ms, verified median $mv ms, cost $(( ${mv%.*} - ${mp%.*} )) ms (target <= 3100 ms)"
tf_remove bench verified base
rm_all
fi
