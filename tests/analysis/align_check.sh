#!/usr/bin/env bash
# `muonlab align` on a freshly trained tiny run (byte tokens of the committed
# excerpts): the table over the Muon-routed matrices after 3 gradients from
# the checkpoint's loader cursor, the CSV with every step of both methods,
# and the chart as PNG and SVG.
#   align_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir align

prepare_byte_shards
train_tiny_gpt2_run

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
