#!/usr/bin/env bash
# Parents that end take their children with them. SIGINT sent to the sweep
# process alone (as a scheduler sends it) reaches its running train, which
# checkpoints and stops; the sweep starts no new run, says how to resume,
# exits 1, and a rerun finishes every run from the checkpoints. SIGKILL of
# the sweep, or of `launch`, stops their trains too (Linux's parent-death
# signal), instead of leaving them training into the folder unwatched.
#   sweep_signal_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir sweep-signal
prepare_byte_shards
{
  tiny_gpt2_config_head
  cat <<TOML
batch_size = 2
[run]
steps = 400
eval_every = 0
checkpoint_every = 5
one_step_every = 0
TOML
} >"$work/base.toml"
cat >"$work/spec.toml" <<TOML
[sweep]
name = "signal"
baseline = "adamw"
base = "base.toml"
parallel = 1
[axes]
"run.seed" = [1, 2]
[[variant]]
name = "adamw"
set = ["optimizer.name=adamw", "optimizer.lr=0.003"]
TOML

# The pids of `muonlab train` processes writing under FOLDER.
trains_in() { pgrep -f -- "train .*run.out_dir=$1" || true; }
# Waits up to 60 s for a checkpoint (a finished step_* folder) under FOLDER,
# written by the run PID started with its output in LOG.
wait_for_checkpoint() {
  for _ in $(seq 1200); do
    compgen -G "$1/checkpoints/step_*" | grep -qv '\.tmp' && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  cat "$3" >&2
  echo "FAIL: no checkpoint in $1" >&2
  exit 1
}
# Waits up to 30 s for no train to write under FOLDER.
expect_no_train_in() {
  for _ in $(seq 600); do
    [[ -z $(trains_in "$1") ]] && return 0
    sleep 0.05
  done
  echo "FAIL: a train is still writing into $1 after its parent ended: $2" >&2
  exit 1
}

first="$work/sweep/runs/adamw/run.seed=1"
"$muonlab" sweep "$work/spec.toml" --out "$work/sweep" >"$work/interrupted.log" 2>&1 &
sweep_pid=$!
wait_for_checkpoint "$first" "$sweep_pid" "$work/interrupted.log"
kill -INT "$sweep_pid"
status=0
wait "$sweep_pid" || status=$?
cat "$work/interrupted.log"
((status == 1)) || { echo "FAIL: interrupted sweep exited $status, expected 1" >&2; exit 1; }
grep -q "sweep: Interrupt: passed on to the 1 running train(s); no new run starts" "$work/interrupted.log"
grep -q "adamw/run.seed=1: interrupted (exit code 1); it resumes from its checkpoint next time" "$work/interrupted.log"
grep -q "muonlab: error: sweep: stopped by Interrupt: 1 run(s) interrupted at their checkpoints; run the same command again to resume" \
  "$work/interrupted.log"
! grep -q "run.seed=2: started" "$work/interrupted.log" || { echo "FAIL: a new run started after SIGINT" >&2; exit 1; }
! grep -q "retrying" "$work/interrupted.log" || { echo "FAIL: the interrupted run was retried" >&2; exit 1; }
expect_no_train_in "$first" "after SIGINT to the sweep"

"$muonlab" sweep "$work/spec.toml" --out "$work/sweep" >"$work/resumed.log" 2>&1 ||
  { cat "$work/resumed.log" >&2; exit 1; }
cat "$work/resumed.log"
grep -q "adamw/run.seed=1: started (resuming from its checkpoint)" "$work/resumed.log"
grep -q "2 runs: 0 done before, 2 finished now, 0 failed" "$work/resumed.log"

# SIGKILL of the sweep: nothing can be passed on, the kernel stops the train
# (one far too long to end by itself while this waits).
sed -e 's/^name = "signal"/name = "long"/' -e 's/"optimizer.lr=0.003"/&, "run.steps=100000"/' "$work/spec.toml" \
  >"$work/long.toml"
long="$work/long/runs/adamw/run.seed=1"
"$muonlab" sweep "$work/long.toml" --out "$work/long" >"$work/killed.log" 2>&1 &
sweep_pid=$!
wait_for_checkpoint "$long" "$sweep_pid" "$work/killed.log"
kill -KILL "$sweep_pid"
wait "$sweep_pid" 2>/dev/null || true
expect_no_train_in "$long" "after SIGKILL of the sweep"

# SIGKILL of `launch`: its rank stops with it.
sed -i 's/^steps = 400/steps = 100000/' "$work/base.toml"
"$muonlab" launch -n 1 -- train --config "$work/base.toml" --sample-tokens 0 --set "run.out_dir=$work/launched" \
  >"$work/launch.log" 2>&1 &
launch_pid=$!
wait_for_checkpoint "$work/launched" "$launch_pid" "$work/launch.log"
[[ -n $(trains_in "$work/launched") ]] || { cat "$work/launch.log" >&2; echo "FAIL: the rank is not running" >&2; exit 1; }
kill -KILL "$launch_pid"
wait "$launch_pid" 2>/dev/null || true
expect_no_train_in "$work/launched" "after SIGKILL of launch"
echo "PASS: SIGINT to the sweep stopped its train at a checkpoint without starting or retrying runs; SIGKILL of sweep and of launch stopped their trains; the rerun finished both runs"
