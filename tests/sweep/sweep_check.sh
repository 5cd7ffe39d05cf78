#!/usr/bin/env bash
# Sweep resumption: a sweep killed (SIGKILL, with its running child) after
# its first run finished is rerun with the same command; the finished run is
# skipped and not recomputed (its log and weights untouched), the killed run
# resumes from its checkpoint, and the index lists every run as done with the
# validation loss its folder logged.
#   sweep_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir sweep
prepare_byte_shards
cat >"$work/hellaswag.jsonl" <<'JSONL'
{"ctx": "The cat sat", "endings": ["on the mat.", "in the sky of green.", "x", "sat."], "label": 0}
{"ctx": "A man", "endings": ["walks.", "flies away."], "label": "1"}
{"ctx": "Then", "endings": ["it ends.", "it does not."], "label": 1}
{"ctx": "She opened", "endings": ["the door.", "a banana of time."], "label": 0}
JSONL

cat >"$work/base.toml" <<TOML
[model]
preset = "tiny-gpt2"
vocab_size = 257
[data]
train = "$work/shards/t_train_*.bin"
val = "$work/shards/t_val_*.bin"
tokenizer = "byte"
batch_size = 4
[run]
steps = 40
eval_every = 20
eval_tokens = 1024
checkpoint_every = 10
one_step_every = 20
hellaswag = "$work/hellaswag.jsonl"
TOML
cat >"$work/spec.toml" <<TOML
[sweep]
name = "check"
base = "base.toml"
baseline = "adamw"
parallel = 1
target_loss = 5.0
[axes]
"run.seed" = [1, 2]
[[variant]]
name = "adamw"
set = ["optimizer.name=adamw", "optimizer.lr=0.003"]
[[variant]]
name = "muon"
set = ["optimizer.qk_clip_tau=1e9"]  # tracks attention logits, clips none
TOML

# Its own process group, so that one kill stops the sweep and its child.
setsid "$muonlab" sweep "$work/spec.toml" --out "$work/sweep" >"$work/first.log" 2>&1 &
pid=$!
first="$work/sweep/runs/adamw/run.seed=1"
for _ in $(seq 1200); do
  [[ -f $first/model.safetensors ]] && break
  sleep 0.05
done
# Wait for the second run to finish a checkpoint (not a step_*.tmp folder
# still being written), then kill everything.
for _ in $(seq 1200); do
  finished=$(compgen -G "$work/sweep/runs/adamw/run.seed=2/checkpoints/step_*" | grep -v '\.tmp' || true)
  [[ -n $finished ]] && break
  sleep 0.05
done
kill -KILL -- "-$pid"
wait "$pid" 2>/dev/null || true
[[ -f $first/model.safetensors ]] || { cat "$work/first.log" >&2; echo "FAIL: first run never finished" >&2; exit 1; }
before=$(stat -c '%Y %s' "$first/train.log" "$first/model.safetensors")

# On failure, the failed runs' logs too: the scratch folder goes with the test.
show_failed_runs() {
  cat "$work/second.log" >&2
  for log in $(grep -o "see [^ ]*train.log" "$work/second.log" | cut -c5-); do
    echo "--- $log (end)" >&2
    tail -n 25 "$log" >&2
  done
}
"$muonlab" sweep "$work/spec.toml" --out "$work/sweep" >"$work/second.log" 2>&1 || { show_failed_runs; exit 1; }
cat "$work/second.log"
grep -q "adamw/run.seed=1: done before, skipped" "$work/second.log"
grep -q "adamw/run.seed=2: started (resuming from its checkpoint)" "$work/second.log"
[[ $(stat -c '%Y %s' "$first/train.log" "$first/model.safetensors") == "$before" ]] ||
  { echo "FAIL: the finished run was recomputed" >&2; exit 1; }
# A third call finds everything done.
"$muonlab" sweep "$work/spec.toml" --out "$work/sweep" | grep -q "4 runs: 4 done before, 0 finished now, 0 failed"

