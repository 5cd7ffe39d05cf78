#!/usr/bin/env bash
# QK-clip in training: Muon at a learning rate that makes attention logits
# grow (past 3 tau within 40 steps without the clip, measured with tau so
# large it never acts) is held near tau with optimizer.qk_clip_tau = tau
# (the logged maximum is the next step's forward, before its clip: within
# one update of tau), with a finite loss; tracking alone changes no step.
#   qk_clip_check.sh MUONLAB_BINARY SOURCE_DIR PYTHON
set -euo pipefail
muonlab=$1
src=$2
python=$3
source "$src/tests/check_lib.sh"
make_scratch_dir qk-clip

prepare_byte_shards
{
  tiny_gpt2_config_head
  cat <<TOML
batch_size = 8
[optimizer]
name = "muon"
lr = 0.2
weight_decay = 0
[run]
steps = 40
eval_every = 0
TOML
} >"$work/run.toml"
train() { "$muonlab" train --config "$work/run.toml" --sample-tokens 0 --set "run.out_dir=$work/$1" "${@:2}" >/dev/null; }
train plain
train tracked --set optimizer.qk_clip_tau=1e9
train clipped --set optimizer.qk_clip_tau=5
"$python" - "$work" <<'PY'
import json, math, sys
work = sys.argv[1]
def records(run):
    return [json.loads(line) for line in open(f"{work}/{run}/metrics.jsonl") if '"loss"' in line]
plain, tracked, clipped = records("plain"), records("tracked"), records("clipped")
assert [r["loss"] for r in plain] == [r["loss"] for r in tracked], "tracking changed the training"
grown = max(r["max_logit"] for r in tracked)
held = max(r["max_logit"] for r in clipped)
clips = sum(r["qk_clipped_heads"] for r in clipped)
assert grown > 15, f"the unclipped logits reached only {grown}"
assert held < 10, f"the clipped run's logits reached {held} with tau = 5"
assert clips > 0 and sum(r["qk_clipped_heads"] for r in tracked) == 0
assert all(math.isfinite(r["loss"]) for r in clipped)
print(f"PASS: max logit {grown:.1f} unclipped, {held:.1f} with tau = 5 ({clips} head clips), tracking alone changes nothing")
PY
