#!/usr/bin/env bash
# How cost grows with the number of live previews (issue 26). Measures, on an empty host and
# then with N live previews (default 500; one stage, tags t1…tN, each its own container), side
# by side in the same run: a fresh deploy, a no-op redeploy, a forced redeploy, remove, list,
# list --probe, prune with nothing to do and with 10% of the previews expired, history with
# 100,000 deploys in the state file, and through `serve`: GET /v1/instances, the web page's
# previews list (when this build has one) and the server's memory.
# Run by hand: bench/scale.sh [N] [runs]   (defaults 500 and 5). Prints figures; writes nothing
# in the repo. Needs Docker (N containers run at once: about 10 MB of memory each).
source "$(dirname "$0")/lib.sh"
n=${1:-500}
runs=${2:-5}
setup
expired=$(( n / 10 ))
sport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

# Two state files and projects, same image and settings: `empty` measures an empty host first,
# `scale` then holds the N previews. Proxy none; probes every 100 ms during the start period.
config() { # config NAME STATE_FILE
  cat <<TOML
[settings]
network = "$net"
state = "$2"
[server]
listen = "127.0.0.1:$sport"
auth_failures = 1000000
[health]
start_interval = "100ms"
[projects.$1]
image = "$img"
port = 8080
max_instances = $(( n + 100 ))
keep_images = 1
[projects.$1.stages.pr]
default_tag = "base"
TOML
}
config empty "$work/empty.db" > "$work/empty.toml"
config scale "$work/scale.db" > "$work/scale.toml"
fe() { "$tf" --config "$work/empty.toml" "$@"; }
fs() { "$tf" --config "$work/scale.toml" "$@"; }
rm_project() { docker rm -f $(docker ps -aq --filter "label=dev.tiny-forge.project=$1") >/dev/null 2>&1 || true; }
trap '[ "${server_pid:-0}" -gt 0 ] && kill "$server_pid" 2>/dev/null; rm_project empty; rm_project scale; cleanup' EXIT

echo "pushing tags t1…t$n and x1…x$runs (one digest, many tags)"
for i in $(seq "$n"); do docker tag "$img:base" "$img:t$i"; docker push -q "$img:t$i" >/dev/null; done
for i in $(seq "$runs"); do docker tag "$img:base" "$img:x$i"; docker push -q "$img:x$i" >/dev/null; done

# ms CMD…: one run, milliseconds (process start included).
ms() { local t0; t0=$(now_ns); if "$@" >/dev/null 2>"$work/last.err"; then ms_since "$t0"; else echo "FAIL"; echo "failed: $*: $(tail -1 "$work/last.err")" >&2; fi; }
# med CMD…: median of $runs runs.
med() { local t=(); for _ in $(seq "$runs"); do t+=($(ms "$@")); done; median "${t[@]}"; }

declare -A fig

deploy_figures() { # deploy_figures FORGE PROJECT SIDE
  local f=$1 p=$2 side=$3 fresh=() noop=() forced=() removal=() i
  for i in $(seq "$runs"); do
    fresh+=($(ms "$f" -q deploy "$p" pr "x$i"))
    noop+=($(ms "$f" -q deploy "$p" pr "x$i"))
    forced+=($(ms "$f" -q deploy --force "$p" pr "x$i"))
    removal+=($(ms "$f" -q remove "$p" pr "x$i"))
  done
  fig[$side.fresh]=$(median "${fresh[@]}")
  fig[$side.noop]=$(median "${noop[@]}")
  fig[$side.forced]=$(median "${forced[@]}")
  fig[$side.remove]=$(median "${removal[@]}")
  fig[$side.list]=$(med "$f" list)
  # The engine's own share of a deploy and a removal: one container run on the stage's network
  # and removed, by the docker CLI, with as many containers beside it as this side has.
  fig[$side.engine_run]=$(med sh -c "docker run -d --name tf-scale-floor --network '$net' '$img:base' >/dev/null && docker rm -f tf-scale-floor")
  # The engine's own share: the one container list `list` and `prune` ask for, straight from
  # the Docker socket (what no change in tiny-forge can make cheaper).
  fig[$side.engine_list]=$(med curl -fs --unix-socket "${DOCKER_SOCK:-/var/run/docker.sock}" -o /dev/null \
    "http://docker/containers/json?all=1&filters=%7B%22label%22%3A%5B%22dev.tiny-forge.managed%3Dtrue%22%5D%7D")
  fig[$side.probe]=$(med "$f" list --probe)
  fig[$side.prune]=$(med "$f" prune)
}

# serve_figures FORGE_CONFIG SIDE: GET /v1/instances (median of 20) and the server's memory.
serve_figures() {
  local cfg=$1 side=$2 token
  token=$("$tf" --config "$cfg" -q token create --name "bench-$side")
  "$tf" --config "$cfg" -q serve &
  server_pid=$!
  for _ in $(seq 100); do curl -fs "http://127.0.0.1:$sport/healthz" >/dev/null && break; sleep 0.1; done
  fig[$side.api]=$(python3 - "$sport" "$token" <<'PY'
import http.client, statistics, sys, time
port, token = int(sys.argv[1]), sys.argv[2]
times = []
for _ in range(21):
    c = http.client.HTTPConnection("127.0.0.1", port)
    t0 = time.perf_counter()
    c.request("GET", "/v1/instances", headers={"Authorization": f"Bearer {token}"})
    r = c.getresponse(); r.read()
    assert r.status == 200, r.status
    times.append((time.perf_counter() - t0) * 1000)
    c.close()
print(f"{statistics.median(times[1:]):.1f}")
PY
)
  # The web page's previews list, when this build serves one.
  if curl -fs -o /dev/null "http://127.0.0.1:$sport/ui/login"; then
    fig[$side.ui]=$(python3 bench/ui_previews.py "$sport" "$token" 2>/dev/null || echo "n/a")
  else
    fig[$side.ui]="n/a"
  fi
  fig[$side.rss]=$(awk '/VmRSS/ {printf "%.1f", $2 / 1024}' "/proc/$server_pid/status")
  kill "$server_pid"; wait "$server_pid" 2>/dev/null || true
  server_pid=0
}

