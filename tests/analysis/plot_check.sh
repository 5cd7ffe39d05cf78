#!/usr/bin/env bash
# `muonlab plot` end to end with gnuplot: two tiny runs (the second written
# before evaluation records carried "tokens") -> PNG and SVG charts, by step
# and by tokens (and the HellaSwag accuracy one run scored), in the first
# run's folder or in --out, and metrics.csv.
#   plot_check.sh MUONLAB_BINARY
set -euo pipefail
muonlab=$1
work=$(mktemp -d "${TMPDIR:-/tmp}/muonlab-plot.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/run_a" "$work/run_b"
printf '%s\n' \
  '{"step":1,"loss":10.5,"tokens":512,"lr_muon":0.02}' \
  '{"step":2,"loss":8.25,"tokens":1024,"lr_muon":0.02}' \
  '{"step":2,"val_loss":8.5,"val_tokens":256,"hellaswag_acc_norm":0.25,"hellaswag_acc":0.25,"hellaswag_items":4,"tokens":1024}' \
  '{"step":3,"loss":7.5,"tokens":1536}' \
  '{"step":3,"hellaswag_acc_norm":0.5,"hellaswag_acc":0.25,"hellaswag_items":4,"tokens":1536}' >"$work/run_a/metrics.jsonl"
printf '%s\n' \
  '{"step":1,"loss":10.25,"tokens":512}' \
  '{"step":2,"loss":7.75,"tokens":1024}' \
  '{"step":2,"val_loss":8,"val_tokens":256}' >"$work/run_b/metrics.jsonl"

png_magic() { head -c 8 "$1" | od -An -tx1 | tr -d ' \n'; }
check_charts() {  # folder name
  for axis in steps tokens; do
    [[ $(png_magic "$1/$2_vs_$axis.png") == 89504e470d0a1a0a ]] || { echo "FAIL: $1/$2_vs_$axis.png is no PNG"; exit 1; }
    grep -q '<svg' "$1/$2_vs_$axis.svg" || { echo "FAIL: $1/$2_vs_$axis.svg is no SVG"; exit 1; }
  done
  grep -q "title 'run_a'" "$1/$2.gp" && grep -q "title 'run_b'" "$1/$2.gp" ||
    { echo "FAIL: $1/$2.gp lacks a run's label"; exit 1; }
}

"$muonlab" plot "$work/run_a" "$work/run_b" --csv
check_charts "$work/run_a" loss
printed=$("$muonlab" plot "$work/run_a/" "$work/run_b" --out "$work/charts" --name cmp)
[[ $printed == *"wrote $work/charts/cmp_vs_tokens.svg"* ]] || { echo "FAIL: paths not printed: $printed"; exit 1; }
check_charts "$work/charts" cmp
# run_a scored HellaSwag: its chart by tokens, named with the others.
[[ $(png_magic "$work/charts/cmp_hellaswag_vs_tokens.png") == 89504e470d0a1a0a ]] || { echo "FAIL: no HellaSwag PNG"; exit 1; }
grep -q '<svg' "$work/charts/cmp_hellaswag_vs_tokens.svg" || { echo "FAIL: no HellaSwag SVG"; exit 1; }
[[ $printed == *"wrote $work/charts/cmp_hellaswag_vs_tokens.png"* ]] || { echo "FAIL: HellaSwag chart not printed"; exit 1; }
[[ $(head -1 "$work/run_b/metrics.csv") == step,loss,tokens,val_loss,val_tokens ]] || { echo "FAIL: metrics.csv header"; exit 1; }
echo "PASS: two runs charted by steps and tokens as PNG and SVG, and one's HellaSwag accuracy; metrics.csv written"
