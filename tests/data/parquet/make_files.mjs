// Writes the Parquet files muonlab's Parquet tests read, with the Apache
// Arrow Rust writer (parquet-wasm) as the independent reference, and the
// same documents as JSON Lines (documents.jsonl) to compare against.
//
//   cd tests/data/parquet
//   npm install --no-save parquet-wasm@0.8.0 apache-arrow@21.2.0
//   node make_files.mjs
//   # documents.jsonl.zst: the same lines in two Zstandard frames
//   (head -150 documents.jsonl | zstd -19; tail -n +151 documents.jsonl | zstd -19) > documents.jsonl.zst
//
// Each file holds the columns id (int64), text (utf8, one null) and url
// (utf8), and varies what a reader must handle: codecs, dictionary pages
// (and the writer's fall-back to plain pages when the dictionary fills),
// data pages v1 and v2, several pages and row groups, the delta encodings.
import { mkdirSync, writeFileSync } from "node:fs";
import * as arrow from "apache-arrow";
import * as parquet from "parquet-wasm";

const words = ["the", "muon", "optimizer", "naïve", "café", "東京", "🚀", "α-β", "line\nbreak", "tab\there",
               "quote\"s", "back\\slash", "Ωμέγα", "привет", "\u00e9t\u00e9"];

// Deterministic text of varied length: mostly short, some long enough to
// span several data pages, some repeated (duplicates), one empty.
function documentText(i) {
  if (i === 7) return "";
  if (i % 50 === 49) return documentText(i - 40);  // an exact duplicate
  const length = i % 97 === 3 ? 1500 : 5 + ((i * 37) % 40);
  const parts = [`Document ${i}:`];
  for (let k = 0; k < length; ++k) parts.push(words[(i * 7 + k * 13 + ((k * k) % 11)) % words.length]);
  return parts.join(" ");
}

const rows = 300;
const ids = BigInt64Array.from({ length: rows }, (_, i) => BigInt(i));
const texts = Array.from({ length: rows }, (_, i) => (i === 11 ? null : documentText(i)));
const urls = Array.from({ length: rows }, (_, i) => `https://example.org/${i % 9}`);
const table = new arrow.Table({
  id: arrow.vectorFromArray(ids, new arrow.Int64()),
  text: arrow.vectorFromArray(texts, new arrow.Utf8()),
  url: arrow.vectorFromArray(urls, new arrow.Utf8()),
});
const ipc = arrow.tableToIPC(table, "stream");

function write(name, configure) {
  const properties = configure(new parquet.WriterPropertiesBuilder().setCreatedBy("muonlab tests")).build();
  // writeParquet takes the table it is given: a fresh one for each file.
  writeFileSync(name, parquet.writeParquet(parquet.Table.fromIPCStream(ipc), properties));
}

const { Compression, Encoding, WriterVersion } = parquet;
// pyarrow's and Hugging Face's defaults: snappy, dictionary, data page v1.
write("snappy_dictionary_v1.parquet", (b) => b.setCompression(Compression.SNAPPY).setWriterVersion(WriterVersion.V1));
// The same in data pages v2 (levels stored outside the compressed part).
write("snappy_dictionary_v2.parquet", (b) => b.setCompression(Compression.SNAPPY).setWriterVersion(WriterVersion.V2));
// zstd, plain values (the Rust writer's v2 default for strings is
// DELTA_BYTE_ARRAY: PLAIN is asked for), data pages v2.
write("zstd_plain_v2.parquet", (b) => b.setCompression(Compression.ZSTD).setDictionaryEnabled(false)
  .setColumnEncoding("text", Encoding.PLAIN).setColumnEncoding("url", Encoding.PLAIN)
  .setWriterVersion(WriterVersion.V2).setDataPageSizeLimit(8192));
// gzip, small pages and row groups, and a dictionary so small that the
// writer falls back to plain pages within a column chunk.
write("gzip_pages_row_groups.parquet", (b) => b.setCompression(Compression.GZIP).setDataPageSizeLimit(2048)
  .setDictionaryPageSizeLimit(4096).setMaxRowGroupSize(170).setWriteBatchSize(16).setWriterVersion(WriterVersion.V1));
