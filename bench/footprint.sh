#!/usr/bin/env bash
# Footprint: peak RSS of a deploy, `tiny-forge --version` time, release binary size.
# Run by hand: bench/footprint.sh. Prints figures.
source "$(dirname "$0")/lib.sh"
setup
cat > "$work/tf.toml" <<TOML
[settings]
network = "$net"
state = "$work/state.db"
[projects.bench]
image = "$img"
port = 8080
[projects.bench.stages.dev]
default_tag = "base"
TOML
rss=()
for i in 1 2 3 4 5; do
  kb=$( { /usr/bin/time -f '%M' "$tf" --config "$work/tf.toml" -q deploy bench dev >/dev/null; } 2>&1 | tail -1 )
  rss+=("$kb")
done
echo "peak RSS of a deploy (5 runs): $(printf '%s KB ' "${rss[@]}")(median $(median "${rss[@]}") KB; target <= 30 MB)"
hyperfine -N --warmup 10 --runs 200 --export-json "$work/v.json" "$tf --version" >/dev/null 2>&1
python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; m=r["median"]*1000; print(f"tiny-forge --version: median {m:.2f} ms (target <= 5 ms)")' "$work/v.json"
echo "release binary: $(stat -c %s "$tf" | python3 -c 'import sys; print(f"{int(sys.stdin.read())/1e6:.1f} MB")') ($(file -b "$tf" | cut -d, -f1-2))"
