#!/usr/bin/env bash
# `muonlab export --hf` on a freshly trained run: prints its summary, writes
# the Hugging Face files, and refuses to overwrite the export without --force.
#   export_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir export

prepare_byte_shards
train_tiny_gpt2_run

"$muonlab" export --hf "$work/run" "$work/hf"
[[ -s $work/hf/model.safetensors && -s $work/hf/config.json ]]

if "$muonlab" export --hf "$work/run" "$work/hf" 2>"$work/again.log"; then
  echo "FAIL: a second export replaced the first without --force" >&2
  exit 1
fi
grep -q "exists and is not empty: choose another or pass --force" "$work/again.log"
"$muonlab" export --hf "$work/run" "$work/hf" --force >/dev/null
# The run's weights generate the same from the folder and from the file; a
# weights file outside a run folder is refused, naming what is missing.
a=$("$muonlab" generate --model "$work/run" --prompt-ids 1,2,3 --temperature 0 --max-new-tokens 6)
b=$("$muonlab" generate --model "$work/run/model.safetensors" --prompt-ids 1,2,3 --temperature 0 --max-new-tokens 6)
[[ -n $a && $a == "$b" ]] || { echo "FAIL: run folder gave '$a', its weights file '$b'" >&2; exit 1; }
cp "$work/run/model.safetensors" "$work/loose.safetensors"
if "$muonlab" generate --model "$work/loose.safetensors" --prompt-ids 1 2>"$work/loose.log"; then
  echo "FAIL: weights without a run folder were accepted" >&2
  exit 1
fi
grep -q "no config.toml beside it or above its checkpoints/ folder" "$work/loose.log"
# The export read back as a Hugging Face folder: the same model, the same
# samples and the same loss as the run it came from.
c=$("$muonlab" generate --model "$work/hf" --prompt-ids 1,2,3 --temperature 0 --max-new-tokens 6)
[[ $c == "$a" ]] || { echo "FAIL: the run gave '$a', its Hugging Face export '$c'" >&2; exit 1; }
run_loss=$("$muonlab" eval "$work/run" --ids 5,6,7,8,9,10 --json --dtype fp32)
hf_loss=$("$muonlab" eval "$work/hf" --ids 5,6,7,8,9,10 --json --dtype fp32)
[[ $run_loss == "$hf_loss" ]] || { echo "FAIL: eval of the run '$run_loss', of its export '$hf_loss'" >&2; exit 1; }
"$muonlab" model info --model "$work/hf" | grep -q "parameters" ||
  { echo "FAIL: model info does not read the Hugging Face folder" >&2; exit 1; }
echo "PASS: exported; an existing export is kept without --force and replaced with it; the run generates from its" \
  "folder; the export reads back as a Hugging Face model with the run's samples and loss"
