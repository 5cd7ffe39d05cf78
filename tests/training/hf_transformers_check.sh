#!/usr/bin/env bash
# `muonlab export --hf` read back by Hugging Face transformers: a tiny GPT-2
# (also with a ReLU squared MLP) and a tiny LLaMA, trained briefly, exported, then scored on a sentence by
# both (each position's next-token loss, float32 on the CPU, within 1e-4)
# and continued greedily by both (token for token); and a run on a
# tokenizer.json, whose exported tokenizer encodes alike in transformers.
# Skips (77) where Python has no transformers.
#   hf_transformers_check.sh MUONLAB_BINARY SOURCE_DIR PYTHON [DEVICE]
# DEVICE (cpu, or cuda on the GPU machine) is where the models train.
set -euo pipefail
muonlab=$1
src=$2
python=$3
device=${4:-cpu}
source "$src/tests/check_lib.sh"
if ! "$python" -c 'import torch, transformers' 2>/dev/null; then
  echo "SKIP: $python has no transformers"
  exit 77
fi
make_scratch_dir hf-transformers
prepare_byte_shards
check=$src/scripts/device/hf_export_check.py
# 31 bytes: the tiny models' context is 32.
sentence_ids=$(printf '%s' "The old city lies by the river." | od -An -tu1 -v | xargs | tr ' ' ',')

# relu2: GPT-2 with modded-nanogpt's ReLU squared MLP, transformers' "relu2".
for preset in tiny-gpt2 tiny-llama relu2; do
  model_lines=$([[ $preset == relu2 ]] && printf 'preset = "tiny-gpt2"\nmlp = "relu2"' || echo "preset = \"$preset\"")
  cat >"$work/$preset.toml" <<TOML
[model]
$model_lines
vocab_size = 257
[data]
train = "$work/shards/t_train_*.bin"
val = "$work/shards/t_val_*.bin"
tokenizer = "byte"
batch_size = 16
[run]
steps = 60
eval_every = 0
device = "$device"
dtype = "bf16"
out_dir = "$work/$preset"
TOML
  "$muonlab" train --config "$work/$preset.toml" --sample-tokens 0 >/dev/null
  "$muonlab" export --hf "$work/$preset" "$work/$preset-hf" >/dev/null
  "$muonlab" eval --model "$work/$preset" --ids "$sentence_ids" --dtype fp32 --device cpu --json >"$work/$preset.json"
  "$python" "$check" "$work/$preset-hf" "$sentence_ids" --losses "$work/$preset.json" 2>/dev/null |
    sed "s/^\(PASS\|FAIL\):/\1 ($preset losses):/"
  ours=$("$muonlab" generate --model "$work/$preset" --prompt-ids 84,104,101,32 --temperature 0 --max-new-tokens 24)
  theirs=$("$python" "$check" "$work/$preset-hf" 84,104,101,32 24 2>/dev/null)
  echo "muonlab ($preset):      $ours"
  echo "transformers ($preset): $theirs"
  [[ $ours == "$theirs" ]] || { echo "FAIL: the $preset continuations differ" >&2; exit 1; }
done
# A run on a Hugging Face tokenizer.json: the export's tokenizer, loaded by
# transformers' AutoTokenizer, encodes as muonlab does.
tokenizer=$src/tests/data/hf_tokenizer/tokenizer.json
"$muonlab" data prepare "$src/tests/data/text" --out "$work/json-shards" --name t --tokenizer "$tokenizer" \
  --val-fraction 0 >/dev/null
cat >"$work/json.toml" <<TOML
[model]
preset = "tiny-llama"
vocab_size = 1005
[data]
train = "$work/json-shards/t_train_*.bin"
tokenizer = "$tokenizer"
batch_size = 4
[run]
steps = 3
eval_every = 0
out_dir = "$work/json"
TOML
"$muonlab" train --config "$work/json.toml" --sample-tokens 0 >/dev/null
"$muonlab" export --hf "$work/json" "$work/json-hf" >/dev/null
text=$(printf 'Call me Ishmael. It ended.\nThe whale; (the end) DON\x27T 1851')
ours=$(printf '%s' "$text" | "$muonlab" data encode --tokenizer "$tokenizer")
theirs=$("$python" -c 'import sys, transformers
t = transformers.AutoTokenizer.from_pretrained(sys.argv[1])
print(" ".join(map(str, t.encode(sys.argv[2], add_special_tokens=False))), t.eos_token_id)' "$work/json-hf" "$text" 2>/dev/null)
echo "muonlab (tokenizer.json):      $ours"
echo "transformers (tokenizer.json): $theirs"
[[ "$ours 1002" == "$theirs" ]] || { echo "FAIL: the exported tokenizer.json encodes otherwise in transformers" >&2; exit 1; }
echo "PASS: transformers $("$python" -c 'import transformers; print(transformers.__version__)' 2>/dev/null) scores" \
  "the GPT-2 and LLaMA exports as muonlab does and continues them alike"
