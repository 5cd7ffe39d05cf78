#!/usr/bin/env bash
# Atomicity: a process killed (SIGKILL, as a power cut or the OOM killer)
# halfway through writing a checkpoint leaves the previous checkpoint
# complete and loadable; --resume continues from it and ends with the same
# weights, byte for byte, as a run that was never killed.
#   checkpoint_crash_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir crash

prepare_byte_shards
cat >"$work/run.toml" <<TOML
[model]
preset = "tiny-gpt2"
vocab_size = 257
block_size = 32
[data]
train = "$work/shards/t_train_*.bin"
tokenizer = "byte"
batch_size = 4
[run]
steps = 12
eval_every = 0
checkpoint_every = 4
TOML
train() { "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$1" "${@:2}"; }

train "$work/whole" >/dev/null

# The 2nd checkpoint (step 8) dies after its weights and optimizer state are
# written, before state.json.
status=0
MUONLAB_CRASH_IN_CHECKPOINT=2 train "$work/killed" >"$work/killed.log" 2>&1 || status=$?
if ((status != 137)); then
  cat "$work/killed.log" >&2
  echo "FAIL: expected death by SIGKILL (status 137), got $status" >&2
  exit 1
fi
ls "$work/killed/checkpoints" >"$work/left.txt"
grep -qx "step_00000004" "$work/left.txt" || { echo "FAIL: step 4 checkpoint missing" >&2; cat "$work/left.txt" >&2; exit 1; }
grep -qx "step_00000008.tmp" "$work/left.txt" || { echo "FAIL: no half-written step 8 folder" >&2; exit 1; }
[[ ! -e $work/killed/checkpoints/step_00000008.tmp/state.json ]] || { echo "FAIL: state.json was written" >&2; exit 1; }
[[ -s $work/killed/checkpoints/step_00000008.tmp/model.safetensors ]] || { echo "FAIL: crash came before the weights" >&2; exit 1; }

train "$work/killed" --resume >"$work/resume.log"
grep -q "resumed from step 4" "$work/resume.log" || { cat "$work/resume.log" >&2; exit 1; }
cmp "$work/whole/model.safetensors" "$work/killed/model.safetensors"
echo "PASS: killed while writing checkpoint 2; left $(tr '\n' ' ' <"$work/left.txt"); resumed from step 4 to identical weights"
