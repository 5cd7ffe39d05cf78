#!/usr/bin/env bash
# `muonlab data prepare` from the command line on JSON Lines (--json-field),
# on a Parquet file's column (--field), and on a text file of several
# documents (--separator), the note it prints
# when a text file holds the literal <|endoftext|> instead, and a Hugging
# Face tokenizer.json as --tokenizer.
#   prepare_formats_check.sh MUONLAB_BINARY SOURCE_DIR
set -euo pipefail
muonlab=$1
src=$2
source "$src/tests/check_lib.sh"
make_scratch_dir prepare-formats

for i in 1 2 3 4; do printf '{"id": %d, "body": "Story %d.\\nThe end."}\n' "$i" "$i"; done >"$work/stories.jsonl"
out=$("$muonlab" data prepare "$work/stories.jsonl" --json-field body --out "$work/json" --name s --tokenizer byte \
  --val-fraction 0.25)
[[ $out == *"train        3 documents"*"val          1 documents"* ]] || { echo "FAIL: JSON Lines gave: $out" >&2; exit 1; }
expect_muonlab_failure "stories.jsonl:1: no field \"text\" (the object has: body, id)" \
  data prepare "$work/stories.jsonl" --out "$work/unused"

# A Parquet file (the Arrow Rust writer's, gzip pages): a document per row of
# the --field column, whose 300 rows hold 9 distinct urls.
parquet="$src/tests/data/parquet/gzip_pages_row_groups.parquet"
out=$("$muonlab" data prepare "$parquet" --field url --out "$work/parquet" --name u --tokenizer byte --val-fraction 0)
[[ $out == *"train        9 documents"*"dropped 291 duplicate and 0 empty document(s)"* ]] || { echo "FAIL: Parquet gave: $out" >&2; exit 1; }
expect_muonlab_failure "has no column 'body' (its columns: id, text, url); name the documents' column with --field" \
  data prepare "$parquet" --field body --out "$work/unused"

for i in 1 2 3 4; do printf 'Story %d.\nThe end.\n<|endoftext|>\n' "$i"; done >"$work/stories.txt"
out=$("$muonlab" data prepare "$work/stories.txt" --separator '<|endoftext|>' --out "$work/text" --name s \
  --tokenizer byte --val-fraction 0.25)
[[ $out == *"train        3 documents"*"val          1 documents"* ]] || { echo "FAIL: --separator gave: $out" >&2; exit 1; }
# Each piece trimmed: the same bytes as the JSON documents, so the same shards.
cmp "$work/json/s_train_000000.bin" "$work/text/s_train_000000.bin"
cmp "$work/json/s_val_000000.bin" "$work/text/s_val_000000.bin"

out=$("$muonlab" data prepare "$work/stories.txt" --out "$work/whole" --name s --tokenizer byte --val-fraction 0)
[[ $out == *"note: 1 document(s) hold the literal text <|endoftext|>"*"--separator '<|endoftext|>'"* ]] ||
  { echo "FAIL: no note of the literal <|endoftext|>: $out" >&2; exit 1; }
# A Hugging Face tokenizer.json (LLaMA 3's layout): each document after its
# <|begin_of_text|> (id 1002), which data info counts.
tokenizer="$src/tests/data/hf_tokenizer/tokenizer.json"
"$muonlab" data prepare "$work/stories.jsonl" --json-field body --out "$work/hf" --name s --tokenizer "$tokenizer" \
  --val-fraction 0.25 >/dev/null
out=$("$muonlab" data info "$work/hf/s_*.bin" --tokenizer "$tokenizer")
[[ $out == *"2 shard(s), "*" tokens, 4 documents" ]] || { echo "FAIL: tokenizer.json shards: $out" >&2; exit 1; }
[[ $(printf 'Story 1.' | "$muonlab" data encode --tokenizer "$tokenizer" | "$muonlab" data decode --tokenizer "$tokenizer") == "Story 1." ]]
echo "PASS: data prepare reads JSON Lines, Parquet and separated text, notes a literal <|endoftext|>, takes a tokenizer.json"
