#include "muonlab/bench/tokenizer_bench.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <fmt/format.h>

#include <stdlib.h>  // mkdtemp

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "muonlab/bench/timing.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/remove_tree.h"
#include "muonlab/core/run_command.h"
#include "muonlab/core/threads.h"
#include "muonlab/core/read_file.h"
#include "muonlab/data/text_documents.h"
#include "muonlab/data/text_stream.h"
#include "muonlab/data/tokenizer.h"

namespace muonlab::bench {

namespace {
namespace fs = std::filesystem;

constexpr double kMB = 1e6;

// ---- the corpus ---------------------------------------------------------------

struct Corpus {
  std::vector<std::string> paths;
  std::vector<std::string> texts;
  uint64_t bytes = 0;
  size_t truncated = 0;
};

Corpus read_corpus(const TokenizerBenchConfig& config) {
  if (!fs::exists(config.corpus)) {
    fail("corpus folder '{}' not found: run scripts/fetch-data (it writes data/corpus), or pass "
         "--corpus DIR",
         config.corpus);
  }
  const uint64_t limit = config.max_mb > 0 ? static_cast<uint64_t>(config.max_mb * kMB)
                                           : std::numeric_limits<uint64_t>::max();
  Corpus corpus;
  const data::TextCorpus documents = data::list_text_documents({config.corpus});
  data::TextDocumentReader reader(documents);
  for (const auto& document : documents.documents) {
    if (corpus.bytes >= limit) break;
    std::string text = reader.read(document);
    if (text.size() > limit - corpus.bytes) {
      // Cut where no UTF-8 character is split.
      text.resize(data::complete_utf8_prefix(std::string_view(text).substr(0, limit - corpus.bytes)));
      corpus.truncated = 1;
    }
    corpus.bytes += text.size();
    corpus.paths.push_back(reader.where(document));
    corpus.texts.push_back(std::move(text));
    if (corpus.truncated) break;
  }
  if (corpus.bytes == 0 && config.max_mb > 0) {
    fail("--max-mb {}: selects no text from '{}' (fewer bytes than its first character, or the documents "
         "are empty)",
         config.max_mb, config.corpus);
  }
  if (corpus.bytes == 0) fail("'{}': the documents are empty; nothing to encode", config.corpus);
  return corpus;
}

uint64_t count_tokens(const std::vector<data::TokenIds>& ids) {
  uint64_t tokens = 0;
  for (const auto& document : ids) tokens += document.size();
  return tokens;
}

TokenizerBenchRow make_row(const std::string& name, int threads, double seconds, uint64_t bytes,
                           uint64_t tokens) {
  TokenizerBenchRow row;
  row.name = name;
  row.threads = threads;
  row.seconds = seconds;
  row.tokens = tokens;
  row.mb_per_second = static_cast<double>(bytes) / kMB / seconds;
  row.tokens_per_second = static_cast<double>(tokens) / seconds;
  row.bytes_per_token = tokens == 0 ? 0 : static_cast<double>(bytes) / static_cast<double>(tokens);
  return row;
}

// ---- the JavaScript peer ----------------------------------------------------------

// Run by node with: package folder, documents file, ids file. The documents
// file holds each document as a little-endian uint32 byte count and its
// UTF-8 bytes; the ids file gets each document's id count and ids the same
// way (int32, -1 where gpt-3-encoder produced no id). Only encode() is timed.
constexpr const char* kNodeScript = R"JS('use strict';
const fs = require('fs');
const path = require('path');
const [pkg, docsPath, idsPath] = process.argv.slice(2);
const encoder = require(path.resolve(pkg, 'Encoder.js'));
const version = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8')).version;
const raw = fs.readFileSync(docsPath);
const docs = [];
for (let at = 0; at < raw.length;) {
  const length = raw.readUInt32LE(at);
  at += 4;
  docs.push(raw.toString('utf8', at, at + length));
  at += length;
}
function pass() {
  const ids = new Array(docs.length);
  const start = process.hrtime.bigint();
  for (let i = 0; i < docs.length; ++i) ids[i] = encoder.encode(docs[i]);
  return [Number(process.hrtime.bigint() - start) / 1e9, ids];
}
const [cold, ids] = pass();
const [warm] = pass();
let count = 0;
for (const d of ids) count += 1 + d.length;
const out = Buffer.alloc(4 * count);
let at = 0;
for (const d of ids) {
  out.writeUInt32LE(d.length, at);
  at += 4;
  for (const id of d) {
    out.writeInt32LE(Number.isInteger(id) ? id : -1, at);
    at += 4;
  }
}
fs.writeFileSync(idsPath, out);
process.stdout.write(JSON.stringify({version, node: process.version, cold, warm}) + '\n');
)JS";

// A folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = (fs::path(tmp && *tmp ? tmp : "/tmp") / "muonlab-bench-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) fail("cannot create a temporary folder '{}'", pattern);
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ignored;
    remove_tree(path_.string(), ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Where scripts/fetch-data keeps the npm tarballs: data/npm next to the
// corpus folder (data/corpus), then ./data/npm.
std::vector<fs::path> npm_dirs(const std::string& corpus) {
  fs::path folder = fs::absolute(corpus).lexically_normal();
  if (folder.filename().empty()) folder = folder.parent_path();
  std::vector<fs::path> dirs = {folder.parent_path() / "npm", fs::absolute("data/npm").lexically_normal()};
  if (dirs[0] == dirs[1]) dirs.pop_back();
  return dirs;
}

fs::path find_js_tarball(const std::vector<fs::path>& dirs) {
  std::vector<fs::path> found;
  for (const auto& dir : dirs) {
    std::error_code error;
    for (const auto& entry : fs::directory_iterator(dir, error)) {
      const std::string name = entry.path().filename().string();
      if (name.rfind("gpt-3-encoder-", 0) == 0 && entry.path().extension() == ".tgz") {
        found.push_back(entry.path());
      }
    }
    if (!found.empty()) break;
  }
  std::sort(found.begin(), found.end());
  return found.empty() ? fs::path() : found.back();
}

void write_documents(const fs::path& path, const std::vector<std::string>& texts) {
  std::ofstream out(path, std::ios::binary);
  for (const auto& text : texts) {
    const uint32_t length = static_cast<uint32_t>(text.size());
    const unsigned char header[4] = {static_cast<unsigned char>(length), static_cast<unsigned char>(length >> 8),
                                     static_cast<unsigned char>(length >> 16),
                                     static_cast<unsigned char>(length >> 24)};
    out.write(reinterpret_cast<const char*>(header), 4);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  if (!out.flush()) fail("cannot write '{}'", path.string());
}

std::vector<data::TokenIds> read_js_ids(const fs::path& path, size_t documents) {
  const std::string raw = read_whole_file(path.string());
  size_t at = 0;
  auto next = [&]() -> uint32_t {
    if (at + 4 > raw.size()) fail("'{}': ends early at byte {}", path.string(), at);
    uint32_t value = 0;
    for (int i = 3; i >= 0; --i) value = (value << 8) | static_cast<unsigned char>(raw[at + i]);
    at += 4;
    return value;
  };
  std::vector<data::TokenIds> ids(documents);
  for (auto& document : ids) {
    document.resize(next());
    for (auto& id : document) id = static_cast<int32_t>(next());
  }
  if (at != raw.size()) fail("'{}': {} bytes after {} documents", path.string(), raw.size() - at, documents);
  return ids;
}

// Non-ASCII and control bytes as \xNN, so odd whitespace shows.
std::string escaped(std::string_view text) {
  std::string out;
  for (char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte >= 0x20 && byte < 0x7F && c != '\\') {
      out += c;
    } else {
      out += fmt::format("\\x{:02x}", byte);
    }
  }
  return out;
}

std::string ids_window(const data::TokenIds& ids, size_t at) {
  const size_t end = std::min(ids.size(), at + 6);
  if (at >= end) return "(end)";
  return fmt::format("{}", fmt::join(ids.begin() + static_cast<std::ptrdiff_t>(at),
                                     ids.begin() + static_cast<std::ptrdiff_t>(end), " "));
}

void compare_ids(const std::vector<data::TokenIds>& ours, const std::vector<data::TokenIds>& js,
                 const Corpus& corpus, const data::Tokenizer& tokenizer, JsComparison& result) {
  result.ids_identical = true;
  for (size_t d = 0; d < ours.size(); ++d) {
    if (ours[d] == js[d]) continue;
    ++result.documents_differing;
    if (!result.ids_identical) continue;
    result.ids_identical = false;
    const auto first = std::mismatch(ours[d].begin(), ours[d].end(), js[d].begin(), js[d].end()).first;
    const size_t token = static_cast<size_t>(first - ours[d].begin());
    result.first_document = d;
    result.first_document_path = corpus.paths[d];
    result.first_token = token;
    const size_t offset = tokenizer.decode(data::TokenIds(ours[d].begin(), first)).size();
    result.first_ids = fmt::format("byte {}, text \"{}\": muonlab {} / gpt-3-encoder {}", offset,
                                   escaped(std::string_view(corpus.texts[d]).substr(offset, 24)),
                                   ids_window(ours[d], token), ids_window(js[d], token));
  }
}

double seconds_of(const std::function<void()>& run) {
  return time_runs(run, torch::kCPU, /*warmup=*/0, /*reps=*/1).seconds.front();
}

JsComparison skipped(std::string note) {
  JsComparison result;
  result.note = std::move(note);
  return result;
}

// Finds or extracts the package; returns the folder holding Encoder.js, or
// sets `note` to why there is none.
fs::path js_package(const TokenizerBenchConfig& config, const TempDir& tmp, std::string& note) {
  if (!config.js_encoder.empty()) {
    if (!fs::is_regular_file(fs::path(config.js_encoder) / "Encoder.js")) {
      fail("--js-encoder '{}': no Encoder.js there; expected an extracted gpt-3-encoder package "
           "(the folder with Encoder.js, encoder.json and vocab.bpe)",
           config.js_encoder);
    }
    return fs::absolute(config.js_encoder);
  }
  const auto dirs = npm_dirs(config.corpus);
  const fs::path tarball = find_js_tarball(dirs);
  if (tarball.empty()) {
    std::string looked;
    for (const auto& dir : dirs) looked += (looked.empty() ? "" : ", ") + dir.string();
    note = fmt::format("peer comparison skipped: no gpt-3-encoder-*.tgz in {} (run scripts/fetch-data, "
                       "or pass --js-encoder DIR)",
                       looked);
    return {};
  }
  const CommandResult tar = run_command({"tar", "-xzf", tarball.string(), "-C", tmp.path().string()});
  if (tar.exit_status != 0 || !fs::is_regular_file(tmp.path() / "package" / "Encoder.js")) {
    note = fmt::format("peer comparison failed: could not extract Encoder.js from '{}'", tarball.string());
    return {};
  }
  return tmp.path() / "package";
}

// Runs the script with node; returns the JSON line it prints last, or sets
// `note` when node is missing or fails.
std::string run_node(const fs::path& script, const fs::path& package, const fs::path& documents,
                     const fs::path& ids, std::string& note) {
  const CommandResult node =
      run_command({"node", script.string(), package.string(), documents.string(), ids.string()});
  if (!node.found) {
    note = "peer comparison skipped: node is not on PATH";
  } else if (node.exit_status != 0) {
    note = fmt::format("peer comparison failed: node exited with status {}: {}", node.exit_status, node.output);
  }
  // Warnings node writes to stderr come first; the script's JSON is its last line.
  std::string_view output = node.output;
  while (!output.empty() && output.back() == '\n') output.remove_suffix(1);
  const size_t line_start = output.rfind('\n');
  return std::string(line_start == std::string_view::npos ? output : output.substr(line_start + 1));
}

JsComparison run_js(const TokenizerBenchConfig& config, const Corpus& corpus,
                    const std::vector<data::TokenIds>& ours, const data::Tokenizer& tokenizer,
                    const TokenizerBenchRow& cold, const TokenizerBenchRow& warm) {
  TempDir tmp;
  std::string note;
  const fs::path package = js_package(config, tmp, note);
  if (!note.empty()) return skipped(note);

  const fs::path script = tmp.path() / "encode.js";
  const fs::path documents = tmp.path() / "documents.bin";
  const fs::path ids_file = tmp.path() / "ids.bin";
  {
    std::ofstream out(script);
    out << kNodeScript;
    if (!out.flush()) fail("cannot write '{}'", script.string());
  }
  write_documents(documents, corpus.texts);
  const std::string out = run_node(script, package, documents, ids_file, note);
  if (!note.empty()) return skipped(note);

  JsComparison result;
  try {
    const auto json = nlohmann::json::parse(out);
    result.package_version = json.at("version").get<std::string>();
    result.node_version = json.at("node").get<std::string>();
    const auto js_ids = read_js_ids(ids_file, corpus.texts.size());
    const uint64_t tokens = count_tokens(js_ids);
    result.cold = make_row("gpt-3-encoder, first pass (cold)", 1, json.at("cold").get<double>(),
                           corpus.bytes, tokens);
    result.warm = make_row("gpt-3-encoder, second pass (warm)", 1, json.at("warm").get<double>(),
                           corpus.bytes, tokens);
    compare_ids(ours, js_ids, corpus, tokenizer, result);
  } catch (const nlohmann::json::exception& error) {
    return skipped(fmt::format("peer comparison failed: node printed '{}', not the expected JSON ({})",
                               out, error.what()));
  }
  result.muonlab_vs_cold = cold.mb_per_second / result.cold.mb_per_second;
  result.muonlab_vs_warm = warm.mb_per_second / result.warm.mb_per_second;
  result.cold.vs_baseline = result.muonlab_vs_cold;
  result.warm.vs_baseline = result.muonlab_vs_warm;
  return result;
}

std::string format_row(const TokenizerBenchRow& row) {
  return fmt::format("{:<40} {:>7} {:>9.2f} {:>11.0f} {:>12.2f} {:>9.2f}x\n", row.name, row.threads,
                     row.mb_per_second, row.tokens_per_second, row.bytes_per_token, row.vs_baseline);
}

}  // namespace

TokenizerBenchReport run_tokenizer_bench(const TokenizerBenchConfig& config) {
  if (config.reps < 1) fail("--reps {}: expected a positive number", config.reps);
  if (config.threads < 0) fail("--threads {}: expected 0 (every core) or more", config.threads);
  if (config.max_mb < 0) fail("--max-mb {}: expected 0 (all the text) or a positive number", config.max_mb);
  const Corpus corpus = read_corpus(config);
  const auto& texts = corpus.texts;

  TokenizerBenchReport report;
  report.corpus = config.corpus;
  report.documents = texts.size();
  report.documents_truncated = corpus.truncated;
  report.bytes = corpus.bytes;
  report.cores = core_count();
  // encode_documents uses no more threads than there are documents.
  report.threads = std::min<int>(config.threads > 0 ? config.threads : report.cores,
                                 static_cast<int>(std::max<size_t>(1, texts.size())));
  report.reps = config.reps;

  // Single thread: each rep loads a fresh tokenizer (untimed), so its merge
  // cache starts empty, then encodes everything twice on this thread. (From
  // the second rep on, the cold pass also frees the previous tokenizer's
  // cache entries on this thread, as any new tokenizer would.)
  Timing cold, warm;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::vector<data::TokenIds> ids;
  for (int rep = 0; rep < config.reps; ++rep) {
    tokenizer = data::load_tokenizer("gpt2");
    const auto pass = [&] { ids = tokenizer->encode_documents(texts, 1); };
    cold.seconds.push_back(seconds_of(pass));
    warm.seconds.push_back(seconds_of(pass));
  }
  report.tokenizer = tokenizer->name();
  report.vocab_size = tokenizer->vocab_size();
  report.tokens = count_tokens(ids);

  // encode_documents runs on the process's worker pool, whose threads keep
  // their caches between calls: one untimed pass warms the helpers' caches,
  // so this row compares with the warm single thread.
  std::vector<data::TokenIds> parallel_ids;
  const Timing parallel = time_runs([&] { parallel_ids = tokenizer->encode_documents(texts, report.threads); },
                                    torch::kCPU, 1, config.reps);
  report.parallel_ids_identical = parallel_ids == ids;

  const auto bytes = data::load_tokenizer("byte");
  std::vector<data::TokenIds> byte_ids;
  const Timing byte_timing =
      time_runs([&] { byte_ids = bytes->encode_documents(texts, 1); }, torch::kCPU, 1, config.reps);

  report.rows.push_back(make_row("gpt2, single thread, cold cache", 1, cold.median(), corpus.bytes, report.tokens));
  report.rows.push_back(make_row("gpt2, single thread, warm cache", 1, warm.median(), corpus.bytes, report.tokens));
  report.rows.push_back(make_row("gpt2, encode_documents, all cores, warm", report.threads, parallel.median(),
                                 corpus.bytes, count_tokens(parallel_ids)));
  report.rows.push_back(make_row("byte tokenizer (floor), single thread", 1, byte_timing.median(), corpus.bytes,
                                 count_tokens(byte_ids)));
  for (auto& row : report.rows) row.vs_baseline = row.mb_per_second / report.rows[0].mb_per_second;
  report.all_cores_vs_cold = report.rows[2].mb_per_second / report.rows[0].mb_per_second;
  report.all_cores_vs_warm = report.rows[2].mb_per_second / report.rows[1].mb_per_second;

  report.js = config.js ? run_js(config, corpus, ids, *tokenizer, report.rows[0], report.rows[1])
                        : skipped("peer comparison skipped: --no-js");
  return report;
}

std::string format_tokenizer_bench(const TokenizerBenchReport& report) {
  std::string out = fmt::format(
      "tokenizer encode throughput (encode_ordinary per document), CPU: {} (vocab {}) on {}\n"
      "{} documents{}, {:.2f} MB, {} tokens; median of {} timed pass{}; ratios against single thread, cold\n",
      report.tokenizer, report.vocab_size, report.corpus, report.documents,
      report.documents_truncated ? " (the last cut short by --max-mb)" : "", report.bytes / kMB, report.tokens,
      report.reps, report.reps == 1 ? "" : "es");
  out += fmt::format("{:<40} {:>7} {:>9} {:>11} {:>12} {:>10}\n", "run", "threads", "MB/s", "tokens/s",
                     "bytes/token", "vs base");
  for (const auto& row : report.rows) out += format_row(row);
  out += fmt::format(
      "all cores ({} threads, {} cores) vs single thread: {:.2f}x against cold, {:.2f}x against warm; "
      "ids identical to single thread: {}\n",
      report.threads, report.cores, report.all_cores_vs_cold, report.all_cores_vs_warm,
      report.parallel_ids_identical ? "yes" : "no");
  out += "(cold: a freshly loaded tokenizer, whose per-thread merge cache starts empty; warm: a second pass "
         "on the same thread; all cores: encode_documents on the worker pool after one untimed pass, caches warm)\n";

  const auto& js = report.js;
  if (!js.note.empty()) return out + js.note + "\n";
  out += fmt::format(
      "\npeer: gpt-3-encoder {} (JavaScript, npm) on node {}, same documents, timed inside node "
      "(startup and file reading excluded), one pass each\n",
      js.package_version, js.node_version);
  out += fmt::format("{:<40} {:>7} {:>9} {:>11} {:>12} {:>10}\n", "run", "threads", "MB/s", "tokens/s",
                     "bytes/token", "muonlab/js");
  out += format_row(js.cold);
  out += format_row(js.warm);
  out += fmt::format("muonlab single thread / gpt-3-encoder: {:.2f}x cold (first passes), {:.2f}x warm\n",
                     js.muonlab_vs_cold, js.muonlab_vs_warm);
  if (js.ids_identical) {
    out += fmt::format("ids identical: yes ({} documents, {} tokens)\n", report.documents, report.tokens);
  } else {
    out += fmt::format(
        "ids identical: no (first difference at document {} '{}', token {}: {}; {} of {} documents differ)\n",
        js.first_document, js.first_document_path, js.first_token, js.first_ids, js.documents_differing,
        report.documents);
  }
  return out;
}

}  // namespace muonlab::bench
