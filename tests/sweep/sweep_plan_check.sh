#!/usr/bin/env bash
# `muonlab sweep SPEC --check`: every run's model, optimizer and shards read
# and checked as training would, a line per run (its parameters and Muon's
# share equal to `train --check` on the same settings), nothing written; a
# run that cannot be set up (its variant's shards missing, which the spec's
# config check cannot see) is named.
#   sweep_plan_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir sweep-plan
prepare_byte_shards

{
  tiny_gpt2_config_with_val
  cat <<TOML
[run]
steps = 6
TOML
} >"$work/base.toml"
write_spec() {
  cat >"$work/spec.toml" <<TOML
[sweep]
name = "planned"
base = "base.toml"
baseline = "adamw"
[axes]
"run.seed" = [1, 2]
[[variant]]
name = "adamw"
set = ["optimizer.name=adamw"]
lr = [1e-3]
[[variant]]
name = "muon"
set = [$1]
lr = [0.01, 0.02]
TOML
}

write_spec '"optimizer.ns_steps=3"'
plan=$(cd "$work" && "$muonlab" sweep spec.toml --check --out "$work/sweep")
echo "$plan"
[[ ! -e $work/sweep && ! -e $work/sweeps ]] || { echo "FAIL: sweep --check wrote a sweep folder" >&2; exit 1; }
muon_line=$("$muonlab" train "$work/base.toml" --check | grep "^  optimizer")
muon_parameters=$(sed -E 's/.*muon: ([0-9,]+) parameters.*/\1/' <<<"$muon_line")
total=$("$muonlab" train "$work/base.toml" --check | sed -nE 's/^  model .*: ([0-9,]+) parameters$/\1/p')
[[ $(grep -c "^  muon/" <<<"$plan") == 4 && $(grep -c "^  adamw/" <<<"$plan") == 2 ]] ||
  { echo "FAIL: expected 4 Muon runs and 2 AdamW runs" >&2; exit 1; }
squeezed=$(tr -s ' ' <<<"$plan")  # the ids are padded to one width
grep -qF "muon/lr=0.02,run.seed=2 $total parameters ($muon_parameters in Muon), 768 tokens" <<<"$squeezed" ||
  { echo "FAIL: muon's line differs from train --check's $total and $muon_parameters" >&2; exit 1; }
grep -qF "adamw/lr=0.001,run.seed=1 $total parameters (0 in Muon)" <<<"$squeezed" ||
  { echo "FAIL: AdamW's run has parameters in Muon" >&2; exit 1; }
grep -qF "6 runs ready to train; nothing written" <<<"$plan" || { echo "FAIL: no closing line" >&2; exit 1; }

write_spec "\"data.train=$work/missing_*.bin\""
expect_muonlab_failure "spec.toml: run 'muon/lr=0.01,run.seed=1': no shard files match" \
  sweep "$work/spec.toml" --check --out "$work/sweep"
expect_muonlab_failure "--list excludes --check" sweep "$work/spec.toml" --check --list
[[ ! -e $work/sweep ]] || { echo "FAIL: a refused sweep --check wrote a sweep folder" >&2; exit 1; }
echo "PASS: sweep --check plans 6 runs of $total parameters and writes nothing"