# The report over the 4 runs: every cell, the comparison, the charts.
"$muonlab" report "$work/sweep" | tee "$work/report.log"
grep -q "4 runs reported (0 not finished, left out)" "$work/report.log"
report="$work/sweep/report.md"
cat "$report"
grep -qE '^\| - \| adamw \| 0.003 \(config\) \| 2 \| [0-9.]+ ± [0-9.]+ \| - \| - \| [0-9.]+ ± [0-9.]+ \|$' "$report"
# Muon's largest attention logits: the peak over each run and the last
# step's, as means over the two seeds, computed here from the runs' logs.
expected_logits=$(python3 - "$work/sweep/runs/muon" <<'PY'
import glob, json, statistics, sys
peaks, finals = [], []
for log in sorted(glob.glob(sys.argv[1] + "/*/metrics.jsonl")):
    logits = [r["max_logit"] for r in map(json.loads, open(log)) if "max_logit" in r]
    peaks.append(max(logits)); finals.append(logits[-1])
print("| {:.1f} ± {:.1f} | {:.1f} ± {:.1f} |".format(statistics.mean(peaks), statistics.stdev(peaks),
                                                    statistics.mean(finals), statistics.stdev(finals)))
PY
)
grep -qF "| - | muon | " "$report"
grep -F "| - | muon | " "$report" | grep -qF -- "$expected_logits" ||
  { echo "FAIL: expected muon's logits $expected_logits in the report" >&2; exit 1; }
# The resolved settings each variant ran with, from its runs' config.toml.
grep -qE '^\| - \| muon \| muon \| [0-9.e-]+ \| [0-9.e-]+ \| [0-9.e-]+ / [0-9.e-]+ \| 0.95 \| 5 \| jordan \| original \| yes \| - \| cosine, warmup 0' "$report"
# One lr and two seeds are flagged, not silently used.
grep -q '^- \*\*muon: learning rate not bracketed\*\* (one lr, not tuned)$' "$report"
grep -q '^- muon: 2 seed(s), fewer than 5: preliminary$' "$report"
grep -qE '^\| muon \| [0-9.e-]+ \(config\) \| - \| 2 \| [0-9.]+ ± [0-9.]+ \| [-+][0-9.]+ \[[-+][0-9.]+, [-+][0-9.]+\] \| t = -?[0-9.]+, p = [0-9.e-]+ \(2 pairs\) \| [0-9.e-]+ \| ([0-9]+ \[[0-9]+, [0-9]+\]|not reached) \| ' "$report"
grep -qE '^\| adamw \| [0-9.]+ \| [0-9.]+ \|$' "$report"      # validation loss at steps 20 and 40
grep -qE '^\| muon \| 40 \| 1 \| [-0-9.e+]+ \| [-0-9.e+]+ \| [-0-9.e+]+ \| [-0-9.e+]+ \|$' "$report"  # one-step terms, g = 1
[[ -s $work/sweep/charts/curves_0_vs_tokens.png && -s $work/sweep/charts/evaluations_0.png ]]
grep -q "(charts/evaluations_0.png)" "$report"
# HellaSwag: each variant's last acc_norm, the mean over its two seeds
# computed here from the runs' logs, and the chart of it by tokens.
for variant in adamw muon; do
  expected_hellaswag=$(python3 - "$work/sweep/runs/$variant" <<'PY'
import glob, json, statistics, sys
last = []
for log in sorted(glob.glob(sys.argv[1] + "/*/metrics.jsonl")):
    last.append([r["hellaswag_acc_norm"] for r in map(json.loads, open(log)) if "hellaswag_acc_norm" in r][-1])
print("| 2 | 4 | {:.4f} ± {:.4f} |".format(statistics.mean(last), statistics.stdev(last)))
PY
)
  grep -F "| $variant | 2 | 4 | " "$report" | grep -qF -- "$expected_hellaswag" ||
    { echo "FAIL: expected $variant's HellaSwag $expected_hellaswag in the report" >&2; exit 1; }
