#!/usr/bin/env bash
# `muonlab eval` on a freshly trained run: from the run folder (or its
# weights file) it reproduces the run's last val_loss exactly, with the
# run's batch, sequence length, eval_tokens and precision; options override
# them; bad input fails naming the option and what was expected.
#   eval_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir eval

prepare_byte_shards
{
  tiny_gpt2_config_with_val
  cat <<TOML
[run]
steps = 5
eval_every = 0
eval_tokens = 300
out_dir = "$work/run"
TOML
} >"$work/run.toml"
"$muonlab" train --config "$work/run.toml" --sample-tokens 0 >/dev/null

json_field() { sed -n "s/.*\"$1\":\([^,}]*\).*/\1/p"; }
trained=$(grep '"val_loss"' "$work/run/metrics.jsonl" | tail -1 | json_field val_loss)
from_folder=$("$muonlab" eval --model "$work/run" --json)
from_weights=$("$muonlab" eval --model "$work/run/model.safetensors" --json)
[[ $(json_field loss <<<"$from_folder") == "$trained" ]] ||
  { echo "FAIL: the run's last val_loss is $trained, eval gives: $from_folder" >&2; exit 1; }
[[ $from_weights == "$from_folder" ]] ||
  { echo "FAIL: the run folder gave '$from_folder', its weights file '$from_weights'" >&2; exit 1; }
positional=$("$muonlab" eval "$work/run" --json)
[[ $positional == "$from_folder" ]] ||
  { echo "FAIL: eval RUN gave '$positional', eval --model RUN '$from_folder'" >&2; exit 1; }
# 300 tokens in batches of 4 x 32: 3 whole batches.
[[ $(json_field tokens <<<"$from_folder") == 384 ]] || { echo "FAIL: expected 384 tokens: $from_folder" >&2; exit 1; }

# Options override the run's: the whole split, other batches; --ids scores one sequence.
whole=$("$muonlab" eval --model "$work/run" --tokens 0 --batch-size 2 --seq-len 16 --dtype fp32)
echo "$whole"
[[ $whole =~ ^loss\ [0-9.]+\ \(perplexity\ [0-9.]+\)\ over\ [0-9]+\ tokens\ of\ .*t_val_\*\.bin:\ [0-9]+\ batches\ of\ 2\ x\ 16\;\ fp32\ on\ cpu$ ]] ||
  { echo "FAIL: unexpected summary" >&2; exit 1; }
ids=$("$muonlab" eval --model "$work/run" --ids 84,104,101,32,99 --json)
[[ $ids == *'"tokens":4,'*'"token_losses":['*']}' ]] || { echo "FAIL: --ids gave $ids" >&2; exit 1; }
# A text longer than the context is scored in windows, every token once.
long=$("$muonlab" eval --model "$work/run" --text "$(printf 'The cat sat. %.0s' {1..5})" --stride 8)
[[ $long == *"over 64 tokens predicted in a sequence of 65 (windows of 32, stride 8)"* ]] ||
  { echo "FAIL: a 65-byte text gave: $long" >&2; exit 1; }
# --text goes through the run's tokenizer (byte: one id per byte), so it
# scores what --ids scores for the same bytes.
text=$("$muonlab" eval --model "$work/run" --text "The c" --json)
[[ $text == "$ids" ]] || { echo "FAIL: --text 'The c' gave $text, --ids of its bytes $ids" >&2; exit 1; }

# Multiple-choice items in HellaSwag's format, through the run's tokenizer.
cat >"$work/hellaswag.jsonl" <<'JSONL'
{"ind": 1, "ctx": "The cat sat", "endings": ["on the mat.", "in the sky of green.", "x", "sat."], "label": 0}
{"ctx": "A man", "endings": ["walks.", "flies away."], "label": "1"}
{"ctx": "Then", "endings": ["it ends.", "it does not."], "label": 1}
JSONL
choices=$("$muonlab" eval --model "$work/run" --hellaswag "$work/hellaswag.jsonl" --json)
[[ $choices =~ ^\{\"items\":3,\"acc_norm\":[0-9.e-]+,\"acc\":[0-9.e-]+,\"correct_norm\":[0-3],\"correct\":[0-3],\"tokenizer\":\"byte\", ]] ||
  { echo "FAIL: --hellaswag gave $choices" >&2; exit 1; }
first=$("$muonlab" eval --model "$work/run" --hellaswag "$work/hellaswag.jsonl" --items 1 --dtype fp32)
[[ $first =~ ^acc_norm\ [01]\.0000\ \([01]\ of\ 1\),\ acc\ [01]\.0000\ \([01]\)\ on\ .*hellaswag.jsonl\;\ byte\ tokenizer\;\ fp32\ on\ cpu$ ]] ||
  { echo "FAIL: --hellaswag --items 1 gave: $first" >&2; exit 1; }
# Hugging Face's Parquet copy scores as HellaSwag's JSON Lines of the same items.
parquet=$("$muonlab" eval --model "$work/run" --hellaswag "$src/tests/data/parquet/hellaswag.parquet" --json)
lines=$("$muonlab" eval --model "$work/run" --hellaswag "$src/tests/data/parquet/hellaswag.jsonl" --json)
[[ ${parquet%%,\"tokenizer\"*} == "${lines%%,\"tokenizer\"*}" && $parquet == '{"items":12,'* ]] ||
  { echo "FAIL: the Parquet items gave $parquet, their JSON Lines $lines" >&2; exit 1; }
echo '{"ctx": "c", "endings": ["a"], "label": 0}' >"$work/bad.jsonl"

expect_failure() { expect_muonlab_failure "$1" eval "${@:2}"; }
expect_failure "bad.jsonl:1: expected \"endings\", an array of two or more strings" --model "$work/run" --hellaswag "$work/bad.jsonl"
expect_failure "give one of --data, --text, --ids and --hellaswag" --model "$work/run" --ids 1,2 --hellaswag "$work/bad.jsonl"
expect_failure "no next token to predict: give at least 2" --model "$work/run" --ids 5
expect_failure "a sequence of 0 id(s) has no next token" --model "$work/run" --text ""
expect_failure "--stride 33: expected 1 to the model's block_size 32" --model "$work/run" --ids 1,2 --stride 33
expect_failure "--seq-len 99: expected 1 to the model's block_size 32" --model "$work/run" --seq-len 99
expect_failure "--dtype 'fp16': expected fp32, bf16 or auto" --model "$work/run" --dtype fp16
expect_failure "give one of --data, --text, --ids and --hellaswag" --model "$work/run" --ids 1,2 --text hi
expect_failure "/nonexistent/val_*.bin" --model "$work/run" --data "/nonexistent/val_*.bin"
expect_failure "--model excludes model_path" "$work/run" --model "$work/run"
expect_failure "no data: give --data SHARDS" --preset tiny-gpt2 --set vocab_size=257
echo "PASS: eval reproduces the run's val_loss $trained from its folder and its weights; options override the run's"
