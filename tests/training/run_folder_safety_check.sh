#!/usr/bin/env bash
# Nothing lost in a run folder: a second `train` on a folder in use is
# refused naming the holder's pid; a fresh run refuses a folder that holds a
# run (and --move-aside moves it); a checkpoint file with flipped bytes is
# named on --resume with the older checkpoints, and --resume-from takes
# one; stale .tmp/.del folders are removed; --resume of a finished run says
# so, and of one stopped before its final weights writes them; bad paths and values end in `muonlab: error:` with exit 1.
#   run_folder_safety_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir run-folder

prepare_byte_shards
cat >"$work/run.toml" <<TOML
[model]
preset = "tiny-gpt2"
vocab_size = 257
block_size = 32
[data]
train = "$work/shards/t_train_*.bin"
tokenizer = "byte"
batch_size = 4
[run]
steps = 12
eval_every = 0
checkpoint_every = 4
keep_checkpoints = 3
TOML
train() { "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$1" "${@:2}"; }
# Runs "$@", expecting exit 1 and `pattern` in its stderr.
expect_error() {
  local pattern=$1
  shift
  local status=0
  "$@" >"$work/out.log" 2>"$work/err.log" || status=$?
  if ((status != 1)) || ! grep -qE -- "$pattern" "$work/err.log"; then
    echo "FAIL: '$*' exited $status; expected 1 and /$pattern/ in:" >&2
    cat "$work/err.log" >&2
    exit 1
  fi
}

# 1. The lock: a long run holds the folder; a second run on it is refused.
"$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$work/locked" \
  --set run.steps=100000 --set run.checkpoint_every=0 >/dev/null 2>&1 &
holder=$!
for _ in $(seq 600); do
  [[ -s $work/locked/.muonlab.lock ]] && break
  sleep 0.05
done
expect_error "run folder '$work/locked' is in use by another muonlab process \(pid $holder\)" train "$work/locked"
expect_error "run folder '$work/locked' is in use by another muonlab process \(pid $holder\)" \
  train "$work/locked" --move-aside
[[ -d $work/locked && ! -e $work/locked.old-1 ]]
kill -INT "$holder"
wait "$holder" || true

# 2. A finished run: a fresh start on it is refused, --resume says it is
# done, --move-aside moves it and starts afresh.
train "$work/run" >"$work/run.log"
expect_error "run folder '$work/run' already holds a run .*--resume.*--move-aside" train "$work/run"
expect_error "the run in '$work/run' already finished \(12 of run.steps = 12 done" train "$work/run" --resume
# A run stopped after its last checkpoint and before its final weights
# (killed in between): --resume trains no step and writes them, the same
# bytes, reporting the run's final loss.
cp -r "$work/run" "$work/unfinished"
rm "$work/unfinished/model.safetensors" "$work/unfinished/metrics.csv"
train "$work/unfinished" --resume >"$work/unfinished.log"
cmp "$work/run/model.safetensors" "$work/unfinished/model.safetensors"
cmp "$work/run/metrics.csv" "$work/unfinished/metrics.csv"
final=$(grep -o "done: 12 steps, final train loss [0-9.]*" "$work/run.log")
grep -q "$final" "$work/unfinished.log" || { echo "FAIL: not '$final':" >&2; cat "$work/unfinished.log" >&2; exit 1; }
train "$work/run" --move-aside >"$work/aside.log"
grep -q "moved the earlier run in $work/run to $work/run.old-1" "$work/aside.log"
[[ -f $work/run.old-1/model.safetensors && -f $work/run/model.safetensors ]]
# Under a launcher only rank 0 moves the folder; the others start with it.
cp -r "$work/run.old-1" "$work/ranks"
"$muonlab" launch -n 2 -- train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$work/ranks" \
  --move-aside >"$work/ranks.log" 2>&1
grep -q "moved the earlier run in $work/ranks to $work/ranks.old-1" "$work/ranks.log"
[[ -f $work/ranks.old-1/model.safetensors && -f $work/ranks/model.safetensors && ! -e $work/ranks.old-2 ]]

# 3. Flipped bytes in the newest checkpoint's weights are named, with the
# older checkpoints; --resume-from an older one continues from it.
ckpts=$work/run/checkpoints
printf '\xff\xff\xff\xff\xff\xff\xff\xff' | dd of="$ckpts/step_00000012/model.safetensors" bs=1 seek=2000 conv=notrunc 2>/dev/null
expect_error "checkpoint file '$ckpts/step_00000012/model.safetensors' is corrupt: .* CRC-32 .*other complete checkpoints, newest first: $ckpts/step_00000008, $ckpts/step_00000004; resume one with --resume-from DIR" \
  train "$work/run" --resume --set run.steps=16
train "$work/run" --resume-from "$ckpts/step_00000008" --set run.steps=16 >"$work/resumed.log"
grep -q "(resumed from step 8)" "$work/resumed.log"

# 4. Leftovers of a killed writer or pruner are removed at the next save.
mkdir -p "$ckpts/step_00000099.tmp" "$ckpts/step_00000098.del"
train "$work/run" --resume --set run.steps=20 >/dev/null
[[ ! -e $ckpts/step_00000099.tmp && ! -e $ckpts/step_00000098.del ]]
[[ -d $ckpts/step_00000020 ]]

