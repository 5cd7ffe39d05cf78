#!/usr/bin/env bash
# `muonlab align` on a freshly trained tiny run (byte tokens of the committed
# excerpts): the table over the Muon-routed matrices after 3 gradients from
# the checkpoint's loader cursor, the CSV with every step of both methods,
# and the chart as PNG and SVG.
#   align_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
work=$(mktemp -d "${TMPDIR:-/tmp}/muonlab-align.XXXXXX")
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

"$muonlab" align "$work/run" --batches 3 --csv "$work/align.csv" --plot "$work/charts"

# tiny-gpt2: 2 blocks x (fused qkv, attention out, mlp in, mlp out) go to Muon.
rows=$(grep -c '^h\.' "$work/align.csv" || true)
[[ $(head -1 "$work/align.csv") == parameter,rows,cols,method,rank,condition,spread_p90_p10,s_max,s_min,k,alignment ]] ||
  { echo "FAIL: CSV header"; exit 1; }
(( rows == 8 * 2 * 6 )) || { echo "FAIL: expected 96 CSV lines (8 matrices x 2 methods x k=0..5), got $rows"; exit 1; }
[[ $(head -c 8 "$work/charts/alignment.png" | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] ||
  { echo "FAIL: alignment.png is no PNG"; exit 1; }
grep -q '<svg' "$work/charts/alignment.svg" || { echo "FAIL: alignment.svg is no SVG"; exit 1; }
echo "PASS: 8 matrices aligned; CSV, PNG and SVG written"
