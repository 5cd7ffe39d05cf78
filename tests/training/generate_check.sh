#!/usr/bin/env bash
# `muonlab generate` from a training run: a text prompt goes through the
# tokenizer the run was trained with (here bytes, not GPT-2's default), from
# the run folder and from its weights file, and samples what the same prompt
# as token ids samples; another tokenizer is still chosen by --tokenizer;
# --stop-id and --stop-at-eot end the sample there; --num-samples draws
# each sample with the next seed; bad prompts are named.
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
positional=$("$muonlab" generate "$work/run" --prompt "The c" "${greedy[@]}")
[[ $positional == "$from_folder" ]] ||
  { echo "FAIL: generate RUN gave '$positional', generate --model RUN '$from_folder'" >&2; exit 1; }
[[ $from_folder == "The c"* ]] || { echo "FAIL: the sample does not start with the prompt: '$from_folder'" >&2; exit 1; }

# --stop-id: the same ids cut after the first sampled occurrence of the
# stop id; --stop-at-eot (the byte tokenizer's 256) gives a prefix of the
# unstopped text.
read -ra sampled <<<"$ids"
stop=${sampled[7]}
expected=()
for ((i = 0; i < ${#sampled[@]}; i++)); do
  expected+=("${sampled[i]}")
  ((i >= 5)) && [[ ${sampled[i]} == "$stop" ]] && break
done
stopped=$("$muonlab" generate --model "$work/run" --prompt-ids 84,104,101,32,99 "${greedy[@]}" --stop-id "$stop")
[[ $stopped == "${expected[*]}" ]] || { echo "FAIL: --stop-id $stop gave '$stopped', expected '${expected[*]}'" >&2; exit 1; }
at_eot=$("$muonlab" generate --model "$work/run" --prompt "The c" "${greedy[@]}" --stop-at-eot)
[[ $from_folder == "$at_eot"* ]] || { echo "FAIL: --stop-at-eot gave '$at_eot', not a prefix of '$from_folder'" >&2; exit 1; }

# --num-samples: samples separated by nanoGPT's line of dashes, sample i
# drawn with seed + i, so the third of three from --seed 5 is --seed 7's.
sampled_ids=(--model "$work/run" --prompt-ids 84,104,101 --max-new-tokens 12 --top-k 50)
three=$("$muonlab" generate "${sampled_ids[@]}" --seed 5 --num-samples 3)
mapfile -t lines <<<"$three"
[[ ${#lines[@]} == 5 && ${lines[1]} == --------------- && ${lines[3]} == --------------- ]] ||
  { echo "FAIL: --num-samples 3 printed '$three'" >&2; exit 1; }
for i in 0 1 2; do
  alone=$("$muonlab" generate "${sampled_ids[@]}" --seed $((5 + i)))
  [[ ${lines[2 * i]} == "$alone" ]] ||
    { echo "FAIL: sample $i of --seed 5 was '${lines[2 * i]}', --seed $((5 + i)) alone '$alone'" >&2; exit 1; }
done
[[ ${lines[0]} != "${lines[2]}" ]] || { echo "FAIL: two seeds drew the same sample '${lines[0]}'" >&2; exit 1; }
text_samples=$("$muonlab" generate --model "$work/run" --prompt "The c" "${greedy[@]}" --num-samples 2)
[[ $text_samples == "$from_folder"$'\n'---------------$'\n'"$from_folder" ]] ||
  { echo "FAIL: two greedy text samples were '$text_samples'" >&2; exit 1; }

expect_failure() { expect_muonlab_failure "$1" generate "${@:2}"; }
expect_failure "--num-samples: '0': expected a whole number >= 1" --model "$work/run" --prompt x --num-samples 0
# An explicit --tokenizer wins over the run's.
expect_failure "tokenizer gpt2 has 50257 ids, more than the model's vocabulary of 257" \
  --model "$work/run" --tokenizer gpt2 --prompt "The c"
expect_failure "--prompt is empty: give at least one character" --model "$work/run" --prompt ""
expect_failure "give either --prompt TEXT or --prompt-ids IDS" --model "$work/run" --prompt x --prompt-ids 1,2
expect_failure "give either --prompt TEXT or --prompt-ids IDS" --model "$work/run"
expect_failure "give --stop-id ID or --stop-at-eot, not both" --model "$work/run" --prompt x --stop-id 1 --stop-at-eot
expect_failure "--stop-at-eot needs --prompt" --model "$work/run" --prompt-ids 1,2 --stop-at-eot
expect_failure "stop token 300 is outside the vocabulary [0, 257)" --model "$work/run" --prompt-ids 1,2 --stop-id 300
echo "PASS: generate --prompt follows the run's byte tokenizer: '$from_folder'"
