#!/usr/bin/env bash
# run.init_from: a run that starts from trained weights. At lr 0 nothing
# moves, so a run started from another run's folder, from its weights file,
# or from its Hugging Face export samples and scores exactly as that run
# does; a [model] that describes another model is refused by name before
# anything is written.
#   init_from_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir init-from

prepare_byte_shards
train_tiny_gpt2_run
"$muonlab" export --hf "$work/run" "$work/hf" >/dev/null

greedy=(--prompt-ids 1,2,3 --temperature 0 --max-new-tokens 8)
original=$("$muonlab" generate --model "$work/run" "${greedy[@]}")
original_loss=$("$muonlab" eval "$work/run" --ids 5,6,7,8,9,10 --json --dtype fp32)

# Two steps at lr 0 from each source, then the same samples and loss.
for source in "$work/run" "$work/run/model.safetensors" "$work/hf"; do
  out=$work/from-$(basename "$source")
  "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set run.steps=2 --set "run.out_dir=$out" \
    --set "run.init_from=$source" --set optimizer.lr=0 --set optimizer.adamw_lr=0 >/dev/null
  continued=$("$muonlab" generate --model "$out" "${greedy[@]}")
  [[ $continued == "$original" ]] ||
    { echo "FAIL: started from $source at lr 0, sampled '$continued', the run '$original'" >&2; exit 1; }
  loss=$("$muonlab" eval "$out" --ids 5,6,7,8,9,10 --json --dtype fp32)
  [[ $loss == "$original_loss" ]] || { echo "FAIL: from $source: '$loss', the run '$original_loss'" >&2; exit 1; }
  grep -q "^init_from = \"/" "$out/config.toml" ||
    { echo "FAIL: $out/config.toml does not record init_from as an absolute path" >&2; exit 1; }
done

# Another model in [model]: named, and no run folder written.
expect_muonlab_failure "run.init_from '$work/hf': parameter 'h.0.mlp.c_fc.weight' is [128, 32] there and [64, 32] in [model]" \
  train --config "$work/run.toml" --set "run.init_from=$work/hf" --set model.mlp_hidden=64 --set "run.out_dir=$work/bad"
[[ ! -e $work/bad ]] || { echo "FAIL: a refused init_from left $work/bad" >&2; exit 1; }
expect_muonlab_failure "run.init_from '$work/nowhere': no such file or folder" \
  train --config "$work/run.toml" --set "run.init_from=$work/nowhere" --check
echo "PASS: runs started from a run folder, its weights and its Hugging Face export continue it exactly"
