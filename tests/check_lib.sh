# Sourced by the CLI check scripts (tests/*/*_check.sh), which set $muonlab
# (the executable) and $src (the source tree) first.

# $work: a fresh scratch folder, removed when the script exits.
make_scratch_dir() {
  work=$(mktemp -d "${TMPDIR:-/tmp}/muonlab-$1.XXXXXX")
  trap 'rm -rf "$work"' EXIT
}

# The committed text excerpts as byte-token shards in $work/shards (t_train_*, t_val_*).
prepare_byte_shards() {
  "$muonlab" data prepare "$src/tests/data/text" --out "$work/shards" --name t --tokenizer byte \
    --val-fraction 0.34 >/dev/null
}

# The start of a tiny GPT-2 config on those shards: [model] and the first
# lines of [data]; callers go on with more [data] keys and their tables.
tiny_gpt2_config_head() {
  cat <<TOML
[model]
preset = "tiny-gpt2"
vocab_size = 257
[data]
train = "$work/shards/t_train_*.bin"
tokenizer = "byte"
TOML
}

# The same head with the validation shards and a batch of 4: callers go on
# with their [run] table.
tiny_gpt2_config_with_val() {
  tiny_gpt2_config_head
  cat <<TOML
val = "$work/shards/t_val_*.bin"
batch_size = 4
TOML
}

# A 5-step tiny GPT-2 run in $work/run (config $work/run.toml), output discarded.
train_tiny_gpt2_run() {
  {
    tiny_gpt2_config_head
    cat <<TOML
batch_size = 4
[run]
steps = 5
eval_every = 0
out_dir = "$work/run"
TOML
  } >"$work/run.toml"
  "$muonlab" train --config "$work/run.toml" --sample-tokens 0 >/dev/null
}

# Runs muonlab with the arguments given; the check fails unless muonlab
# fails with MESSAGE (a fixed string) in its error output.
expect_muonlab_failure() {
  local message=$1
  shift
  if "$muonlab" "$@" 2>"$work/err.log" >/dev/null; then
    echo "FAIL: muonlab $* succeeded" >&2
    exit 1
  fi
  grep -qF -- "$message" "$work/err.log" || { echo "FAIL: muonlab $* said: $(cat "$work/err.log")" >&2; exit 1; }
}
