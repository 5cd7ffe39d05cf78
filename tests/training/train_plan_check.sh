#!/usr/bin/env bash
# `muonlab train --check`: reads and checks what training reads (model,
# optimizer, shards), prints the plan and writes nothing. Its figures
# against ones worked out here: the parameters against `model info`, Muon's
# share from GPT-2's shapes (per layer 4d^2 in attention and 8d^2 in the
# MLP), tokens per step, and evaluation tokens rounded up to whole batches.
# Bad input still fails as training would, leaving no folder.
#   train_plan_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir train-plan

prepare_byte_shards
{
  tiny_gpt2_config_with_val
  cat <<TOML
[run]
steps = 7
eval_every = 3
eval_tokens = 300
out_dir = "$work/planned"
TOML
} >"$work/plan.toml"

plan=$("$muonlab" train "$work/plan.toml" --check)
echo "$plan"
[[ ! -e $work/planned ]] || { echo "FAIL: --check created the run folder" >&2; exit 1; }
expect_line() {
  grep -qF -- "$1" <<<"$plan" || { echo "FAIL: the plan has no line with '$1'" >&2; exit 1; }
}
total=$("$muonlab" model info tiny-gpt2 --set vocab_size=257 | awk '$1 == "total" {print $2}')
d=32 layers=2
muon=$((layers * 12 * d * d))  # fused QKV (3d^2) + output (d^2) + MLP (2 x 4d^2)
thousands() { sed ':a;s/\B[0-9]\{3\}\>/,&/;ta' <<<"$1"; }
expect_line "model       tiny-gpt2 (2 layers, d_model 32): $(thousands "$total") parameters"
expect_line "optimizer   muon: $(thousands "$muon") parameters in $((layers * 4)) tensors; AdamW $(thousands $((total - muon)))"
# batch 4 x block_size 32 = 128 tokens a step; 300 evaluation tokens: 3 batches.
expect_line "tokens      7 steps x 128 = 896 ("
expect_line "evaluation  384 of the validation split's "
expect_line "every 3 steps and at the end"
expect_line "run folder  $work/planned: new"

# A folder holding a finished run is named, as training would refuse it.
train_tiny_gpt2_run
"$muonlab" train "$work/run.toml" --check | grep -qF "holds a finished run" ||
  { echo "FAIL: --check did not see the finished run in $work/run" >&2; exit 1; }

expect_muonlab_failure "no shard files match" train "$work/plan.toml" --check --set data.train=$work/none_*.bin
expect_muonlab_failure "unknown key 'run.stepz' (did you mean 'run.steps'?)" train "$work/plan.toml" --check \
  --set run.stepz=3
expect_muonlab_failure "--resume excludes --check" train "$work/plan.toml" --check --resume
[[ ! -e $work/planned ]] || { echo "FAIL: a refused --check created the run folder" >&2; exit 1; }
echo "PASS: train --check plans $total parameters ($muon in Muon) and writes nothing"
