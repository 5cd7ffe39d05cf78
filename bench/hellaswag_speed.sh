#!/usr/bin/env bash
# Seconds `muonlab eval --hellaswag` takes for 500 HellaSwag-format items
# (contexts of 15-45 words and four endings of 8-25 words, cut from the
# bundled corpus) on the main job's model (configs/cpu-small.toml, weights
# after 2 steps: the speed does not depend on them), for each binary given,
# alternating, `rounds` times. Each line also prints the accuracies, which
# must agree between binaries.
#
#   bench/hellaswag_speed.sh [rounds] BINARY...
#   bench/hellaswag_speed.sh 3 /tmp/muonlab-before build/src/muonlab
set -euo pipefail
rounds=${1:-3}
shift || true
binaries=("$@")
[[ ${#binaries[@]} -gt 0 ]] || binaries=(build/src/muonlab)
[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
[[ -d data/corpus && -d data/shards ]] || { echo "needs data/corpus and data/shards: run scripts/fetch-data" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$work/items.jsonl" <<'PY'
import json, pathlib, random, sys
random.seed(1)
words = " ".join(p.read_text(encoding="utf-8") for p in sorted(pathlib.Path("data/corpus").rglob("*.txt"))).split()
def span(low, high):
    start = random.randrange(len(words) - high)
    return " ".join(words[start:start + random.randint(low, high)])
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for i in range(500):
        f.write(json.dumps({"ctx": span(15, 45), "endings": [span(8, 25) for _ in range(4)], "label": i % 4}) + "\n")
PY
"${binaries[0]}" train --config configs/cpu-small.toml --set run.steps=2 --set schedule.warmup_steps=0 \
  --set run.eval_every=0 --set "run.out_dir=$work/run" >"$work/train.log" 2>&1 ||
  { cat "$work/train.log" >&2; exit 1; }
for ((round = 1; round <= rounds; ++round)); do
  for binary in "${binaries[@]}"; do
    result=$(/usr/bin/time -f "%e" "$binary" eval "$work/run" --hellaswag "$work/items.jsonl" 2>"$work/time")
    echo "round $round: $binary $(tail -1 "$work/time") s; ${result%% on *}"
  done
done
