#!/usr/bin/env bash
# Time and peak memory of `muonlab data prepare` on JSON Lines cut from the
# bundled corpus (documents of 1-6 KB), about 100 MB and twice that, with the
# byte tokenizer (4 bytes of int32 per byte of text while encoding) and
# GPT-2's. Prints each run's seconds and peak RSS, and the peak's ratio
# between the two sizes: near 1 where memory stays bounded as the input grows.
#
#   bench/data_prepare_memory.sh [build/src/muonlab] [megabytes]
set -euo pipefail
muonlab=${1:-build/src/muonlab}
megabytes=${2:-100}
[[ -x /usr/bin/time ]] || { echo "needs GNU time: apt-get install time" >&2; exit 1; }
[[ -d data/corpus ]] || { echo "needs data/corpus: run scripts/fetch-data" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

make_input() {  # path, megabytes
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, pathlib, sys
out, megabytes = sys.argv[1], int(sys.argv[2])
text = "\n".join(p.read_text(encoding="utf-8") for p in sorted(pathlib.Path("data/corpus").rglob("*.txt")))
total, round_ = 0, 0
with open(out, "w", encoding="utf-8") as f:
    while total < megabytes * 1e6:
        at = 0
        while at < len(text) and total < megabytes * 1e6:
            length = 1000 + (at * 7919 + round_ * 104729) % 5000
            document = f"[{round_}] " + text[at:at + length]
            f.write(json.dumps({"text": document}) + "\n")
            total += len(document)
            at += length
        round_ += 1
PY
}

prepare() {  # tokenizer, megabytes; prints "seconds peak_kb"
  rm -rf "$work/out"
  /usr/bin/time -f "%e %M" -o "$work/time" "$muonlab" data prepare "$work/input$2.jsonl" --out "$work/out" \
    --name bench --tokenizer "$1" > /dev/null
  cat "$work/time"
}

make_input "$work/input$megabytes.jsonl" "$megabytes"
make_input "$work/input$((2 * megabytes)).jsonl" "$((2 * megabytes))"
for tokenizer in byte gpt2; do
  read -r seconds1 peak1 <<< "$(prepare "$tokenizer" "$megabytes")"
  read -r seconds2 peak2 <<< "$(prepare "$tokenizer" "$((2 * megabytes))")"
  awk -v t="$tokenizer" -v mb="$megabytes" -v s1="$seconds1" -v s2="$seconds2" -v p1="$peak1" -v p2="$peak2" \
    'BEGIN { printf "%-5s %4d MB: %6.2f s, peak RSS %5.0f MB | %4d MB: %6.2f s, peak RSS %5.0f MB | peak ratio %.2f\n",
             t, mb, s1, p1 / 1024, 2 * mb, s2, p2 / 1024, p2 / p1 }'
done