// The delta encodings of strings, uncompressed.
for (const [name, encoding] of [["delta_length_byte_array", Encoding.DELTA_LENGTH_BYTE_ARRAY],
                                ["delta_byte_array", Encoding.DELTA_BYTE_ARRAY]]) {
  write(`${name}.parquet`, (b) => b.setDictionaryEnabled(false).setColumnEncoding("text", encoding)
    .setColumnEncoding("url", encoding).setWriterVersion(WriterVersion.V2).setDataPageSizeLimit(4096));
}
// A column that cannot hold nulls (REQUIRED: no definition levels), as
// pyarrow writes a field marked not nullable: the first 40 documents but the
// null one, in dictionary-encoded data pages v1 and plain data pages v2.
const requiredTexts = texts.slice(0, 40).filter((text) => text !== null);
const requiredSchema = new arrow.Schema([new arrow.Field("text", new arrow.Utf8(), false)]);
const requiredColumn = arrow.vectorFromArray(requiredTexts, new arrow.Utf8()).data[0];
const requiredTable = new arrow.Table(requiredSchema, new arrow.RecordBatch(requiredSchema, arrow.makeData({
  type: new arrow.Struct(requiredSchema.fields), length: requiredTexts.length, children: [requiredColumn] })));
for (const version of [WriterVersion.V1, WriterVersion.V2]) {
  const properties = new parquet.WriterPropertiesBuilder().setCreatedBy("muonlab tests").setWriterVersion(version)
    .setDictionaryEnabled(version === WriterVersion.V1).setColumnEncoding("text", Encoding.PLAIN)
    .setDataPageSizeLimit(1024).build();
  writeFileSync(`required_v${version + 1}.parquet`,
    parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(requiredTable, "stream")), properties));
}

// The other codecs writers offer: Brotli and LZ4 (raw blocks), read where
// the build has libbrotli and liblz4; and LZ4 in Hadoop's framing,
// deprecated, which muonlab refuses by name.
write("brotli.parquet", (b) => b.setCompression(Compression.BROTLI));
write("lz4_raw.parquet", (b) => b.setCompression(Compression.LZ4_RAW).setDataPageSizeLimit(8192));
write("lz4_hadoop.parquet", (b) => b.setCompression(Compression.LZ4));

// The same documents as JSON Lines, nulls left out: what the files' text
// column must give.
writeFileSync("documents.jsonl",
  texts.map((text, i) => (text === null ? null : JSON.stringify({ id: i, text }))).filter((l) => l !== null)
    .join("\n") + "\n");

// Seeds for the Parquet fuzz target (fuzz/corpus/parquet): small files, so
// that mutations reach the pages, in each layout above; mostly uncompressed,
// so that a flipped byte changes what is decoded rather than the codec's
// checks.
const seedRows = 24;
const seedTable = new arrow.Table({
  text: arrow.vectorFromArray(Array.from({ length: seedRows }, (_, i) => (i === 5 ? null : documentText(i).slice(0, 40))),
    new arrow.Utf8()),
  url: arrow.vectorFromArray(Array.from({ length: seedRows }, (_, i) => `u${i % 3}`), new arrow.Utf8()),
});
const seedIpc = arrow.tableToIPC(seedTable, "stream");
const seeds = "../../../fuzz/corpus/parquet";
mkdirSync(seeds, { recursive: true });
for (const [name, configure] of [
  ["dictionary_v1", (b) => b.setWriterVersion(WriterVersion.V1)],
  ["dictionary_v2", (b) => b.setWriterVersion(WriterVersion.V2)],
  ["plain_pages", (b) => b.setDictionaryEnabled(false).setColumnEncoding("text", Encoding.PLAIN)
    .setColumnEncoding("url", Encoding.PLAIN).setDataPageSizeLimit(128).setWriteBatchSize(4)],
  ["delta_length_byte_array", (b) => b.setDictionaryEnabled(false).setEncoding(Encoding.DELTA_LENGTH_BYTE_ARRAY)
    .setWriterVersion(WriterVersion.V2)],
  ["delta_byte_array", (b) => b.setDictionaryEnabled(false).setEncoding(Encoding.DELTA_BYTE_ARRAY)
    .setWriterVersion(WriterVersion.V2)],
  ["gzip_row_groups", (b) => b.setCompression(Compression.GZIP).setMaxRowGroupSize(10)],
]) {
  const properties = configure(new parquet.WriterPropertiesBuilder().setCreatedBy("muonlab tests")).build();
  writeFileSync(`${seeds}/${name}.parquet`, parquet.writeParquet(parquet.Table.fromIPCStream(seedIpc), properties));
}

