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
echo "PASS: exported; an existing export is kept without --force and replaced with it"
