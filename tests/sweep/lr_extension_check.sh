#!/usr/bin/env bash
# Learning-rate brackets: a variant whose best lr is the largest of its grid
# gets the next lr one geometric step up (lr_extensions), runs it, and the
# report shows the grown grid; without room to grow, the edge is flagged.
#   lr_extension_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir lr-extension
prepare_byte_shards

cat >"$work/base.toml" <<TOML
[model]
preset = "tiny-gpt2"
vocab_size = 257
[data]
train = "$work/shards/t_train_*.bin"
val = "$work/shards/t_val_*.bin"
tokenizer = "byte"
batch_size = 4
[optimizer]
name = "adamw"
[run]
steps = 12
eval_every = 0
eval_tokens = 1024
TOML
# AdamW at 1e-5 and 2e-5 for 12 steps: far below a good lr, so the larger
# one is better and the grid must grow upwards, to 4e-5.
cat >"$work/spec.toml" <<TOML
[sweep]
name = "brackets"
base = "base.toml"
baseline = "adamw"
lr_extensions = 1
[[variant]]
name = "adamw"
lr = [1e-5, 2e-5]
TOML

"$muonlab" sweep "$work/spec.toml" --out "$work/sweep" | tee "$work/sweep.log"
grep -q "adamw: best lr at an edge of the grid, adding lr 4e-05" "$work/sweep.log"
grep -q "adamw/lr=4e-05: done" "$work/sweep.log"
[[ -f "$work/sweep/runs/adamw/lr=4e-05/model.safetensors" ]]
# Rerun: the same grid, grown the same way, nothing recomputed.
"$muonlab" sweep "$work/spec.toml" --out "$work/sweep" | tee "$work/again.log"
grep -q "3 runs: 3 done before, 0 finished now, 0 failed" "$work/again.log"

"$muonlab" report "$work/sweep" --no-plots >/dev/null
report="$work/sweep/report.md"
cat "$report"
# One extension allowed: 4e-5 is still the best and still at the edge.
grep -qE '^\| adamw \| 4e-05 \| 1e-05, 2e-05, 4e-05 \(edge\) \| 1 \| ' "$report"
grep -q '^- \*\*adamw: learning rate not bracketed\*\* (best at the grid.s high edge; tried 1e-05, 2e-05, 4e-05)$' "$report"
echo "PASS: the grid grew past its high edge once, a rerun recomputed nothing, the report flags the edge"
