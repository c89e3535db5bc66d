#!/usr/bin/env bash
# Chaos: N random trials (operation x fault) against the real engine, the NPM double and a real
# Caddy, each judged by its exit code, then recovered with `prune`, then checked for the
# invariants (tests/chaos.rs says which). Prints the trials, the seed and the violations.
# Run by hand: bench/chaos.sh [N=1000] [SEED=random]. A violation prints the trial; rerun with
# the same seed to replay the same sequence of cases.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-1000}
seed=${2:-$(( (RANDOM << 15 | RANDOM) + 1 ))}
echo "chaos: $trials trials, seed $seed"
TF_CHAOS_TRIALS=$trials TF_CHAOS_SEED=$seed \
  cargo test --locked --release --test integration -- --exact chaos::chaos_every_trial_keeps_the_invariants --nocapture 2>&1 \
  | grep -E '^(chaos:|trial |seed |test result)|violations' || true
