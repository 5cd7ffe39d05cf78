#!/usr/bin/env bash
# `muonlab export --hf` on a freshly trained run: prints its summary, writes
# the Hugging Face files, and refuses to overwrite the export without --force.
#   export_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/muonlab-export.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$muonlab" data prepare "$src/tests/data/text" --out "$work/shards" --name t --tokenizer byte \
  --val-fraction 0.34 >/dev/null
cat >"$work/run.toml" <<TOML
[model]
preset = "tiny-gpt2"
vocab_size = 257
[data]
train = "$work/shards/t_train_*.bin"
tokenizer = "byte"
batch_size = 4
[run]
steps = 5
eval_every = 0
out_dir = "$work/run"
TOML
"$muonlab" train --config "$work/run.toml" --sample-tokens 0 >/dev/null

"$muonlab" export --hf "$work/run" "$work/hf"
[[ -s $work/hf/model.safetensors && -s $work/hf/config.json ]]

if "$muonlab" export --hf "$work/run" "$work/hf" 2>"$work/again.log"; then
  echo "FAIL: a second export replaced the first without --force" >&2
  exit 1
fi
grep -q "exists and is not empty: choose another or pass --force" "$work/again.log"
"$muonlab" export --hf "$work/run" "$work/hf" --force >/dev/null
echo "PASS: exported; an existing export is kept without --force and replaced with it"
