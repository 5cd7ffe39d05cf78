// `muonlab align`: the Muon² paper's instrument. Per matrix, the singular
// value spread and condition number of Muon's input U and of Muon²'s
// P = U / (sqrt(V_hat) + eps), and the directional alignment of
// Newton-Schulz to each one's exact polar factor after every step k:
//
//   muonlab align RUN_DIR [--checkpoint DIR] [--batches 20] [--source momentum|gradient]
//   muonlab align --random 64x128 | --ill-conditioned 64x128 [--condition 1e4] [--count N] [--seed S]
//
// plus --steps K, --coefficients, --csv FILE and --plot DIR. A run's
// matrices are those the Muon hybrid routes to Muon; their momentum and
// second moment come from --batches gradients of its training loss on its
// training data (from the checkpoint's loader cursor), weights untouched.
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <regex>


#include "muonlab/analysis/alignment_plot.h"
#include "muonlab/analysis/muon_inputs.h"
#include "muonlab/analysis/spectrum_alignment.h"
#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/device_option.h"
#include "muonlab/core/atomic_file.h"
#include "muonlab/core/dtype_name.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/token_loader.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/run_folder.h"
#include "muonlab/training/train_config.h"

namespace muonlab::cli {
namespace {
namespace fs = std::filesystem;

struct AlignArgs {
  std::string run_dir;
  std::string checkpoint;
  int64_t batches = 20;
  std::string source = "momentum";
  std::string random_shape;
  std::string ill_conditioned_shape;
  double condition = 1e4;
  int64_t count = 1;
  uint64_t seed = 0;
  int64_t steps = 5;
  int64_t muon2_steps = 3;
  std::string coefficients = "jordan";
  std::string ns_dtype = "auto";
  std::string second_moment = "full";
  double beta2 = 0.95;
  double eps = 1e-8;
  bool no_bias_correction = false;
  std::string device = "cpu";
  std::string csv;
  std::string plot_dir;
  std::string plot_name = "alignment";
};

// ---- options ----------------------------------------------------------------

std::pair<int64_t, int64_t> parse_matrix_shape(const std::string& option, const std::string& text) {
  static const std::regex kShape(R"((\d+)[xX](\d+))");
  std::smatch match;
  if (!std::regex_match(text, match, kShape)) {
    fail("{} {}: expected a 2-D shape ROWSxCOLS such as 64x128", option, text);
  }
  const int64_t rows = std::stoll(match[1]), cols = std::stoll(match[2]);
  if (rows < 1 || cols < 1) fail("{} {}: both sides must be at least 1", option, text);
  return {rows, cols};
}

optim::NewtonSchulzConfig ns_config(const AlignArgs& args) {
  optim::NewtonSchulzConfig config;
  config.schedule = optim::ns_schedule(args.coefficients);
  config.steps = args.steps;
  config.dtype = optim::parse_ns_dtype(args.ns_dtype);
  config.validate();
  return config;
}

// optim::parse_second_moment_kind also takes "none", which has no Muon² input.
optim::SecondMomentKind muon2_kind_from_option(const std::string& name) {
  if (name == "full") return optim::SecondMomentKind::kFull;
  if (name == "factored") return optim::SecondMomentKind::kFactored;
  fail("--second-moment {}: expected full (Muon²) or factored (Muon²-F)", name);
}

analysis::MuonInputOptions muon_input_options(const AlignArgs& args) {
  analysis::MuonInputOptions options;
  try {
    options.source = analysis::parse_muon_input_source(args.source);
  } catch (const Error& error) {
    fail("--source: {}", error.what());
  }
  options.second_moment.kind = muon2_kind_from_option(args.second_moment);
  options.second_moment.beta2 = args.beta2;
  options.second_moment.eps = args.eps;
  options.second_moment.bias_correction = !args.no_bias_correction;
  options.validate();
  return options;
}

std::string describe_options(const analysis::MuonInputOptions& inputs, const optim::NewtonSchulzConfig& ns,
                             const torch::Device& device) {
  const auto& sm = inputs.second_moment;
  return fmt::format(
      "U: {} (momentum {}{}); P = U / (sqrt(V_hat) + eps): {} second moment (beta2 {}, eps {:g}{}); "
      "NS: {} coefficients, {} on {}, K = {}",
      to_string(inputs.source), inputs.momentum, inputs.nesterov ? ", Nesterov" : "",
      optim::to_string(sm.kind), sm.beta2, sm.eps,
      sm.bias_correction ? ", bias-corrected" : "", ns.schedule.name,
      short_dtype_name(optim::resolve_ns_dtype(ns.dtype, device)), device.str(), ns.steps);
}

// ---- inputs: a training run -------------------------------------------------

// --checkpoint, else the run's newest checkpoint (it carries the loader
// cursor; the run's last one holds its final weights), else its final
// weights with the loader from the start.
training::RunSnapshot run_snapshot(const AlignArgs& args) {
  if (args.checkpoint.empty()) return training::latest_run_snapshot(args.run_dir);
  if (!fs::is_directory(args.checkpoint)) fail("--checkpoint {}: no such folder", args.checkpoint);
  return training::checkpoint_snapshot(args.checkpoint);
}

struct Inputs {
  std::vector<analysis::MuonInputPair> pairs;
  std::string described;
  analysis::MuonInputOptions options;  // as used (a run's own momentum)
};

Inputs run_inputs(const AlignArgs& args, analysis::MuonInputOptions options, const torch::Device& device) {
  if (!fs::is_directory(args.run_dir)) fail("run folder '{}' does not exist", args.run_dir);
  const training::TrainConfig config = training::load_run_config(args.run_dir);
  const training::RunSnapshot snapshot = run_snapshot(args);
  models::Transformer model(config.model);
  training::load_weights(snapshot.weights, model);
  model->to(device);
  data::TokenLoader loader = training::resume_run_loader(config, snapshot.cursor);
  options.momentum = config.optimizer.momentum;  // the run's own Muon momentum
  options.nesterov = config.optimizer.nesterov;
  analysis::ModelGradientOptions gradients;
  gradients.batches = args.batches;
  gradients.bf16_autocast = training::training_dtype(config.run.dtype, device) == torch::kBFloat16;
  Inputs inputs;
  inputs.options = options;
  inputs.pairs = analysis::model_muon_inputs(model, [&] { return loader.next(); }, gradients, options);
  inputs.described = fmt::format("{} ({}, {} layers, d_model {}): {}, {} gradients of {} x {} tokens", args.run_dir,
                                 config.model_preset, config.model.n_layer, config.model.d_model, snapshot.described,
                                 args.batches, config.data.batch_size, config.data.seq_len);
  return inputs;
}

// ---- inputs: test matrices --------------------------------------------------

analysis::TestMatrixOptions test_matrix_options(const AlignArgs& args) {
  analysis::TestMatrixOptions matrices;
  const bool random = !args.random_shape.empty();
  matrices.kind = random ? analysis::TestMatrixKind::kRandom : analysis::TestMatrixKind::kIllConditioned;
  std::tie(matrices.rows, matrices.cols) = random ? parse_matrix_shape("--random", args.random_shape)
                                                  : parse_matrix_shape("--ill-conditioned", args.ill_conditioned_shape);
  matrices.condition = args.condition;
  matrices.count = args.count;
  matrices.seed = args.seed;
  matrices.validate();
  return matrices;
}

Inputs test_inputs(const AlignArgs& args, const analysis::MuonInputOptions& options, const torch::Device& device) {
  const analysis::TestMatrixOptions matrices = test_matrix_options(args);
  Inputs inputs;
  inputs.options = options;
  for (analysis::MuonInputPair& pair : analysis::test_matrix_inputs(matrices, options)) {
    inputs.pairs.push_back({pair.name, pair.muon_input.to(device), pair.muon2_input.to(device)});
  }
  const std::string seeds = matrices.count == 1 ? fmt::format("seed {}", matrices.seed)
                                                : fmt::format("seeds {}-{}", matrices.seed,
                                                              matrices.seed + static_cast<uint64_t>(matrices.count) - 1);
  inputs.described = fmt::format(
      "{} test matri{}: {} ({}), each as the first gradient G: U = (1 + mu) G, P = U / (|G| + eps), about sign(G)",
      matrices.count, matrices.count == 1 ? "x" : "ces", analysis::describe(matrices), seeds);
  return inputs;
}

void check_one_input(const AlignArgs& args) {
  const int given = !args.run_dir.empty() + !args.random_shape.empty() + !args.ill_conditioned_shape.empty();
  if (given != 1) {
    fail("give exactly one input: RUN_DIR, --random ROWSxCOLS or --ill-conditioned ROWSxCOLS ({} given)", given);
  }
  if (args.run_dir.empty() && !args.checkpoint.empty()) fail("--checkpoint needs a RUN_DIR");
}

// ---- outputs ----------------------------------------------------------------

void write_outputs(const AlignArgs& args, const std::vector<analysis::AlignmentRow>& rows, const std::string& title) {
  if (!args.csv.empty()) {
    write_text_file_atomically(args.csv, analysis::alignment_csv(rows));
    std::cout << "wrote " << args.csv << "\n";
  }
  if (!args.plot_dir.empty()) {
    analysis::AlignmentPlotOptions options;
    options.out_dir = args.plot_dir;
    options.name = args.plot_name;
    options.title = title;
    std::string printed;
    const analysis::AlignmentPlotFiles files = analysis::plot_alignment(rows, options, &printed);
    std::cerr << printed;
    for (const std::string& figure : files.figures) std::cout << "wrote " << figure << "\n";
    std::cout << "gnuplot script: " << files.script << "\n";
  }
}

void run_align(const AlignArgs& args) {
  check_one_input(args);
  const optim::NewtonSchulzConfig ns = ns_config(args);
  const analysis::MuonInputOptions options = muon_input_options(args);
  if (args.muon2_steps < 0) fail("--muon2-steps {}: expected a count >= 0", args.muon2_steps);
  const torch::Device device = device_from_option(args.device);
  // Options are all checked above, before a model is built or a gradient taken.
  const Inputs inputs = args.run_dir.empty() ? test_inputs(args, options, device) : run_inputs(args, options, device);

  std::vector<analysis::AlignmentRow> rows;
  for (const analysis::MuonInputPair& pair : inputs.pairs) {
    rows.push_back(analysis::spectrum_alignment(pair.name, pair.muon_input, pair.muon2_input, ns));
  }
  std::cout << "Muon vs Muon² inputs of " << inputs.described << "\n"
            << describe_options(inputs.options, ns, device) << "\n"
            << "alignment: cos(NS_k(X), msign(X)) for X = U (muon) and X = P (muon2)\n\n"
            << analysis::format_alignment_table(rows, {args.muon2_steps, args.steps}) << std::flush;
  write_outputs(args, rows, fmt::format("{}: {} coefficients, {}", args.run_dir.empty() ? "test matrices" : args.run_dir,
                                        ns.schedule.name, to_string(options.source)));
}

}  // namespace

void register_align(CLI::App& app) {
  auto args = std::make_shared<AlignArgs>();
  auto* align = app.add_subcommand(
      "align", "Condition numbers and Newton-Schulz alignment of Muon's and Muon²'s inputs (a run's or test matrices)");
  add_examples(*align, {
                    "muonlab align runs/cpu-small --ns-steps 5 --plot charts",
                    "muonlab align --random 384x192 --count 8 --ns-steps 5"});
  align->add_option("run_dir", args->run_dir, "Run folder written by muonlab train (config.toml, checkpoints)");
  align->add_option("--checkpoint", args->checkpoint,
                    "Checkpoint folder to read (default: the run's newest, else its final model.safetensors)");
  align->add_option("--batches", args->batches, "Gradients (forward/backward passes) of the run's training loss")
      ->capture_default_str();
  align->add_option("--source", args->source, "momentum: Muon's momentum-mixed update; gradient: the last gradient")
      ->capture_default_str();
  align->add_option("--random", args->random_shape, "Test matrices with Gaussian entries, ROWSxCOLS");
  align->add_option("--ill-conditioned", args->ill_conditioned_shape,
                    "Test matrices with log-spaced singular values from 1 to 1/--condition, ROWSxCOLS");
  align->add_option("--condition", args->condition, "Condition number of --ill-conditioned")->capture_default_str();
  align->add_option("--count", args->count, "Test matrices, seeds SEED, SEED+1, ...")->capture_default_str();
  align->add_option("--seed", args->seed, "Seed of the first test matrix")->capture_default_str();
  align->add_option("--ns-steps", args->steps, "Newton-Schulz steps K: alignment after k = 0..K")->capture_default_str();
  align->add_option("--muon2-steps", args->muon2_steps, "The table's step for the Muon vs Muon² columns")
      ->capture_default_str();
  align->add_option("--coefficients", args->coefficients, "jordan, taylor or polar_express")->capture_default_str();
  align->add_option("--ns-dtype", args->ns_dtype, "auto (bf16 where the device has bf16 instructions, else fp32), bf16, fp32, fp64")
      ->capture_default_str();
  align->add_option("--second-moment", args->second_moment, "full (Muon²) or factored (Muon²-F)")
      ->capture_default_str();
  align->add_option("--beta2", args->beta2, "Second-moment EMA coefficient")->capture_default_str();
  align->add_option("--eps", args->eps, "Added to sqrt(V_hat)")->capture_default_str();
  align->add_flag("--no-bias-correction", args->no_bias_correction, "Use V instead of V / (1 - beta2^t)");
  align->add_option("--device", args->device, "cpu, cuda or cuda:N")->capture_default_str();
  align->add_option("--csv", args->csv, "Write every alignment (all k, both methods) and spectrum as CSV");
  align->add_option("--plot", args->plot_dir, "Chart mean alignment vs NS step into this folder (PNG + SVG, gnuplot)");
  align->add_option("--name", args->plot_name, "The chart's file names: NAME.png, NAME.svg, NAME.gp")
      ->capture_default_str();
  align->callback([args] { run_align(*args); });
}

}  // namespace muonlab::cli
