#!/usr/bin/env bash
# run.tensorboard = true: the event files, read back by an independent
# reader (read_tfevents.py: plain Python, checksums verified), hold every
# number of metrics.jsonl at its step (to float32 precision), start with the
# format's version record, and a resumed run's file starts its session at
# the checkpoint's step so TensorBoard drops the older file's later steps.
#   tensorboard_check.sh MUONLAB_BINARY SOURCE_DIR PYTHON
set -euo pipefail
muonlab=$1
src=$2
python=$3
source "$src/tests/check_lib.sh"
make_scratch_dir tensorboard

prepare_byte_shards
{
  tiny_gpt2_config_with_val
  cat <<TOML
[run]
steps = 8
eval_every = 4
checkpoint_every = 4
tensorboard = true
out_dir = "$work/run"
TOML
} >"$work/run.toml"
"$muonlab" train --config "$work/run.toml" --sample-tokens 0 >/dev/null
sleep 1  # the resumed run's file gets a later name
"$muonlab" train --config "$work/run.toml" --sample-tokens 0 --resume --set run.steps=12 >/dev/null

files=("$work"/run/tensorboard/events.out.tfevents.*)
((${#files[@]} == 2)) || { echo "FAIL: expected 2 event files, found ${#files[@]}" >&2; exit 1; }
"$python" "$src/tests/training/read_tfevents.py" "${files[0]}" >"$work/first.jsonl"
"$python" "$src/tests/training/read_tfevents.py" "${files[1]}" >"$work/second.jsonl"
"$python" - "$work" <<'PY'
import json, math, sys
work = sys.argv[1]
first = [json.loads(l) for l in open(f"{work}/first.jsonl")]
second = [json.loads(l) for l in open(f"{work}/second.jsonl")]
assert first[0]["file_version"] == "brain.Event:2", first[0]
assert second[0]["file_version"] == "brain.Event:2", second[0]
assert second[1].get("session_start") and second[1]["step"] == 8, second[1]
# TensorBoard's view: the second file's session start drops the first
# file's events after step 8; what remains, merged per step.
seen = {}
for event in [e for e in first if e.get("step", 0) <= 8] + second:
    for tag, value in event.get("scalars", {}).items():
        seen[(event["step"], tag)] = value
expected = 0
for line in open(f"{work}/run/metrics.jsonl"):
    record = json.loads(line)
    for key, value in record.items():
        if key == "step" or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        got = seen.get((record["step"], key))
        assert got is not None, f"step {record['step']} {key} missing from the event files"
        assert math.isclose(got, value, rel_tol=1e-6, abs_tol=1e-30), (record["step"], key, got, value)
        expected += 1
steps = sorted({s for s, _ in seen})
assert steps == list(range(1, 13)), steps
assert ("loss" in {t for _, t in seen}) and (8, "val_loss") in seen and (12, "val_loss") in seen
print(f"PASS: {expected} metrics values in 2 TensorBoard event files, resumed session at step 8")
PY
