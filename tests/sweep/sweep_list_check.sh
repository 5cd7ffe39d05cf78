#!/usr/bin/env bash
# `muonlab sweep SPEC --list`: each run's state as its folder stands, read
# without disturbing a sweep that runs: not started, done (with its
# validation loss), failed (the index's word, with its log), stopped (with
# the checkpoint the next sweep resumes from) and running (a process holds
# the folder's lock, named by pid).
#   sweep_list_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir sweep-list
prepare_byte_shards

{
  tiny_gpt2_config_with_val
  cat <<TOML
[run]
steps = 20
eval_every = 0
checkpoint_every = 10
TOML
} >"$work/base.toml"
# The sweep that runs: good and broken; the listed spec adds later's two runs.
cat >"$work/two.toml" <<TOML
[sweep]
name = "list"
base = "base.toml"
baseline = "good"
parallel = 1
retries = 0
[[variant]]
name = "good"
set = ["optimizer.name=adamw"]
[[variant]]
name = "broken"
set = ["data.val=\"$work/no-such/*.bin\""]
TOML
cat "$work/two.toml" - >"$work/spec.toml" <<TOML
[[variant]]
name = "later"
set = ["optimizer.name=adamw"]
lr = [0.001, 0.002]
TOML
list() { "$muonlab" sweep "$work/spec.toml" --out "$work/sweep" --list; }
expect_line() {
  grep -qE "$1" <<<"$listing" || { echo "FAIL: no line matching '$1' in:" >&2; echo "$listing" >&2; exit 1; }
}

listing=$(list)
expect_line "^  later/lr=0.002 +not started$"
expect_line "^4 not started \(.*/sweep does not exist yet\)$"

"$muonlab" sweep "$work/two.toml" --out "$work/sweep" >"$work/sweep.log" 2>&1 && { echo "FAIL: broken did not fail" >&2; exit 1; }
listing=$(list)
expect_line "^  good +done +val [0-9]+\.[0-9]{4}, 20 steps, [0-9]+ s$"
expect_line "^  broken +failed +1 attempt\(s\), log: .*/sweep/runs/broken/train.log$"

# A run killed after its checkpoint at step 20, before its final weights.
rm "$work/sweep/runs/good/model.safetensors"
listing=$(list)
expect_line "^  good +stopped +step 20 of 20, resumes from checkpoint step_0*20$"

# A process holding a run folder's lock (flock(2), as a training run does)
# is running: here this script, for the length of one listing (the pid is
# the flock command's, which took the lock for it).
mkdir -p "$work/sweep/runs/later/lr=0.001"
exec 9>"$work/sweep/runs/later/lr=0.001/.muonlab.lock"
flock --nonblock 9
listing=$(list)
exec 9>&-
expect_line "^  later/lr=0.001 +running +pid [0-9]+$"
expect_line "^  later/lr=0.002 +not started$"
expect_line "^1 running, 1 stopped, 1 failed, 1 not started$"
echo "$listing"
echo "PASS: sweep --list reads each run's state"
