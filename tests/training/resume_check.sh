#!/usr/bin/env bash
# Resume is exact: a run interrupted by SIGINT and resumed with --resume ends
# with the same weights (byte-identical safetensors) and the same per-step
# losses as an uninterrupted run.
#   resume_check.sh MUONLAB_BINARY SOURCE_DIR [--set KEY=VALUE ...]
# Arguments after SOURCE_DIR go to every `muonlab train` (another optimizer).
set -euo pipefail
muonlab=$1
src=$2
extra=("${@:3}")
source "$src/tests/check_lib.sh"
make_scratch_dir resume

prepare_byte_shards
cat >"$work/run.toml" <<TOML
[model]
preset = "tiny-llama"
vocab_size = 257
block_size = 128
d_model = 64
[data]
train = "$work/shards/t_train_*.bin"
val = "$work/shards/t_val_*.bin"
tokenizer = "byte"
batch_size = 8
[run]
steps = 300
eval_every = 0
checkpoint_every = 50
TOML

train() { "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$1" "${extra[@]}" "${@:2}"; }

train "$work/whole" >/dev/null

# Started directly, not through train(): $! must be muonlab's own pid.
"$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$work/split" "${extra[@]}" \
  >"$work/split.log" 2>&1 &
pid=$!
# Interrupt once some steps are logged (a plain log: stderr is not a terminal).
for _ in $(seq 600); do
  [[ -f $work/split/metrics.jsonl ]] && (($(wc -l <"$work/split/metrics.jsonl") >= 20)) && break
  sleep 0.05
done
kill -INT "$pid"
if wait "$pid"; then
  echo "FAIL: the run finished before SIGINT reached it" >&2
  exit 1
fi
grep -q "interrupted after step" "$work/split.log" || { cat "$work/split.log" >&2; exit 1; }
stopped=$(wc -l <"$work/split/metrics.jsonl")
train "$work/split" --resume >"$work/resume.log"

cmp "$work/whole/model.safetensors" "$work/split/model.safetensors"
diff <(grep -o '"loss":[^,]*' "$work/whole/metrics.jsonl") <(grep -o '"loss":[^,]*' "$work/split/metrics.jsonl")
echo "PASS: interrupted after $stopped logged steps, resumed ($(grep -o 'resumed from step [0-9]*' "$work/resume.log")): weights and losses identical"
