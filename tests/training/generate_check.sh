#!/usr/bin/env bash
# `muonlab generate` from a training run: a text prompt goes through the
# tokenizer the run was trained with (here bytes, not GPT-2's default), from
# the run folder and from its weights file, and samples what the same prompt
# as token ids samples; another tokenizer is still chosen by --tokenizer, and
# bad prompts are named.
#   generate_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir generate

prepare_byte_shards
train_tiny_gpt2_run

greedy=(--max-new-tokens 8 --temperature 0)
from_folder=$("$muonlab" generate --model "$work/run" --prompt "The c" "${greedy[@]}")
from_weights=$("$muonlab" generate --model "$work/run/model.safetensors" --prompt "The c" "${greedy[@]}")
# "The c" in bytes; the ids sampled from them, decoded as bytes.
ids=$("$muonlab" generate --model "$work/run" --prompt-ids 84,104,101,32,99 "${greedy[@]}")
as_text=$("$muonlab" data decode --tokenizer byte <<<"$ids")
[[ $from_folder == "$as_text" ]] ||
  { echo "FAIL: --prompt 'The c' gave '$from_folder', its bytes as ids '$as_text' ($ids)" >&2; exit 1; }
[[ $from_weights == "$from_folder" ]] ||
  { echo "FAIL: the run folder gave '$from_folder', its weights file '$from_weights'" >&2; exit 1; }
[[ $from_folder == "The c"* ]] || { echo "FAIL: the sample does not start with the prompt: '$from_folder'" >&2; exit 1; }

expect_failure() { expect_muonlab_failure "$1" generate "${@:2}"; }
# An explicit --tokenizer wins over the run's.
expect_failure "tokenizer gpt2 has 50257 ids, more than the model's vocabulary of 257" \
  --model "$work/run" --tokenizer gpt2 --prompt "The c"
expect_failure "--prompt is empty: give at least one character" --model "$work/run" --prompt ""
expect_failure "give either --prompt TEXT or --prompt-ids IDS" --model "$work/run" --prompt x --prompt-ids 1,2
expect_failure "give either --prompt TEXT or --prompt-ids IDS" --model "$work/run"
echo "PASS: generate --prompt follows the run's byte tokenizer: '$from_folder'"