# 5. Bad paths and values: named errors, exit 1, no crash.
touch "$work/a-file"
expect_error "^muonlab: error: .*$work/a-file" train "$work/a-file"
expect_error "'optimizer.lr': expected a finite number, got inf" train "$work/inf" --set optimizer.lr=inf
expect_error "did you mean 'train'\?" "$muonlab" trian
expect_error "launch: 'trian' is not a muonlab subcommand; did you mean 'train'\?" "$muonlab" launch -n 2 -- trian
expect_error "did you mean '--config'\?" "$muonlab" train --confg "$work/run.toml"
expect_error "'check' is not a subcommand of 'muonlab data': expected one of encode, decode, prepare, peek, info" \
  "$muonlab" data check "$work"
# Numeric options say what they expect, not CLI11's range up to the largest double.
expect_error "--reps: '0': expected a whole number >= 1 \(run" "$muonlab" bench optim --reps 0
expect_error "--reps: '1.5': expected a whole number >= 1" "$muonlab" bench optim --reps 1.5
expect_error "--pairs: '-1': expected a whole number >= 0" "$muonlab" bench optim --pairs -1
expect_error "--max-gib: '0': expected a number > 0" "$muonlab" bench train --max-gib 0
expect_error "--smooth: 'x': expected a whole number >= 1" "$muonlab" plot "$work/run" --smooth x
expect_error "--threads: '-2': expected a whole number >= 0" "$muonlab" data prepare "$work" --out "$work/x" --threads -2
expect_error "--max: '-1': expected a whole number >= 0" "$muonlab" data peek "$work" --max -1
expect_error "--master-port: .*not in range \[?0( to | - )65535" "$muonlab" launch -n 2 --master-port 99999 -- version
expect_error "--grace: '-1': expected a number >= 0" "$muonlab" launch -n 2 --grace -1 -- version
expect_error "config '$work' is a folder; expected a TOML file" "$muonlab" train --config "$work"
expect_error "'\"/x' is not a valid TOML value" train "$work/quote" --set 'run.out_dir="/x'
# A run its optimizer refuses (a head group size that does not divide 6 heads)
# or that finds no data leaves no run folder behind; the config may come
# first, without --config.
expect_error "'optimizer.group_size' = 4 does not divide the model's model.n_head = 6" \
  "$muonlab" train "$work/run.toml" --set "run.out_dir=$work/refused" --set model.n_head=6 --set model.d_model=48 \
  --set optimizer.group_size=4
expect_error "no shard files match" "$muonlab" train "$work/run.toml" --set "run.out_dir=$work/refused" \
  --set "data.train=$work/none_*.bin"
[[ ! -e "$work/refused" ]] || { echo "FAIL: a refused run left $work/refused" >&2; exit 1; }
expect_error "excludes" "$muonlab" train "$work/run.toml" --config "$work/run.toml"
# model info describes the model a train config trains, --set applied to its [model]:
# the same as the preset with the config's model keys.
"$muonlab" model info "$work/run.toml" --set n_layer=3 >"$work/info-config.txt"
"$muonlab" model info tiny-gpt2 --set vocab_size=257 --set block_size=32 --set n_layer=3 >"$work/info-preset.txt"
diff "$work/info-config.txt" "$work/info-preset.txt" || { echo "FAIL: model info of run.toml differs" >&2; exit 1; }
grep -q "3 layers" "$work/info-config.txt"
# One kind of file given where another belongs is named as such.
printf '[sweep]\nname = "s"\nbase = "run.toml"\n' >"$work/spec.toml"
expect_error "spec.toml:1: \[sweep\]: a sweep spec, not a train config: run it with .muonlab sweep" \
  "$muonlab" train "$work/spec.toml"
expect_error "run.toml: a train config, not a sweep spec .*train it with .muonlab train" "$muonlab" sweep "$work/run.toml"
expect_error "run.toml' is a TOML config, not a model: train it" "$muonlab" eval "$work/run.toml"
expect_error "run.toml' is a TOML config, not a model" "$muonlab" generate --model "$work/run.toml" --max-new-tokens 1
expect_error "cannot read '.*spec.json': not a PyTorch archive" sh -c "cp '$work/spec.toml' '$work/spec.json' && \
  '$muonlab' generate --model '$work/spec.json' --max-new-tokens 1"
if [[ -c /dev/full ]]; then
  expect_error "cannot write to standard output" sh -c "echo hello | '$muonlab' data encode --tokenizer byte >/dev/full"
fi
# CLI11 2.3 (Debian 12) says "not in range 1 to 4096", 2.4 (Debian 13) "not in range [1 - 4096]".
expect_error "--nproc: .*not in range \[?1( to | - )4096" "$muonlab" launch -n 0 -- version
"$muonlab" --version >"$work/version.log"
grep -qE "^muonlab [0-9]+\.[0-9]+" "$work/version.log"
echo "PASS: lock, old-run refusal, move-aside, checksum, resume-from, stale cleanup, named errors"
