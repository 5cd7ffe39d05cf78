#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <memory>

#include "muonlab/bench/dist_bench.h"
#include "muonlab/bench/model_bench.h"
#include "muonlab/bench/optim_bench.h"
#include "muonlab/bench/tokenizer_bench.h"
#include "muonlab/bench/train_bench.h"
#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/negated_flag.h"
#include "muonlab/cli/number_checks.h"
#include "muonlab/cli/device_option.h"
#include "muonlab/core/enum_names.h"
#include "muonlab/core/errors.h"
#include "muonlab/training/train_config.h"

namespace muonlab::cli {

namespace {

// Options of every device-timing bench beyond its config's own fields: the
// devices to run on (one table each) and LibTorch's CPU threads. The config
// structs hold the defaults; options bind to their fields directly.
struct BenchRun {
  std::string device = "all";
  int threads = 0;
};

void add_bench_run_options(CLI::App& command, BenchRun& run) {
  command.add_option("--device", run.device, "cpu, cuda, cuda:N, or all available")->capture_default_str();
  command.add_option("--threads", run.threads, "CPU threads (0: LibTorch's default)")
      ->check(kNonNegativeCount)
      ->capture_default_str();
}

// Runs `table(device)` on each device of --device, printing each table.
void run_on_devices(const BenchRun& run, const std::function<std::string(const torch::Device&)>& table) {
  if (run.threads > 0) at::set_num_threads(run.threads);
  for (const auto& device : devices_from_option(run.device)) std::cout << table(device) << std::endl;
}

torch::Dtype parse_model_dtype(const std::string& name) {
  if (name == "fp32") return torch::kFloat32;
  if (name == "bf16") return torch::kBFloat16;
  fail("--dtype {}: expected fp32 or bf16", name);
}

// --dtype fp32|bf16 into `dtype`.
void add_model_dtype_option(CLI::App& command, torch::Dtype& dtype, const std::string& help) {
  command.add_option_function<std::string>("--dtype", [&dtype](const std::string& name) { dtype = parse_model_dtype(name); },
                                           help)
      ->default_str("fp32");
}

void add_timing_options(CLI::App& command, int& warmup, int& timed, const std::string& timed_name,
                        const std::string& what) {
  command.add_option("--warmup", warmup, fmt::format("untimed {} first", what))
      ->check(kNonNegativeCount)
      ->capture_default_str();
  command.add_option(timed_name, timed, fmt::format("timed {} (the median is reported)", what))
      ->check(kPositiveCount)
      ->capture_default_str();
}

void register_bench_optim(CLI::App& bench) {
  auto config = std::make_shared<bench::OptimBenchConfig>();
  auto run = std::make_shared<BenchRun>();
  auto* optim = bench.add_subcommand(
      "optim", "Optimizer step on GPT-2 small's matrices: Muon batched vs per-parameter loop; Muon², Muon²-F, "
      "Group Muon and state memory vs Muon");
  add_examples(*optim, {
                    "muonlab bench optim --device cpu",
                    "muonlab bench optim --layers 2 --d-model 256 --ns-steps 5 --reps 3"});
  add_bench_run_options(*optim, *run);
  optim->add_option("--layers", config->layers, "transformer blocks of matrices")
      ->check(kPositiveCount)
      ->capture_default_str();
  optim->add_option("--d-model", config->d_model, "width (768 is GPT-2 small; smaller for smoke tests)")
      ->check(kPositiveCount)
      ->capture_default_str();
  optim->add_option("--ns-steps", config->ns_steps, "Newton-Schulz steps K")
      ->check(kNonNegativeCount)
      ->capture_default_str();
  optim->add_option_function<std::string>(
           "--ns-dtype", [config](const std::string& name) { config->ns_dtype = optim::parse_ns_dtype(name); },
           "auto (bf16 where the device has bf16 instructions: CUDA, AVX512-BF16, AMX; else fp32), bf16, fp32, fp64")
      ->default_str("auto");
  add_timing_options(*optim, config->warmup, config->reps, "--reps", "steps");
  optim->add_option("--n-head", config->n_head, "attention heads, for Group Muon's blocks")->capture_default_str();
  optim->add_option("--group-sizes", config->group_sizes, "Group Muon group sizes to time (each divides --n-head)")
      ->delimiter(',')
      ->capture_default_str();
  optim->add_option("--pairs", config->pairs,
                    "also time the default Muon step and the plain matmul in alternation this many times, for the "
                    "step's share of the matmul with a confidence interval (0: skip)")
      ->check(kNonNegativeCount)
      ->capture_default_str();
  add_negated_flag(*optim, "--no-variants", config->variants, "skip the Muon family table (Muon², Muon²-F, Group Muon)");
  add_negated_flag(*optim, "--no-peer", config->peer,
                   "skip the Python peers (bench/peers/muon_step.py: Keller Jordan's Muon, torch.optim.Muon, "
                   "torch.optim.AdamW)");
  optim->add_option("--peer-rounds", config->peer_rounds,
                    "above 1: after the tables, this many rounds of muonlab's default Muon and AdamW steps and the "
                    "Python peers side by side, the peers first in every other one; the ratios are paired by round, "
                    "with a 95% interval")
      ->check(kPositiveCount)
      ->capture_default_str();
  optim->callback([config, run] {
    run_on_devices(*run, [&](const torch::Device& device) {
      config->device = device;
      return bench::format_optim_bench(bench::run_optim_bench(*config));
    });
  });
}

void register_bench_model(CLI::App& bench) {
  auto config = std::make_shared<bench::ModelBenchConfig>();
  config->presets = {"gpt2-small", "gpt2-medium", "llama-60m", "llama-130m", "mla-moe-small"};
  auto run = std::make_shared<BenchRun>();
  auto* model = bench.add_subcommand(
      "model", "Training tokens/s per preset; KV cache and decode tokens/s, MHA vs MLA");
  add_examples(*model, {
                    "muonlab bench model --device cpu --presets tiny-gpt2,tiny-llama --batch 4 --seq-len 128"});
  model->add_option("--presets", config->presets, "comma-separated model presets; the first that runs is the baseline")
      ->delimiter(',')
      ->capture_default_str();
  model->add_option("--batch", config->batch, "sequences per step")->check(kPositiveCount)->capture_default_str();
  model->add_option("--seq-len", config->sequence, "training tokens per sequence")
      ->check(kPositiveCount)
      ->capture_default_str();
  model->add_option("--max-gib", config->max_gib, "skip presets whose estimated training memory exceeds this")
      ->check(kPositive)
      ->capture_default_str();
  model->add_option("--decode-base", config->decode_base,
                    "MHA preset compared with its MLA variant (d_c = d/2, d_R = d_h/2)")
      ->capture_default_str();
  model->add_option("--prompt", config->prompt, "prefill tokens per sequence")
      ->check(kPositiveCount)
      ->capture_default_str();
  model->add_option("--new-tokens", config->new_tokens, "decoded tokens per sequence")
      ->check(kPositiveCount)
      ->capture_default_str();
  add_bench_run_options(*model, *run);
  add_model_dtype_option(*model, config->dtype, "fp32, or bf16 (CUDA only; CPU runs fp32)");
  add_timing_options(*model, config->warmup, config->reps, "--reps", "runs");
  model->callback([config, run] {
    run_on_devices(*run, [&](const torch::Device& device) {
      config->device = device;
      return bench::format_training_bench(bench::run_training_bench(*config)) + "\n" +
             bench::format_decode_bench(bench::run_decode_bench(*config));
    });
  });
}

void register_bench_tokenizer(CLI::App& bench) {
  auto config = std::make_shared<bench::TokenizerBenchConfig>();
  auto* tokenizer = bench.add_subcommand(
      "tokenizer",
      "GPT-2 encode MB/s on the bundled corpus: cold/warm cache, all cores, byte floor, JS peer");
  add_examples(*tokenizer, {
                    "muonlab bench tokenizer",
                    "muonlab bench tokenizer --no-js"});
  tokenizer->add_option("--corpus", config->corpus, "folder of .txt documents (scripts/fetch-data)")
      ->capture_default_str();
  tokenizer->add_option("--max-mb", config->max_mb, "use at most this many MB of the text (0: all)")
      ->check(kNonNegative)
      ->capture_default_str();
  tokenizer->add_option("--threads", config->threads, "encode_documents threads (0: every core)")
      ->check(kNonNegativeCount)
      ->capture_default_str();
  tokenizer->add_option("--reps", config->reps, "timed passes per row (the median is reported)")
      ->check(kPositiveCount)
      ->capture_default_str();
  tokenizer->add_option("--js-encoder", config->js_encoder,
                        "extracted gpt-3-encoder package (default: data/npm/gpt-3-encoder-*.tgz)");
  add_negated_flag(*tokenizer, "--no-js", config->js, "skip the gpt-3-encoder (node) comparison");
  tokenizer->callback([config] {
    std::cout << bench::format_tokenizer_bench(bench::run_tokenizer_bench(*config)) << std::flush;
  });
}

void register_bench_train(CLI::App& bench) {
  auto config = std::make_shared<bench::TrainBenchConfig>();
  auto run = std::make_shared<BenchRun>();
  auto* train = bench.add_subcommand(
      "train", "Training steps per preset, AdamW vs Muon hybrid: tokens/s, MFU, optimizer share of the step");
  add_examples(*train, {
                    "muonlab bench train --device cpu --batch 8 --seq-len 128 --steps 5",
                    "muonlab bench train --device cpu --presets gpt2-small --set n_layer=4 --batch 8 --seq-len 128 "
                    "--rounds 5"});
  train->add_option("--presets", config->presets,
                    "comma-separated model presets (default: llama-60m,mla-moe-small on CPU, "
                    "every full-size preset on CUDA)")
      ->delimiter(',');
  train->add_option("--set", config->overrides,
                    "model config override key=value for every preset, repeatable (e.g. --set n_layer=4)");
  train->add_option("--batch", config->batch, "sequences per step")->check(kPositiveCount)->capture_default_str();
  train->add_option("--seq-len", config->seq_len, "tokens per sequence")
      ->check(kPositiveCount)
      ->capture_default_str();
  train->add_option("--max-gib", config->max_gib,
                    "skip presets whose estimated training memory (optimizer state included) exceeds this")
      ->check(kPositive)
      ->capture_default_str();
  add_bench_run_options(*train, *run);
  auto dtypes = std::make_shared<std::vector<std::string>>(std::vector<std::string>{"auto"});
  train->add_option("--dtype", *dtypes,
                    "auto, fp32 or bf16, as the trainer's run.dtype (bf16: autocast over fp32 weights, CPU or CUDA); "
                    "two, comma-separated (fp32,bf16), run both and print the second's speed over the first's")
      ->delimiter(',')
      ->check(CLI::IsMember({"auto", "fp32", "bf16"}))
      ->capture_default_str();
  add_timing_options(*train, config->warmup, config->steps, "--steps", "steps per optimizer");
  train->add_option("--rounds", config->rounds,
                    "rounds per preset of muonlab's AdamW and Muon runs and the peer's, every other round in reverse "
                    "order; above 1, each side's median round is shown and the ratios to the peer get a 95% interval")
      ->check(kPositiveCount)
      ->capture_default_str();
  add_negated_flag(*train, "--no-peer", config->peer,
                   "skip the nanoGPT-style PyTorch peer (bench/peers/nanogpt_train.py; run on GPT-2-style presets "
                   "on the CPU where a Python with torch is found: MUONLAB_PYTHON, else /usr/bin/python3)");
  train->add_option("--peer-allocator", config->peer_allocator,
                    "the peer's malloc: same (LD_PRELOAD the tcmalloc muonlab runs with, so the ratio compares "
                    "training loops, not allocators) or system (glibc's, as PyTorch runs by default)")
      ->check(CLI::IsMember({"same", "system"}))
      ->capture_default_str();
  train->add_option("--background-load", config->background_load,
                    "busy-loop processes kept running on the cores beside every timed run (muonlab's and the "
                    "peer's), to compare on a loaded machine reproducibly; 0: none")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  train->add_flag("--cuda-graph", config->cuda_graph,
                  "replay Muon's work before the learning rate from a CUDA graph, as optimizer.cuda_graph = true "
                  "(CUDA; no effect on the CPU)");
  train->add_option("--peak-tflops", config->peak_tflops,
                    "the device's peak for MFU (0: the table of known GPUs; CPUs print n/a)")
      ->check(kNonNegative)
      ->capture_default_str();
  train->callback([config, run, dtypes] {
    if (dtypes->size() > 2) fail("--dtype {}: give one precision, or two to compare", fmt::join(*dtypes, ","));
    run_on_devices(*run, [&](const torch::Device& device) {
      config->device = device;
      std::vector<bench::TrainBenchReport> reports;
      std::string out;
      for (const auto& dtype : *dtypes) {
        config->dtype = dtype;
        reports.push_back(bench::run_train_bench(*config));
        out += bench::format_train_bench(reports.back()) + "\n";
      }
      if (reports.size() == 2) out += bench::format_dtype_comparison(reports[0], reports[1]);
      return out;
    });
  });
}

void register_bench_dist(CLI::App& bench) {
  auto config = std::make_shared<bench::DistBenchConfig>();
  auto worker_result = std::make_shared<std::string>();
  auto* dist = bench.add_subcommand(
      "dist", "Data-parallel training steps on 1, 2, 4 ranks (c10d Gloo, or NCCL on GPUs): step time, communication, "
              "bytes per rank");
  add_examples(*dist, {
                    "muonlab bench dist --preset tiny-gpt2 --steps 10"});
  dist->add_option("--preset", config->preset, "Model preset")->capture_default_str();
  dist->add_option("--ranks", config->ranks, "Rank counts to run, each a `muonlab launch`")
      ->check(kPositiveCount)->capture_default_str();
  dist->add_option("--optimizers", config->optimizers, "adamw, muon, muon2, muon2f")->capture_default_str();
  dist->add_option("--batch", config->batch, "Sequences per rank")->check(kPositiveCount)->capture_default_str();
  dist->add_option("--seq-len", config->seq_len, "Tokens per sequence (0: the preset's block_size)")
      ->capture_default_str();
  dist->add_option("--warmup", config->warmup, "Untimed steps first")->capture_default_str();
  dist->add_option("--steps", config->steps, "Timed steps (the median is reported)")->check(kPositiveCount)
      ->capture_default_str();
  dist->add_option("--bucket-mb", config->bucket_mb, "All-reduce bucket size")->check(kPositiveCount)
      ->capture_default_str();
  dist->add_option("--threads", config->threads, "Threads per rank")->check(kPositiveCount)
      ->capture_default_str();
  dist->add_option("--device", config->device, "cpu (Gloo), or cuda (NCCL, rank r on cuda:r)")
      ->check(CLI::IsMember({"cpu", "cuda"}))->capture_default_str();
  dist->add_option("--worker", *worker_result, "(internal) run as one rank; rank 0 writes its rows here")
      ->group("");
  dist->callback([config, worker_result] {
    std::vector<std::string> known = training::optimizer_names();
    std::sort(known.begin(), known.end());  // the table's order is Muon's family first; list them A-Z
    for (const auto& name : config->optimizers) {
      if (!std::binary_search(known.begin(), known.end(), name)) {
        fail("--optimizers {}{}: expected {}", name, did_you_mean(name, known), alternatives(known));
      }
    }
    if (!worker_result->empty()) return bench::run_dist_bench_rank(*config, *worker_result);
    device_from_option(config->device);  // no GPU for --device cuda: said here, not by each rank
    const auto rows = bench::run_dist_bench(*config, std::cerr);
    std::cout << bench::format_dist_bench(rows, *config) << std::flush;
  });
}

}  // namespace

void register_bench(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks that print ratios against a baseline");
  add_examples(*bench, {
                    "muonlab bench optim --device cpu",
                    "muonlab bench train --device cpu"});
  bench->require_subcommand(1);
  register_bench_optim(*bench);
  register_bench_model(*bench);
  register_bench_tokenizer(*bench);
  register_bench_train(*bench);
  register_bench_dist(*bench);
}

}  // namespace muonlab::cli
