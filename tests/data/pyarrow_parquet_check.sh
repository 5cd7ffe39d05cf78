#!/usr/bin/env bash
# muonlab's Parquet reader against Apache Arrow's C++ writer and reader
# (pyarrow: what FineWeb's and Hugging Face's files are written with):
#   - the documents of tests/data/parquet/documents.jsonl (and a null row)
#     written by pyarrow in ten layouts (its defaults, data pages v2, every
#     codec it has, no dictionary, the delta encodings, large_string, a
#     column that cannot be null, small pages and row groups) read back by
#     `muonlab data peek` exactly as written;
#   - HellaSwag items in Hugging Face's layout (endings a list of strings),
#     written by pyarrow, scored by `muonlab eval` as their JSON Lines;
#   - where Debian's apache-parquet-testing is installed, every string
#     column of its files read as pyarrow reads it, or refused with a
#     muonlab error only where muonlab refuses by design (Hadoop-framed
#     LZ4, LZO, encryption); the bad_data files refused or read, never a
#     crash.
# Skips (77) where Python has no pyarrow (Debian: python3-pyarrow, in
# Debian 13 and later).
#   pyarrow_parquet_check.sh MUONLAB_BINARY SOURCE_DIR PYTHON
set -euo pipefail
muonlab=$1
src=$2
python=$3
source "$src/tests/check_lib.sh"
if ! "$python" -c 'import pyarrow.parquet' 2>/dev/null; then
  echo "SKIP: $python has no pyarrow"
  exit 77
fi
make_scratch_dir pyarrow

"$python" - "$muonlab" "$src" "$work" <<'PY'
import glob, json, os, subprocess, sys
import pyarrow as pa
import pyarrow.parquet as pq

muonlab, src, work = sys.argv[1:4]

def peek(path, column):
    """The column's documents as muonlab reads them, or its error message."""
    run = subprocess.run([muonlab, "data", "peek", path, "--field", column, "--json", "--max", "0"],
                         capture_output=True)
    if run.returncode < 0 or run.returncode > 1:
        sys.exit(f"FAIL: muonlab data peek {path} --field {column} exited with {run.returncode}: "
                 f"{run.stderr.decode(errors='replace')}")
    if run.returncode == 1:
        message = run.stderr.decode(errors="replace").strip()
        if "muonlab: error:" not in message:
            sys.exit(f"FAIL: {path} column {column}: exit 1 without a muonlab error: {message}")
        return None, message
    return [json.loads(line)["text"] for line in run.stdout.decode().splitlines()], ""

documents = [json.loads(line)["text"] for line in open(f"{src}/tests/data/parquet/documents.jsonl", encoding="utf-8")]
texts = documents[:11] + [None] + documents[11:]  # a null row, as the Rust files have
expected = ["" if t is None else t for t in texts]
urls = [f"https://example.org/{i % 9}" for i in range(len(texts))]

def table(text_type=pa.string(), nullable=True):
    schema = pa.schema([pa.field("text", text_type, nullable=nullable), pa.field("url", pa.string())])
    rows = texts if nullable else [t for t in texts if t is not None]
    return pa.table({"text": pa.array(rows, text_type), "url": pa.array(urls[:len(rows)])}, schema=schema)

layouts = {
    "pyarrow's defaults (snappy, dictionary, data pages v1)": (table(), {}),
    "data pages v2": (table(), {"data_page_version": "2.0"}),
    "zstd": (table(), {"compression": "zstd"}),
    "gzip, small pages and row groups": (table(), {"compression": "gzip", "data_page_size": 2048,
                                                   "row_group_size": 70, "dictionary_pagesize_limit": 4096}),
    "brotli": (table(), {"compression": "brotli"}),
    "lz4 (LZ4_RAW)": (table(), {"compression": "lz4"}),
    "uncompressed, no dictionary": (table(), {"compression": "none", "use_dictionary": False}),
    "delta encodings, v2": (table(), {"use_dictionary": False, "data_page_version": "2.0",
                                      "column_encoding": {"text": "DELTA_BYTE_ARRAY",
                                                          "url": "DELTA_LENGTH_BYTE_ARRAY"}}),
    "large_string": (table(pa.large_string()), {}),
    "not nullable (REQUIRED)": (table(nullable=False), {}),
}
for name, (data, options) in layouts.items():
    path = os.path.join(work, "layout.parquet")
    pq.write_table(data, path, **options)
    got, error = peek(path, "text")
    want = expected if data.schema.field("text").nullable else [t for t in texts if t is not None]
    if got != want:
        sys.exit(f"FAIL: pyarrow layout '{name}': {error or 'other texts than written'}")
print(f"{len(layouts)} pyarrow {pa.__version__} layouts read as written")

# HellaSwag as Hugging Face stores it: endings a list<string> column.
items = [json.loads(line) for line in open(f"{src}/tests/data/parquet/hellaswag.jsonl", encoding="utf-8")]
pq.write_table(pa.table({
    "ind": pa.array(range(len(items)), pa.int32()),
    "ctx": [item["ctx"] for item in items],
    "endings": pa.array([item["endings"] for item in items], pa.list_(pa.string())),
    "label": [str(item["label"]) for item in items],
}), os.path.join(work, "hellaswag.parquet"))

# Debian's apache-parquet-testing: every top-level string column.
testing = "/usr/share/apache/parquet-testing"
files = sorted(glob.glob(f"{testing}/data/*.parquet") + glob.glob(f"{testing}/bad_data/*.parquet"))
read, refused = 0, []
for path in files:
    try:
        file = pq.ParquetFile(path)
        columns = [f.name for f in file.schema_arrow if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
        truth = {c: file.read(columns=[c]).column(c).to_pylist() for c in columns}
    except Exception:  # pyarrow cannot read it either (bad_data): muonlab must refuse or read, not crash
        for column in ["text", "a", "c"]:
            peek(path, column)
        continue
    for column in columns:
        got, error = peek(path, column)
        if got is None:
            # Only what muonlab refuses by design: the deprecated Hadoop LZ4
            # framing, LZO, encryption. Anything else pyarrow reads, so must muonlab.
            if not any(reason in error for reason in ("codec LZ4 is not read", "codec LZO", "encrypted")):
                sys.exit(f"FAIL: {path} column {column}: pyarrow reads it, muonlab refuses: {error}")
            reason = error.splitlines()[-1][len("muonlab: error: "):][:150]
            refused.append(f"{os.path.basename(path)}:{column}: {reason}")
            continue
        want = ["" if v is None else v for v in truth[column]]
        if got != want:
            sys.exit(f"FAIL: {path} column {column}: muonlab reads other values than pyarrow")
        read += 1
if files:
    print(f"apache-parquet-testing: {read} string columns read as pyarrow reads them, {len(refused)} refused:")
    for line in refused:
        print("  " + line)
PY

# The Hugging Face layout scores as its JSON Lines on a freshly trained model.
prepare_byte_shards
train_tiny_gpt2_run
parquet=$("$muonlab" eval "$work/run" --hellaswag "$work/hellaswag.parquet" --json)
lines=$("$muonlab" eval "$work/run" --hellaswag "$src/tests/data/parquet/hellaswag.jsonl" --json)
[[ ${parquet%%,\"tokenizer\"*} == "${lines%%,\"tokenizer\"*}" && $parquet == '{"items":12,'* ]] ||
  { echo "FAIL: pyarrow's HellaSwag layout gave $parquet, its JSON Lines $lines" >&2; exit 1; }
echo "PASS: pyarrow's layouts and its HellaSwag list column read as written"