# The expired previews are deployed first, then (after a gap of 20 s) the rest: prune
# --older-than (their age less 10 s) removes exactly the old ones.
old_deployed_at=0
add_previews() { # add_previews FORGE PROJECT FROM TO
  local f=$1 p=$2 i
  for i in $(seq "$3" "$4"); do "$f" -q deploy "$p" pr "t$i" >/dev/null; done
}
expire_figure() { # expire_figure FORGE PROJECT SIDE
  local f=$1 p=$2 side=$3 age
  age=$(( ($(now_ns) - old_deployed_at) / 1000000000 - 10 ))
  fig[$side.expire]=$(ms "$f" prune --older-than "${age}s")
  fig[$side.expired_left]=$("$f" --output json list | python3 -c 'import json,sys; print(sum(1 for i in json.load(sys.stdin) if i.get("status") == "live"))')
}

# history_figure FORGE STATE SIDE PROJECT: 100,000 deploys (copies of the real rows, 20 log entries
# each) in the state file, then `history` and `history --limit 100` of one stage.
history_figure() {
  local f=$1 db=$2 side=$3 p=$4
  python3 - "$db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
cols = [r[1] for r in db.execute("PRAGMA table_info(deploys)") if r[1] != "id"]
src = db.execute("SELECT id FROM deploys ORDER BY id LIMIT 1").fetchone()[0]
lcols = [r[1] for r in db.execute("PRAGMA table_info(deploy_logs)") if r[1] not in ("id", "deploy_id", "seq")]
have = db.execute("SELECT COUNT(*) FROM deploys").fetchone()[0]
for _ in range(100000 - have):
    cur = db.execute(f"INSERT INTO deploys ({','.join(cols)}) SELECT {','.join(cols)} FROM deploys WHERE id = ?", (src,))
    new = cur.lastrowid
    db.executemany(f"INSERT INTO deploy_logs (deploy_id, seq, {','.join(lcols)}) SELECT ?, ?, {','.join(lcols)} FROM deploy_logs WHERE deploy_id = ? ORDER BY seq LIMIT 1",
                   ((new, s, src) for s in range(1, 21)))
db.commit()
db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
PY
  fig[$side.history]=$(med "$f" history)
  fig[$side.history100]=$(med "$f" history "$p" pr --limit 100)
}

echo "== empty host"
rm_project empty; rm_project scale
deploy_figures fe empty empty
serve_figures "$work/empty.toml" empty
add_previews fe empty 1 "$expired"; old_deployed_at=$(now_ns); sleep 20
expire_figure fe empty empty

echo "== $n live previews (deploying them)"
t0=$(now_ns)
add_previews fs scale 1 "$expired"; old_deployed_at=$(now_ns); sleep 20
add_previews fs scale $(( expired + 1 )) "$n"
echo "   $n previews deployed in $(( $(ms_since "$t0") / 1000 )) s; $(docker ps -q --filter label=dev.tiny-forge.project=scale | wc -l) containers run"
deploy_figures fs scale full
serve_figures "$work/scale.toml" full
expire_figure fs scale full
echo "   prune removed the $expired expired previews: $(( n - fig[full.expired_left] )) gone, ${fig[full.expired_left]} live left"

echo "== history with 100,000 deploys"
history_figure fe "$work/empty.db" empty empty
history_figure fs "$work/scale.db" full scale

row() { # row LABEL KEY TARGET
  printf '| %s | %s ms | %s ms | %s | %s |\n' "$1" "${fig[empty.$2]}" "${fig[full.$2]}" \
    "$(python3 -c "e,f='${fig[empty.$2]}','${fig[full.$2]}'; print(f'{float(f)/max(float(e),0.1):.2f}x' if e.replace('.','').isdigit() and f.replace('.','').isdigit() else '-')")" "$3"
}
echo
echo "N = $n live previews, medians of $runs runs (process start included); $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GB", $2/1048576}' /proc/meminfo), Docker $(docker version -f '{{.Server.Version}}')"
echo "| figure | empty host | $n previews | ratio | target |"
echo "| --- | --- | --- | --- | --- |"
row "deploy (fresh slot)" fresh "<= 1.1x"
row "the engine alone: docker run -d on the network, then docker rm -f" engine_run ""
row "deploy (no-op: same digest)" noop ""
row "deploy --force" forced ""
row "remove" remove "<= 1.1x"
row "list" list "<= 100 ms"
row "the engine's container list alone (curl on the socket)" engine_list ""
row "list --probe" probe ""
row "prune (nothing to do)" prune "<= 1.1x"
row "prune ($expired expired: removes them)" expire ""
row "history (100,000 deploys)" history ""
row "history pr --limit 100" history100 ""
row "GET /v1/instances (serve)" api "<= 100 ms"
row "web page previews list" ui "<= 50 ms server-side"
printf '| serve RSS | %s MB | %s MB | | <= 40 MB |\n' "${fig[empty.rss]}" "${fig[full.rss]}"
