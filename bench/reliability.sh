#!/usr/bin/env bash
# Reliability: runs the fault tests N times (default 5) and counts what they found left behind.
# Every case asserts, with the Docker API, the NPM double and the state file, that no container,
# proxy host or instance row of the deploy remains; a failed assertion counts as a leftover.
# Run by hand: bench/reliability.sh [trials]. Prints the table for RELIABILITY.md.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-5}
cargo test --locked --test integration --no-run -q 2>/dev/null
cases=(
  "crash::stopped_at_every_step_boundary_by_term_or_kill_nothing_is_left|SIGTERM or SIGKILL after each of 6 steps (12 deploys)"
  "crash::a_second_signal_during_rollback_exits_3_with_what_is_left_and_prune_finishes_the_job|second signal during rollback, then prune"
  "crash::ten_parallel_deploys_of_one_slot_run_one_after_another|10 parallel deploys of one slot"
  "crash::a_held_lock_means_exit_4_with_no_wait_or_after_wait_and_other_stages_go_on|lock held: --no-wait, --wait, other stage"
  "lifecycle::prune_removes_every_kind_of_orphan_and_a_second_prune_does_nothing|every kind of orphan, pruned twice"
  "npm::token_expired_between_create_and_rollback_the_host_is_still_deleted|NPM token expired before rollback"
  "npm::npm_500_on_create_removes_the_container|NPM 500 on create"
  "npm::slow_npm_times_out_with_the_configured_timeout_and_the_late_host_is_pruned|NPM stalls past its timeout"
  "npm::unreachable_npm_fails_the_proxy_step_and_rolls_back|NPM unreachable"
  "deploy::stopped_registry_fails_the_pull_with_a_clear_message|registry stopped"
  "deploy::container_that_exits_fails_fast_with_its_exit_code_and_last_log_lines|container exits at start"
  "deploy::app_answering_500_is_rolled_back_with_the_reason|app answers 500"
  "hostile::a_full_disk_under_the_state_file_fails_cleanly_and_leaves_nothing|full disk under the state file"
)
names=(); for c in "${cases[@]}"; do names+=("${c%%|*}"); done
# A renamed test would count as a leftover in every trial: refuse names that no longer exist.
listed=$(cargo test --locked --test integration -q -- --list 2>/dev/null)
for n in "${names[@]}"; do
  grep -qx "$n: test" <<<"$listed" || { echo "error: no test named $n; update bench/reliability.sh" >&2; exit 1; }
done
declare -A bad
for c in "${cases[@]}"; do bad[${c%%|*}]=0; done
for t in $(seq "$trials"); do
  out=$(cargo test --locked --test integration -- --exact "${names[@]}" 2>&1 || true)
  for n in "${names[@]}"; do
    grep -q "^test $n \.\.\. ok$" <<<"$out" || bad[$n]=$(( ${bad[$n]} + 1 ))
  done
  echo "trial $t done" >&2
done
echo "| fault | trials | leftovers |"
echo "| --- | --- | --- |"
for c in "${cases[@]}"; do
  echo "| ${c#*|} | $trials | ${bad[${c%%|*}]} |"
done
echo
echo "(unit level, every run of cargo test: deploy::tests::fault_matrix::fault_matrix_every_step_by_every_mode_rolls_back_completely"
echo " covers 11 sites x {error, timeout, hang, act-then-fail} = 44 cases on a paused clock)"