// Lists of strings (list<utf8>, the three-level LIST the Arrow writer and
// Hugging Face write): a null list, an empty list, a null element, lists
// long enough to span pages, in data pages v1 (dictionary) and v2 (plain),
// two row groups; string_lists.json holds what the column must give.
const listRows = 120;
const lists = Array.from({ length: listRows }, (_, i) => {
  if (i === 4) return null;
  if (i === 9) return [];
  const length = i % 31 === 0 ? 400 : 1 + (i % 5);
  return Array.from({ length }, (_, k) => (i === 13 && k === 1 ? null : `${words[(i + k * 3) % words.length]} ${i}.${k}`));
});
const listTable = new arrow.Table({
  id: arrow.vectorFromArray(BigInt64Array.from({ length: listRows }, (_, i) => BigInt(i)), new arrow.Int64()),
  words: arrow.vectorFromArray(lists, new arrow.List(new arrow.Field("item", new arrow.Utf8(), true))),
});
const listIpc = arrow.tableToIPC(listTable, "stream");
for (const version of [WriterVersion.V1, WriterVersion.V2]) {
  const properties = new parquet.WriterPropertiesBuilder().setCreatedBy("muonlab tests").setWriterVersion(version)
    .setDictionaryEnabled(version === WriterVersion.V1).setColumnEncoding("words", Encoding.PLAIN)
    .setDataPageSizeLimit(1024).setWriteBatchSize(8).setMaxRowGroupSize(70).build();
  writeFileSync(`string_lists_v${version + 1}.parquet`,
    parquet.writeParquet(parquet.Table.fromIPCStream(listIpc), properties));
}
writeFileSync("string_lists.json", JSON.stringify(lists) + "\n");
// A small one for the fuzz target, uncompressed: short lists, a null list,
// an empty list and a null element.
const seedLists = lists.slice(0, 16).map((list) => (list && list.length > 6 ? list.slice(0, 3) : list));
writeFileSync(`${seeds}/string_lists.parquet`, parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(
  new arrow.Table({ words: arrow.vectorFromArray(seedLists, new arrow.List(new arrow.Field("item", new arrow.Utf8(), true))) }),
  "stream")), new parquet.WriterPropertiesBuilder().setCreatedBy("muonlab tests").setDataPageSizeLimit(64).build()));

// Multiple-choice items as Hugging Face's copy of HellaSwag stores them
// (Rowan/hellaswag: ctx and label strings, endings a list of strings, other
// columns beside), snappy with dictionary pages v1 as pyarrow writes; the
// same items as HellaSwag's own JSON Lines in hellaswag.jsonl.
const items = Array.from({ length: 12 }, (_, i) => ({
  ind: i,
  activity_label: ["Cooking", "Running"][i % 2],
  ctx: i === 3 ? "" : `${documentText(i + 20).slice(0, 60)}`,
  endings: Array.from({ length: 4 }, (_, k) => `${words[(i * 5 + k) % words.length]} ending ${k} of ${i}.`),
  source_id: `src~${i}`,
  split: "val",
  split_type: "indomain",
  label: String(i % 4),
}));
const itemTable = new arrow.Table({
  ind: arrow.vectorFromArray(items.map((item) => item.ind), new arrow.Int32()),
  activity_label: arrow.vectorFromArray(items.map((item) => item.activity_label), new arrow.Utf8()),
  ctx: arrow.vectorFromArray(items.map((item) => item.ctx), new arrow.Utf8()),
  endings: arrow.vectorFromArray(items.map((item) => item.endings),
    new arrow.List(new arrow.Field("item", new arrow.Utf8(), true))),
  source_id: arrow.vectorFromArray(items.map((item) => item.source_id), new arrow.Utf8()),
  split: arrow.vectorFromArray(items.map((item) => item.split), new arrow.Utf8()),
  split_type: arrow.vectorFromArray(items.map((item) => item.split_type), new arrow.Utf8()),
  label: arrow.vectorFromArray(items.map((item) => item.label), new arrow.Utf8()),
});
writeFileSync("hellaswag.parquet", parquet.writeParquet(parquet.Table.fromIPCStream(arrow.tableToIPC(itemTable, "stream")),
  new parquet.WriterPropertiesBuilder().setCreatedBy("muonlab tests").setCompression(Compression.SNAPPY)
    .setWriterVersion(WriterVersion.V1).build()));
writeFileSync("hellaswag.jsonl",
  items.map((item) => JSON.stringify({ ctx: item.ctx, endings: item.endings, label: Number(item.label) })).join("\n") + "\n");
