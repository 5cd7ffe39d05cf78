#include "muonlab/bench/optim_bench.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <functional>

#include "muonlab/bench/python_peer.h"
#include "muonlab/bench/timing.h"
#include "muonlab/core/allocator_settings.h"
#include "muonlab/core/cuda_graph.h"
#include "muonlab/core/dtype_name.h"
#include "muonlab/core/errors.h"
#include "muonlab/optimizers/adamw.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/optimizers/muon_step_graph.h"
#include "muonlab/optimizers/state_bytes.h"

namespace muonlab::bench {

std::vector<std::vector<int64_t>> gpt2_block_matrix_shapes(int64_t d_model) {
  return {{3 * d_model, d_model},   // attn.c_attn (fused QKV)
          {d_model, d_model},       // attn.c_proj
          {4 * d_model, d_model},   // mlp.c_fc
          {d_model, 4 * d_model}};  // mlp.c_proj
}

namespace {

// Parameters with fixed random gradients, so every step does the same work.
std::vector<torch::Tensor> make_matrices(const OptimBenchConfig& config) {
  torch::manual_seed(config.seed);
  std::vector<torch::Tensor> params;
  for (int64_t layer = 0; layer < config.layers; ++layer) {
    for (const auto& shape : gpt2_block_matrix_shapes(config.d_model)) {
      auto p = (torch::randn(shape, torch::device(config.device)) * 0.02).set_requires_grad(true);
      p.mutable_grad() = torch::randn(shape, torch::device(config.device));
      params.push_back(p);
    }
  }
  return params;
}

double total_ns_flops(const std::vector<torch::Tensor>& params, int64_t steps) {
  double flops = 0;
  for (const auto& p : params) flops += optim::newton_schulz_flops(p.size(0), p.size(1), steps);
  return flops;
}

// X X^T on the largest NS bucket (all MLP matrices, 768 x 3072): the same
// kind of matmul NS spends most of its time in, and the step's ceiling.
struct PlainMatmul {
  torch::Tensor X;  // [2 layers, d, 4 d]
  double flops() const { return 2.0 * X.size(0) * X.size(1) * X.size(1) * X.size(2); }
  void run() const { torch::bmm(X, X.transpose(1, 2)); }
};

PlainMatmul make_plain_matmul(const OptimBenchConfig& config, torch::Dtype dtype) {
  return {torch::randn({2 * config.layers, config.d_model, 4 * config.d_model},
                       torch::device(config.device).dtype(dtype))};
}

double plain_matmul_gflops(const OptimBenchConfig& config, torch::Dtype dtype) {
  const auto matmul = make_plain_matmul(config, dtype);
  const auto timing = time_runs([&] { matmul.run(); }, config.device, config.warmup, config.reps);
  return matmul.flops() / timing.median() / 1e9;
}

// The step's matrices, normalized and in the NS dtype, for timing the K
// iterations alone as the step runs them (one matrix at a time on the CPU,
// in its own orientation).
struct NsAlone {
  std::vector<torch::Tensor> inputs;
  optim::NewtonSchulzConfig config;
  void run() const {
    for (const auto& X : inputs) optim::newton_schulz_iterations(X, config);
  }
};

NsAlone make_ns_alone(const std::vector<torch::Tensor>& params, const optim::NewtonSchulzConfig& ns_config,
                      torch::Dtype dtype) {
  NsAlone ns;
  ns.config = ns_config;
  for (const auto& p : params) ns.inputs.push_back((p.grad() / p.grad().norm()).to(dtype).contiguous());
  return ns;
}

// `pairs` times in a row: one ceiling run, the NS iterations alone, and one
// step, each timed on its own; every share is taken within its triple.
// `checked`: step() with its finite check of every gradient, as a user
// calls it; else the update alone, as the trainer runs it once it has found
// the global gradient norm finite.
CeilingShare interleaved_ceiling_share(const std::string& name, const optim::MuonOptions& options,
                                       const std::vector<torch::Tensor>& params, const OptimBenchConfig& config,
                                       torch::Dtype dtype, double ns_flops, bool checked = true) {
  optim::Muon optimizer(params, options);
  const auto matmul = make_plain_matmul(config, dtype);
  const auto ns_alone = make_ns_alone(params, options.newton_schulz_config(), dtype);
  const auto time_once = [&](const std::function<void()>& run) { return time_runs(run, config.device, 0, 1).median(); };
  const std::function<void()> runs[] = {[&] { matmul.run(); }, [&] { ns_alone.run(); },
                                        [&] { checked ? (void)optimizer.step() : optimizer.apply_update(); }};
  for (int i = 0; i < config.warmup; ++i) {
    for (const auto& run : runs) time_once(run);
  }
  std::vector<double> step_shares, ns_shares, ceiling_gflops;
  for (int i = 0; i < config.pairs; ++i) {
    const double ceiling_seconds = time_once(runs[0]);
    const double ns_seconds = time_once(runs[1]);
    const double step_seconds = time_once(runs[2]);
    ceiling_gflops.push_back(matmul.flops() / ceiling_seconds / 1e9);
    ns_shares.push_back(ns_flops / ns_seconds / 1e9 / ceiling_gflops.back());
    step_shares.push_back(ns_flops / step_seconds / 1e9 / ceiling_gflops.back());
  }
  CeilingShare share;
  share.step = name;
  share.pairs = config.pairs;
  share.ceiling_gflops = median_of_values(ceiling_gflops);
  share.ns_alone = median_of_values(ns_shares);
  const RoundsSummary rounds = summarize_rounds(step_shares);
  share.median = rounds.median;
  share.low = rounds.low;
  share.high = rounds.high;
  share.min = rounds.min;
  share.max = rounds.max;
  return share;
}

OptimBenchRow time_optimizer(const std::string& name, torch::optim::Optimizer& optimizer,
                             const OptimBenchConfig& config, double ns_flops,
                             double matmul_gflops) {
  const auto timing = time_runs([&] { optimizer.step(); }, config.device, config.warmup,
                                config.reps);
  OptimBenchRow row;
  row.name = name;
  row.seconds_per_step = timing.median();
  row.ns_gflop = ns_flops / 1e9;
  row.gflops = row.ns_gflop / row.seconds_per_step;
  row.of_matmul = ns_flops > 0 ? row.gflops / matmul_gflops : 0;
  return row;
}

// The matrices with the roles and head layouts a GPT-2 model gives them, so
// that Group Muon can cut the attention weights.
std::vector<optim::TaggedParam> tag_gpt2_matrices(const std::vector<torch::Tensor>& params,
                                                  const OptimBenchConfig& config) {
  const int64_t head_dim = config.d_model / config.n_head;
  const int64_t H = config.n_head;
  std::vector<optim::TaggedParam> tagged;
  for (size_t i = 0; i < params.size(); ++i) {
    const int64_t layer = static_cast<int64_t>(i) / 4;
    optim::TaggedParam p;
    p.tensor = params[i];
    p.layer = layer;
    switch (i % 4) {
      case 0:
        p.name = fmt::format("h.{}.attn.c_attn.weight", layer);
        p.role = optim::ParamRole::kAttnQKV;
        p.heads = optim::HeadLayout{3 * H, head_dim, optim::HeadAxis::kRows, {H, H, H}};
        break;
      case 1:
        p.name = fmt::format("h.{}.attn.c_proj.weight", layer);
        p.role = optim::ParamRole::kAttnO;
        p.heads = optim::HeadLayout{H, head_dim, optim::HeadAxis::kCols, {}};
        break;
      default:
        p.name = fmt::format("h.{}.mlp.{}.weight", layer, i % 4 == 2 ? "c_fc" : "c_proj");
        p.role = optim::ParamRole::kMlp;
    }
    tagged.push_back(std::move(p));
  }
  return tagged;
}

// Times one Muon family member built over `tagged`, with the NS work its
// options ask for (group size, steps, form); its state is measured after
// the timed steps and freed on return.
VariantBenchRow time_variant(const std::string& name, const std::vector<optim::TaggedParam>& tagged,
                             const optim::MuonOptions& options, const OptimBenchConfig& config) {
  optim::Muon muon(tagged, options);
  const auto timing = time_runs([&] { muon.step(); }, config.device, config.warmup, config.reps);
  VariantBenchRow row;
  row.name = name;
  row.ns_steps = options.ns_steps();
  row.seconds_per_step = timing.median();
  row.ns_gflop = group_muon_ns_flops(config.layers, config.d_model, config.n_head, options.group_size(),
                                     options.newton_schulz_config()) /
                 1e9;
  row.state_bytes_per_parameter = static_cast<double>(optim::optimizer_state_bytes(muon)) /
                                  static_cast<double>(optim::optimizer_parameter_count(muon));
  return row;
}

std::vector<VariantBenchRow> run_variant_bench(const std::vector<torch::Tensor>& params,
                                               const OptimBenchConfig& config) {
  const auto tagged = tag_gpt2_matrices(params, config);
  // Each member with its default options, as a user gets it: on the CPU,
  // Muon, Muon² and Muon²-F take the fused step (fused_muon_cpu.h).
  const auto base = optim::MuonOptions(0.02).ns_steps(config.ns_steps).ns_dtype(config.ns_dtype).weight_decay(0);
  const int64_t K2 = config.muon2_ns_steps;
  const auto gram = [](optim::MuonOptions options) { return options.ns_method(optim::NsMethod::kGram); };
  const auto muon2 = optim::MuonOptions(base).ns_steps(K2).second_moment(optim::SecondMomentKind::kFull);
  std::vector<VariantBenchRow> rows;
  rows.push_back(time_variant("muon", tagged, base, config));
  rows.push_back(time_variant("muon, gram NS", tagged, gram(base), config));
  rows.push_back(time_variant("muon2 (Muon²)", tagged, muon2, config));
  rows.push_back(time_variant("muon2, gram NS", tagged, gram(muon2), config));
  rows.push_back(time_variant("muon2f (Muon²-F)", tagged,
                              optim::MuonOptions(base).ns_steps(K2).second_moment(optim::SecondMomentKind::kFactored),
                              config));
  rows.push_back(time_variant("normuon (NorMuon)", tagged, optim::MuonOptions(base).neuron_norm(true), config));
  for (const int64_t g : config.group_sizes) {
    rows.push_back(time_variant(fmt::format("group muon g={}", g), tagged, optim::MuonOptions(base).group_size(g),
                                config));
  }
  for (auto& row : rows) {
    row.vs_muon = row.seconds_per_step / rows.front().seconds_per_step;
    row.ns_vs_muon = row.ns_gflop / rows.front().ns_gflop;
  }
  return rows;
}

// One member stepped eagerly, then with cuda_graph: the graphed optimizer's
// first step runs for real, its second captures; the warm-up covers both.
GraphBenchRow time_graphed(const std::string& name, const std::vector<optim::TaggedParam>& tagged,
                           const optim::MuonOptions& options, const OptimBenchConfig& config) {
  GraphBenchRow row;
  row.name = name;
  row.ns_gflop = group_muon_ns_flops(config.layers, config.d_model, config.n_head, options.group_size(),
                                     options.newton_schulz_config()) /
                 1e9;
  {
    optim::Muon eager(tagged, options);
    row.eager_seconds = time_runs([&] { eager.step(); }, config.device, config.warmup, config.reps).median();
  }
  try {
    optim::Muon graphed(tagged, optim::MuonOptions(options).cuda_graph(true));
    row.graphed_seconds =
        time_runs([&] { graphed.step(); }, config.device, config.warmup + 2, config.reps).median();
    if (graphed.step_graph() != nullptr) row.replays = graphed.step_graph()->replays() - (config.warmup + 1);
  } catch (const std::exception& error) {
    row.failure = error.what();
  }
  return row;
}

// Muon's family with and without CUDA graphs. Muon² and Muon²-F without
// bias correction: what their steps are after ~700 steps, once
// 1 - beta2^t rounds to 1 and the graph replays.
std::vector<GraphBenchRow> run_graph_bench(const std::vector<torch::Tensor>& params, const OptimBenchConfig& config) {
  const auto tagged = tag_gpt2_matrices(params, config);
  const auto base = optim::MuonOptions(0.02).ns_steps(config.ns_steps).ns_dtype(config.ns_dtype).weight_decay(0);
  const int64_t K2 = config.muon2_ns_steps;
  const auto second_moment = [&](optim::SecondMomentKind kind) {
    return optim::MuonOptions(base).ns_steps(K2).second_moment(kind).bias_correction(false);
  };
  std::vector<GraphBenchRow> rows;
  rows.push_back(time_graphed("muon", tagged, base, config));
  rows.push_back(time_graphed("muon2 (no bias corr.)", tagged, second_moment(optim::SecondMomentKind::kFull), config));
  rows.push_back(time_graphed("muon2f (no bias corr.)", tagged, second_moment(optim::SecondMomentKind::kFactored),
                              config));
  rows.push_back(time_graphed("group muon g=1", tagged, optim::MuonOptions(base).group_size(1), config));
  return rows;
}

// The Python peers' steps on the same matrices (bench/peers/muon_step.py),
// with this process's threads, allocator and OpenMP wait settings.
PeerStepTimes time_python_peers(const PeerSetup& setup, const OptimBenchConfig& config, int64_t parameters) {
  const std::string line = run_python_peer(
      setup, {"--layers", std::to_string(config.layers), "--d-model", std::to_string(config.d_model), "--device",
              config.device.is_cuda() ? "cuda" : "cpu", "--warmup", std::to_string(config.warmup), "--reps",
              std::to_string(config.reps), "--threads", std::to_string(config.device.is_cpu() ? at::get_num_threads() : 0)});
  const auto json = nlohmann::json::parse(line);
  if (json.at("parameters").get<int64_t>() != parameters) {
    fail("peer {}: its matrices hold {} parameters, muonlab's {}", setup.script, json.at("parameters").get<int64_t>(),
         parameters);
  }
  const auto seconds = [&](const char* key) -> std::optional<double> {
    return json.at(key).is_null() ? std::nullopt : std::optional<double>(json.at(key).get<double>());
  };
  return {seconds("keller_jordan_muon_seconds"), seconds("torch_muon_seconds"), seconds("torch_adamw_seconds"),
          json.at("adamw").get<std::string>(), json.at("torch").get<std::string>()};
}

// Runs the peers unless asked not to and returns how, once they have run; a
// peer that cannot run or fails is reported in place of its times, and the
// rest of the bench stands.
std::optional<PeerSetup> add_python_peers(const OptimBenchConfig& config, OptimBenchReport& report) {
  if (!config.peer) {
    report.peer = "not run (--no-peer)";
    return std::nullopt;
  }
  const PeerLookup lookup = find_python_peer("muon_step.py");
  if (!lookup.setup) {
    report.peer = "not run: " + lookup.missing;
    return std::nullopt;
  }
  PeerSetup setup = *lookup.setup;
  setup.preload = allocator_library();
  report.peer = describe(setup);
  try {
    report.peer_times = time_python_peers(setup, config, report.parameters);
  } catch (const std::exception& error) {
    report.peer += fmt::format("\nfailed: {}", error.what());
    return std::nullopt;
  }
  return setup;
}

// The single comparison above sets steps timed minutes apart against each
// other; these rounds time muonlab's default steps and the peers side by
// side, the peers first in every other round, so a drifting machine favours
// neither.
void add_peer_rounds(const OptimBenchConfig& config, const PeerSetup& setup, torch::optim::Optimizer& muon,
                     torch::optim::Optimizer& adamw, OptimBenchReport& report) {
  for (int round = 0; round < config.peer_rounds; ++round) {
    PeerRound timed;
    const auto time_muonlab = [&] {
      timed.muon_seconds = time_runs([&] { muon.step(); }, config.device, config.warmup, config.reps).median();
      timed.adamw_seconds = time_runs([&] { adamw.step(); }, config.device, config.warmup, config.reps).median();
    };
    if (round % 2 == 1) timed.peer = time_python_peers(setup, config, report.parameters);
    time_muonlab();
    if (round % 2 == 0) timed.peer = time_python_peers(setup, config, report.parameters);
    report.peer_rounds.push_back(timed);
  }
}

std::string format_python_peer_table(const OptimBenchReport& report) {
  std::string out = fmt::format(
      "\nmuonlab vs the Python peers on the same matrices, device and threads (peer ms / muonlab ms: above 1x, "
      "muonlab is faster)\npeer: {}\n",
      report.peer);
  if (!report.peer_times) return out;
  const PeerStepTimes& peer = *report.peer_times;
  out += fmt::format("{:<36} {:>10} {:>34} {:>10} {:>8}\n", "peer step", "peer ms", "muonlab step", "muonlab ms",
                     "ratio");
  const auto row = [&](const std::string& name, const std::optional<double>& seconds, const std::string& ours,
                       double our_seconds) {
    if (!seconds) {
      return fmt::format("{:<36} not in torch {} (PyTorch 2.9 and later)\n", name, peer.torch_version);
    }
    return fmt::format("{:<36} {:>10.2f} {:>34} {:>10.2f} {:>7.2f}x\n", name, *seconds * 1e3, ours, our_seconds * 1e3,
                       *seconds / our_seconds);
  };
  const std::string muon = fmt::format("Muon, default options (NS {})", report.ns_dtype);
  out += row("Keller Jordan's Muon (NS bf16)", peer.keller_jordan_muon, muon, report.default_muon_seconds);
  out += row("torch.optim.Muon (NS bf16)", peer.torch_muon, muon, report.default_muon_seconds);
  out += row(fmt::format("torch.optim.AdamW ({})", peer.adamw_kind), peer.torch_adamw, "AdamW", report.adamw_seconds);
  if (report.peer_rounds.empty()) return out;
  out += fmt::format("the same in {} rounds side by side, the peers first in every other one (peer ms / muonlab ms "
                     "per round): median [95% bootstrap CI], range\n",
                     report.peer_rounds.size());
  const auto paired = [&](const std::string& name, const std::function<std::optional<double>(const PeerRound&)>& theirs,
                          const std::function<double(const PeerRound&)>& ours) {
    std::vector<double> ratios;
    for (const PeerRound& round : report.peer_rounds) {
      if (const std::optional<double> seconds = theirs(round)) ratios.push_back(*seconds / ours(round));
    }
    if (ratios.empty()) return std::string();
    const RoundsSummary r = summarize_rounds(ratios);
    return fmt::format("{:<36} {:.2f}x [{:.2f}, {:.2f}], {:.2f}-{:.2f}\n", name, r.median, r.low, r.high, r.min,
                       r.max);
  };
  const auto our_muon = [](const PeerRound& r) { return r.muon_seconds; };
  out += paired("Keller Jordan's Muon (NS bf16)", [](const PeerRound& r) { return r.peer.keller_jordan_muon; },
                our_muon);
  out += paired("torch.optim.Muon (NS bf16)", [](const PeerRound& r) { return r.peer.torch_muon; }, our_muon);
  out += paired(fmt::format("torch.optim.AdamW ({})", peer.adamw_kind),
                [](const PeerRound& r) { return r.peer.torch_adamw; }, [](const PeerRound& r) { return r.adamw_seconds; });
  return out;
}

}  // namespace

double group_muon_ns_flops(int64_t layers, int64_t d_model, int64_t n_head, int64_t group_size, int64_t ns_steps) {
  optim::NewtonSchulzConfig standard;
  standard.steps = ns_steps;
  return group_muon_ns_flops(layers, d_model, n_head, group_size, standard);
}

double group_muon_ns_flops(int64_t layers, int64_t d_model, int64_t n_head, int64_t group_size,
                           const optim::NewtonSchulzConfig& config) {
  const auto ns = [&](int64_t r, int64_t c) { return optim::newton_schulz_flops(r, c, config); };
  double attention = ns(3 * d_model, d_model) + ns(d_model, d_model);
  if (group_size > 0) {
    const int64_t blocks = n_head / group_size;
    const int64_t block_width = group_size * (d_model / n_head);
    attention = 3 * blocks * ns(block_width, d_model);
    // One block of all heads is the whole output projection.
    attention += blocks == 1 ? ns(d_model, d_model) : blocks * ns(d_model, block_width);
  }
  return layers * (attention + ns(4 * d_model, d_model) + ns(d_model, 4 * d_model));
}

OptimBenchReport run_optim_bench(const OptimBenchConfig& config) {
  if (config.peer_rounds < 1) fail("bench optim: --peer-rounds {}: expected a whole number >= 1", config.peer_rounds);
  if (config.variants) {
    if (config.n_head < 1 || config.d_model % config.n_head != 0) {
      fail("bench optim: --n-head {} must divide --d-model {}", config.n_head, config.d_model);
    }
    for (const int64_t g : config.group_sizes) {
      if (g < 1 || config.n_head % g != 0) {
        fail("bench optim: group size {} must divide --n-head {}", g, config.n_head);
      }
    }
  }
  const auto params = make_matrices(config);
  const auto dtype = optim::resolve_ns_dtype(config.ns_dtype, config.device);
  const double ns_flops = total_ns_flops(params, config.ns_steps);

  OptimBenchReport report;
  report.device = config.device.str();
  report.ns_dtype = short_dtype_name(dtype);
  report.layers = config.layers;
  report.d_model = config.d_model;
  report.matrices = static_cast<int64_t>(params.size());
  for (const auto& p : params) report.parameters += p.numel();
  report.matmul_gflops = plain_matmul_gflops(config, dtype);

  auto muon_options = [&](optim::NsBatching batching, bool fused) {
    return optim::MuonOptions(0.02)
        .ns_steps(config.ns_steps)
        .ns_dtype(config.ns_dtype)
        .weight_decay(0)
        .ns_batching(batching)
        .fused(fused);
  };
  optim::Muon batched(params, muon_options(optim::NsBatching::kAlways, true));
  optim::Muon looped(params, muon_options(optim::NsBatching::kNever, false));
  const optim::AdamWOptions adamw_options(1e-3);
  optim::AdamW adamw(params, adamw_options);
  // LibTorch's own AdamW with the same hyperparameters: the baseline for ours.
  torch::optim::AdamW libtorch_adamw(params, torch::optim::AdamWOptions(adamw_options.lr())
                                                 .betas(adamw_options.betas())
                                                 .eps(adamw_options.eps())
                                                 .weight_decay(adamw_options.weight_decay()));

  // The loop with LibTorch's ops one by one is the baseline; on the CPU the
  // default loop fuses the elementwise passes (fused_muon_cpu.h).
  auto loop_row = time_optimizer("muon, loop (LibTorch ops)", looped, config, ns_flops,
                                 report.matmul_gflops);
  auto batched_row = time_optimizer("muon, batched by shape", batched, config, ns_flops,
                                    report.matmul_gflops);
  std::vector<OptimBenchRow> fused_rows;
  if (config.device.is_cpu()) {
    optim::Muon fused(params, muon_options(optim::NsBatching::kNever, true));
    fused_rows.push_back(time_optimizer("muon, loop (fused, CPU)", fused, config, ns_flops, report.matmul_gflops));
  }
  auto adamw_row = time_optimizer("adamw (reference)", adamw, config, 0, report.matmul_gflops);
  auto libtorch_adamw_row = time_optimizer("adamw, torch::optim", libtorch_adamw, config, 0, report.matmul_gflops);
  loop_row.vs_loop = 1.0;
  batched_row.vs_loop = loop_row.seconds_per_step / batched_row.seconds_per_step;
  adamw_row.vs_loop = loop_row.seconds_per_step / adamw_row.seconds_per_step;
  libtorch_adamw_row.vs_loop = loop_row.seconds_per_step / libtorch_adamw_row.seconds_per_step;
  report.rows = {loop_row, batched_row};
  for (auto& row : fused_rows) {
    row.vs_loop = loop_row.seconds_per_step / row.seconds_per_step;
    report.rows.push_back(row);
  }
  report.rows.push_back(adamw_row);
  report.rows.push_back(libtorch_adamw_row);
  report.adamw_state_bytes_per_parameter = static_cast<double>(optim::optimizer_state_bytes(adamw)) /
                                           static_cast<double>(optim::optimizer_parameter_count(adamw));
  // Muon's defaults: the fused loop on the CPU, batched by shape on CUDA.
  report.default_muon_seconds = config.device.is_cpu() ? fused_rows.front().seconds_per_step
                                                       : batched_row.seconds_per_step;
  report.adamw_seconds = adamw_row.seconds_per_step;
  const std::optional<PeerSetup> peer = add_python_peers(config, report);
  if (peer && config.peer_rounds > 1) {
    optim::Muon default_muon(params, muon_options(config.device.is_cpu() ? optim::NsBatching::kNever
                                                                         : optim::NsBatching::kAlways,
                                                  /*fused=*/true));
    try {
      add_peer_rounds(config, *peer, default_muon, adamw, report);
    } catch (const std::exception& error) {
      report.peer_rounds.clear();
      report.peer += fmt::format("\nfailed in its rounds: {}", error.what());
    }
  }
  if (config.pairs > 0) {
    const auto defaults = optim::MuonOptions(0.02).ns_steps(config.ns_steps).ns_dtype(config.ns_dtype).weight_decay(0);
    report.ceiling_shares.push_back(
        interleaved_ceiling_share("muon, default options", defaults, params, config, dtype, ns_flops));
    report.ceiling_shares.push_back(interleaved_ceiling_share(
        "muon, ns_method = gram", optim::MuonOptions(defaults).ns_method(optim::NsMethod::kGram), params, config,
        dtype, ns_flops));
    report.ceiling_shares.push_back(interleaved_ceiling_share("muon, default options, without the finite check (as "
                                                              "the trainer steps)",
                                                              defaults, params, config, dtype, ns_flops,
                                                              /*checked=*/false));
  }
  if (config.variants) {
    report.n_head = config.n_head;
    report.variants = run_variant_bench(params, config);
    if (config.device.is_cuda() && cuda_graphs_built()) report.graph_rows = run_graph_bench(params, config);
  }
  return report;
}

std::string format_optim_bench(const OptimBenchReport& report) {
  std::string out = fmt::format(
      "optimizer step on GPT-2 matrices of width {}: {} layers, {} matrices, {:.1f}M parameters\n"
      "device {}, NS dtype {}; plain batched matmul (X X^T, MLP shapes): {:.1f} GFLOP/s\n",
      report.d_model, report.layers, report.matrices, report.parameters / 1e6, report.device, report.ns_dtype,
      report.matmul_gflops);
  out += fmt::format("{:<28} {:>12} {:>10} {:>10} {:>10} {:>9}\n", "optimizer", "ms/step",
                     "NS GFLOP", "GFLOP/s", "of matmul", "vs loop");
  for (const auto& row : report.rows) {
    const bool has_ns = row.ns_gflop > 0;
    out += fmt::format("{:<28} {:>12.2f} {:>10} {:>10} {:>10} {:>8.2f}x\n", row.name,
                       row.seconds_per_step * 1e3,
                       has_ns ? fmt::format("{:.1f}", row.ns_gflop) : "-",
                       has_ns ? fmt::format("{:.1f}", row.gflops) : "-",
                       has_ns ? fmt::format("{:.2f}", row.of_matmul) : "-", row.vs_loop);
  }
  if (!report.peer.empty()) out += format_python_peer_table(report);
  for (const auto& share : report.ceiling_shares) {
    out += fmt::format(
        "\nshare of the plain matmul, timed in alternation ({} rounds of: plain matmul, NS iterations alone, step)\n"
        "plain matmul (median of its runs here): {:.1f} GFLOP/s\n"
        "NS iterations alone: {:.3f}\n"
        "{} step: {:.3f} [95% CI {:.3f}, {:.3f}], range {:.3f}-{:.3f}\n",
        share.pairs, share.ceiling_gflops, share.ns_alone, share.step, share.median, share.low, share.high,
        share.min, share.max);
  }
  if (report.ceiling_shares.size() > 1) {
    out += "(every share counts the standard form's NS FLOPs; the Gram form does fewer, so its share is the "
           "standard form's FLOPs per second of its own step)\n";
  }
  if (report.variants.empty()) return out;
  out += fmt::format(
      "\nMuon family on the same matrices, each with its default options, {} heads; ratios to Muon (K = {}) in this run\n",
      report.n_head, report.variants.front().ns_steps);
  out += fmt::format("{:<20} {:>3} {:>12} {:>8} {:>10} {:>8} {:>14}\n", "optimizer", "K", "ms/step", "vs muon",
                     "NS GFLOP", "NS work", "state B/param");
  for (const auto& row : report.variants) {
    out += fmt::format("{:<20} {:>3} {:>12.2f} {:>7.2f}x {:>10.1f} {:>7.2f}x {:>14.2f}\n", row.name, row.ns_steps,
                       row.seconds_per_step * 1e3, row.vs_muon, row.ns_gflop, row.ns_vs_muon,
                       row.state_bytes_per_parameter);
  }
  out += fmt::format("{:<20} {:>3} {:>12} {:>8} {:>10} {:>8} {:>14.2f}\n", "adamw (state only)", "-", "-", "-", "-",
                     "-", report.adamw_state_bytes_per_parameter);
  out += "(NS work: matmul FLOPs of the NS steps; state: optimizer state bytes per weight, fp32 weights)\n";
  if (report.graph_rows.empty()) return out;
  out += "\nCUDA graphs (MuonOptions::cuda_graph: the work before the learning rate replayed), same process\n";
  out += fmt::format("{:<24} {:>10} {:>12} {:>9} {:>8} {:>13} {:>15}\n", "optimizer", "eager ms", "graphed ms",
                     "graphed", "replays", "eager of mm", "graphed of mm");
  const auto of_matmul = [&](const GraphBenchRow& row, double seconds) {
    return row.ns_gflop / seconds / report.matmul_gflops;
  };
  for (const auto& row : report.graph_rows) {
    if (!row.failure.empty()) {
      out += fmt::format("{:<24} {:>10.2f}  graphed step failed: {}\n", row.name, row.eager_seconds * 1e3, row.failure);
      continue;
    }
    out += fmt::format("{:<24} {:>10.2f} {:>12.2f} {:>8.2f}x {:>8} {:>13.2f} {:>15.2f}\n", row.name,
                       row.eager_seconds * 1e3, row.graphed_seconds * 1e3, row.graphed_seconds / row.eager_seconds,
                       row.replays, of_matmul(row, row.eager_seconds), of_matmul(row, row.graphed_seconds));
  }
  out += "(graphed: graphed time / eager time; replays: timed steps that were replays, of the reps; of mm: the "
         "step's NS GFLOP/s over the plain batched matmul's)\n";
  return out;
}

}  // namespace muonlab::bench
