#!/usr/bin/env bash
# Push to live (issue 26): the time from `docker push` until a request through a real Caddy
# answers with the new content. A real loopback registry sends its real notifications to a
# running `tiny-forge serve`, which deploys and switches Caddy's route; then the same with the
# poller (`poll = "1s"`, no webhook). p50 and max over N pushes (default 20), each a new image.
# Run by hand: bench/push-to-live.sh [pushes]. Prints figures; writes nothing in the repo.
source "$(dirname "$0")/lib.sh"
pushes=${1:-20}
debounce_ms=500
setup
command -v caddy >/dev/null || { echo "installing caddy"; apt-get install -y -qq caddy >/dev/null; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
sport=$(free_port); admin=$(free_port); http=$(free_port)
secret="bench-push-$$"
domain="bench.local"

# The registry again, now notifying serve of every push (as a real one is set up to).
kill "$registry_pid"; wait "$registry_pid" 2>/dev/null || true
cat >> "$work/reg/config.yml" <<YML
notifications:
  endpoints:
    - name: tiny-forge
      url: http://127.0.0.1:$sport/hooks/reg
      headers:
        Authorization: [Bearer $secret]
      timeout: 2s
      threshold: 3
      backoff: 1s
      ignoredmediatypes: [application/octet-stream]
YML
docker-registry serve "$work/reg/config.yml" >/dev/null 2>&1 &
registry_pid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

# Caddy, plain HTTP on loopback, routes managed by tiny-forge through its admin API.
mkdir -p "$work/caddy"
cat > "$work/caddy/caddy.json" <<JSON
{"admin": {"listen": "127.0.0.1:$admin"},
 "apps": {"http": {"servers": {"srv0": {"listen": ["127.0.0.1:$http"], "routes": [],
   "automatic_https": {"disable": true}}}}}}
JSON
HOME="$work/caddy" XDG_CONFIG_HOME="$work/caddy" XDG_DATA_HOME="$work/caddy" \
  caddy run --config "$work/caddy/caddy.json" >"$work/caddy/log" 2>&1 &
caddy_pid=$!
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$admin/config/" >/dev/null && break; sleep 0.1; done

config() { # config WITH_RECEIVER
  cat <<TOML
[settings]
network = "$net"
state = "$work/state.db"
domain = "$domain"
[proxy]
kind = "caddy"
url = "http://127.0.0.1:$admin"
[server]
listen = "127.0.0.1:$sport"
debounce = "${debounce_ms}ms"
[health]
start_interval = "100ms"
[projects.push]
image = "$img"
port = 8080
max_instances = 2
keep_images = 1
[projects.push.stages.dev]
default_tag = "live"
[[projects.push.stages.dev.on_push]]
tags = "live"
slot = "default"
TOML
  if [ "$1" = poll ]; then echo 'poll = "1s"'; else cat <<TOML
[[receivers]]
name = "reg"
kind = "distribution"
secret_env = "TF_BENCH_HOOK"
TOML
  fi
}
rm_all() { docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=push") >/dev/null 2>&1 || true; }
server_pid=0
# Never `kill 0` (that is this script's whole process group): only the pids that are set.
stop() { local p; for p in "$@"; do [ "${p:-0}" -gt 0 ] && kill "$p" 2>/dev/null; done; true; }
trap 'stop "$server_pid" "${caddy_pid:-0}"; rm_all; cleanup' EXIT

host="stage-dev-push.$domain"
through_caddy() { curl -fs -m 2 -H "Host: $host" "http://127.0.0.1:$http/" 2>/dev/null || true; }

# One new image per push: the base image with another MESSAGE (what `/` answers).
build() { # build MESSAGE: tags $img:live
  printf 'FROM %s\nENV MESSAGE=%s\n' "$img:base" "$1" | DOCKER_BUILDKIT=0 docker build -q -t "$img:live" - >/dev/null 2>&1
}

run() { # run MODE: pushes, then p50 and max
  local mode=$1 i msg t0 took push_ms times=() pushes_ms=()
  config "$mode" > "$work/tf.toml"
  TF_BENCH_HOOK="$secret" "$tf" --config "$work/tf.toml" -q serve 2>"$work/serve.log" &
  server_pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$sport/healthz" >/dev/null && break; sleep 0.1; done
  for i in $(seq "$pushes"); do
    msg="$mode-$i-$RANDOM"
    build "$msg"
    t0=$(now_ns)
    docker push -q "$img:live" >/dev/null
    push_ms=$(ms_since "$t0")
    until [ "$(through_caddy)" = "$msg" ]; do
      sleep 0.02
      if (( $(ms_since "$t0") > 60000 )); then echo "error: $msg not live after 60 s; serve log:" >&2; tail -5 "$work/serve.log" >&2; exit 1; fi
    done
    took=$(ms_since "$t0")
    times+=("$took"); pushes_ms+=("$push_ms")
    # The next push starts from a quiet slot (the poller's next look, the debounce, the retire).
    sleep 2
  done
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=0
  local p50 max; p50=$(median "${times[@]}"); max=$(printf '%s\n' "${times[@]}" | sort -n | tail -1)
  echo "   $mode: push to live through Caddy p50 $p50 ms, max $max ms over $pushes pushes (docker push itself: median $(median "${pushes_ms[@]}") ms)"
  fig_p50[$mode]=$p50
}
declare -A fig_p50

echo "push to live: registry notifications -> serve -> deploy -> Caddy (debounce ${debounce_ms} ms)"
# The slot's first deploy, so that each push replaces a running instance.
config webhook > "$work/tf.toml"
build "first-$RANDOM"; docker push -q "$img:live" >/dev/null
"$tf" --config "$work/tf.toml" -q deploy push dev live >/dev/null
run webhook
echo "   target: p50 <= debounce + 1 s = $(( debounce_ms + 1000 )) ms: $( (( fig_p50[webhook] <= debounce_ms + 1000 )) && echo met || echo NOT met)"
echo "push to live with the poller (poll = \"1s\", no webhook; debounce ${debounce_ms} ms)"
run poll
echo "   expected: about half the poll interval more than with the webhook"
