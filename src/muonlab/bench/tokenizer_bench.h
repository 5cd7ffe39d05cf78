// `muonlab bench tokenizer`: GPT-2 encode throughput on the bundled English
// corpus (data/corpus from scripts/fetch-data), in MB/s of input text.
//
//  - single thread, cold: a freshly loaded tokenizer (its per-thread merge
//    cache is keyed by the instance, so a new one starts empty);
//  - single thread, warm: a second pass with the same tokenizer and thread;
//  - encode_documents on all cores (its worker threads are started per call,
//    so their caches start cold: the scaling ratio is against the cold row);
//  - the byte tokenizer, one id per byte: the floor of the interface's cost;
//  - peer, optional: OpenAI-compatible gpt-3-encoder (JavaScript, npm) run by
//    node over the same documents, timed inside node, and its ids compared
//    with muonlab's document by document.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace muonlab::bench {

struct TokenizerBenchConfig {
  std::string corpus = "data/corpus";  // a folder of *.txt (recursive) or one file
  double max_mb = 0;                   // use at most this much text (MB = 1e6 bytes); 0: all
  int threads = 0;                     // encode_documents threads; 0: every core
  int reps = 3;                        // timed passes per row (the median is reported)
  bool js = true;                      // run the gpt-3-encoder comparison when possible
  // An extracted gpt-3-encoder package (holding Encoder.js); empty: extract
  // data/npm/gpt-3-encoder-*.tgz (next to the corpus folder, or under ./data).
  std::string js_encoder;
};

struct TokenizerBenchRow {
  std::string name;
  int threads = 1;
  double seconds = 0;  // median pass over all documents
  uint64_t tokens = 0;
  double mb_per_second = 0;
  double tokens_per_second = 0;
  double bytes_per_token = 0;
  double vs_baseline = 0;  // MB/s over single thread, cold
};

struct JsComparison {
  std::string note;  // non-empty: why the comparison did not run (skipped or failed)
  std::string package_version;
  std::string node_version;
  TokenizerBenchRow cold;  // first pass (module cache empty, JIT cold)
  TokenizerBenchRow warm;  // second pass
  double muonlab_vs_cold = 0;  // muonlab single thread cold MB/s / JS first pass MB/s
  double muonlab_vs_warm = 0;  // muonlab single thread warm MB/s / JS second pass MB/s
  bool ids_identical = false;
  size_t documents_differing = 0;
  size_t first_document = 0;  // index of the first document that differs
  std::string first_document_path;
  size_t first_token = 0;  // index in that document of the first differing id
  std::string first_ids;   // "muonlab ..., gpt-3-encoder ..." around the difference
};

struct TokenizerBenchReport {
  std::string tokenizer;
  int vocab_size = 0;
  std::string corpus;
  size_t documents = 0;
  size_t documents_truncated = 0;  // 1 when --max-mb cut the last document short
  uint64_t bytes = 0;
  uint64_t tokens = 0;
  int threads = 0;  // encode_documents threads
  int cores = 0;    // std::thread::hardware_concurrency
  int reps = 0;
  std::vector<TokenizerBenchRow> rows;  // the first is the baseline
  double all_cores_vs_cold = 0;
  double all_cores_vs_warm = 0;
  bool parallel_ids_identical = false;  // encode_documents on all cores vs one thread
  JsComparison js;
};

TokenizerBenchReport run_tokenizer_bench(const TokenizerBenchConfig& config);
std::string format_tokenizer_bench(const TokenizerBenchReport& report);

}  // namespace muonlab::bench