done
grep -qE '^\| muon \| 2 \| 4 \| [0-9.]+ ± [0-9.]+ \| [-+][0-9.]+( \[[-+][0-9.]+, [-+][0-9.]+\])? \| (t = |n/a)' "$report"
[[ -s $work/sweep/charts/curves_0_hellaswag_vs_tokens.png ]]
grep -q "(charts/curves_0_hellaswag_vs_tokens.png)" "$report"
# A target chosen after the fact, above every run's first evaluation, so
# every variant gets a token count, R and compute relative to the baseline.
"$muonlab" report "$work/sweep" --target-loss 5.25 --no-plots --out "$work/reports/target.md" >/dev/null
grep -q "Tokens to reach loss 5.25 " "$work/reports/target.md"
grep -qE '^\| muon \| [0-9.e-]+ \(config\) \| - \| 2 \| .* \| [0-9]+ \[[0-9]+, [0-9]+\] \| [0-9.]+ \[[0-9.]+, [0-9.]+\] \| [0-9]+% \|$' "$work/reports/target.md"
grep -q 'target loss 5.25 chosen after the runs\*\* (the spec declared 5): post hoc' "$work/reports/target.md"
# Another baseline chosen after the runs: every variant against it, the
# choice marked post hoc; AdamW's difference from Muon is minus Muon's
# from AdamW.
"$muonlab" report "$work/sweep" --baseline muon --no-plots --out "$work/reports/muon.md" >/dev/null
grep -q "baseline \`muon\`; final validation loss" "$work/reports/muon.md"
grep -q "baseline \`muon\` chosen after the runs\*\* (the spec declared \`adamw\`): its comparisons are post hoc" \
  "$work/reports/muon.md"
muon_vs_adamw=$(awk -F' [|] ' '$1 == "| muon" { print $6 }' "$report" | cut -d' ' -f1)
adamw_vs_muon=$(awk -F' [|] ' '$1 == "| adamw" { print $6 }' "$work/reports/muon.md" | cut -d' ' -f1)
[[ -n $muon_vs_adamw && $(awk -v a="$muon_vs_adamw" -v b="$adamw_vs_muon" 'BEGIN { print (a + b == 0) }') == 1 ]] ||
  { echo "FAIL: muon vs adamw $muon_vs_adamw, adamw vs muon $adamw_vs_muon: expected opposite signs" >&2; exit 1; }
{ "$muonlab" report "$work/sweep" --baseline nosuch --no-plots 2>&1 || true; } |
  grep -q "\--baseline nosuch: no finished run of that variant in '$work/sweep'; the variants are adamw, muon" ||
  { echo "FAIL: an unknown --baseline was not refused by name" >&2; exit 1; }

# Archived without weights and checkpoints (scripts/archive-sweep), restored
# elsewhere: the sweep counts every run as done and recomputes none, and the
# report's per-run results are the original's.
"$src/scripts/archive-sweep" "$work/sweep" "$work/archive" | grep -q "4 finished run(s) archived"
[[ -z $(find "$work/archive" -name model.safetensors -o -name checkpoints) ]] ||
  { echo "FAIL: the archive holds weights or checkpoints" >&2; exit 1; }
cp -r "$work/archive" "$work/restored"
"$muonlab" sweep "$work/spec.toml" --out "$work/restored" | grep -q "4 runs: 4 done before, 0 finished now, 0 failed"
[[ -z $(find "$work/restored" -name model.safetensors) ]] || { echo "FAIL: an archived run was run again" >&2; exit 1; }
"$muonlab" report "$work/restored" --no-plots >/dev/null
[[ "$(grep -E '^\| - \| (adamw|muon) \| [0-9.e-]+ \(config\)' "$work/restored/report.md")" == \
   "$(grep -E '^\| - \| (adamw|muon) \| [0-9.e-]+ \(config\)' "$report")" ]] ||
  { echo "FAIL: the restored archive reports other results" >&2; exit 1; }
# The archive reports as it is, from another directory, with the sweep it
# came from moved away: the index's run folders are read under the archive.
mv "$work/sweep" "$work/sweep-moved"
(cd / && "$muonlab" report "$work/archive" --no-plots >/dev/null)
mv "$work/sweep-moved" "$work/sweep"
[[ "$(grep -E '^\| - \| (adamw|muon) \| [0-9.e-]+ \(config\)' "$work/archive/report.md")" == \
   "$(grep -E '^\| - \| (adamw|muon) \| [0-9.e-]+ \(config\)' "$report")" ]] ||
  { echo "FAIL: the archive, reported where it is, gives other results" >&2; exit 1; }
{ "$src/scripts/archive-sweep" "$work/shards" 2>&1 || true; } | grep -q "is not a sweep folder" ||
  { echo "FAIL: archive-sweep took a folder that is not a sweep" >&2; exit 1; }
echo "PASS: killed after 1 finished run; rerun skipped it, resumed the killed one, finished all 4; report written, also for a target given on the command line; archived without weights and restored, nothing rerun, same results; the archive reported where it is"
