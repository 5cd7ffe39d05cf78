// `muonlab train --config FILE.toml [--set section.key=value ...]`: one run,
// with a live progress line on a terminal (a plain log line every
// run.log_every steps otherwise), validation losses, and at the end a sample
// from the trained model.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <memory>
#include <sstream>

#include "muonlab/analysis/loss_plot.h"
#include "muonlab/cli/commands.h"
#include "muonlab/cli/count_text.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/progress_bar.h"
#include "muonlab/core/cpu_load.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/threads.h"
#include "muonlab/data/tokenizer.h"
#include "muonlab/models/generate.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/distributed/process_group.h"
#include "muonlab/training/read_loss_curves.h"
#include "muonlab/training/run_folder.h"
#include "muonlab/training/trainer.h"

namespace muonlab::cli {
namespace {
namespace fs = std::filesystem;

struct TrainArgs {
  std::string config;
  std::vector<std::string> overrides;
  int64_t sample_tokens = 48;
  bool resume = false;
  std::string resume_from;  // a checkpoint folder
  bool move_aside = false;
  bool check = false;  // --check: plan the run, train nothing
};

std::string duration(double seconds) {
  auto total = static_cast<int64_t>(seconds + 0.5);
  return total >= 60 ? fmt::format("{}m{:02d}s", total / 60, total % 60) : fmt::format("{}s", total);
}

std::string step_line(const training::StepReport& report, int64_t first_step) {
  double eta = report.elapsed_seconds / static_cast<double>(report.step - first_step) *
               static_cast<double>(report.total_steps - report.step);
  std::string mfu = report.mfu >= 0 ? fmt::format("  MFU {:.1f}%", 100 * report.mfu) : "";
  std::string lrs;
  for (const auto& [part, lr] : report.lrs) lrs += fmt::format("  lr {} {:.3g}", part, lr);
  return fmt::format("step {}/{}  loss {:.4f}{}  |g| {:.3f}  {:.0f} tok/s{}  {} elapsed, ETA {}", report.step,
                     report.total_steps, report.loss, lrs, report.grad_norm, report.tokens_per_second, mfu,
                     duration(report.elapsed_seconds), duration(eta));
}

// The run's loss chart (muonlab plot RUN_DIR), or why there is none: a
// missing gnuplot must not cost the user the finished run.
std::string plot_run(const std::string& run_dir, const std::string& metrics_path) {
  try {
    analysis::LossPlotOptions options;
    options.out_dir = run_dir;
    options.title = "loss of run " + fs::path(run_dir).filename().string();
    auto result = analysis::plot_losses({{fs::path(run_dir).filename().string(), training::read_loss_curves(metrics_path)}},
                                        options);
    return result.files.figures.front();
  } catch (const Error& error) {
    return fmt::format("none ({})", error.what());
  }
}

// A few tokens from the trained weights, after <|endoftext|>, as text.
std::string sample_text(const training::TrainConfig& config, const std::string& weights_path, int64_t tokens) {
  auto tokenizer = data::load_tokenizer(config.data.tokenizer);
  models::Transformer model(config.model);
  training::load_weights(weights_path, model);
  models::SamplingOptions sampling;
  sampling.max_new_tokens = tokens;
  sampling.temperature = 0.8;
  sampling.top_k = 40;
  sampling.seed = 1;
  auto ids = models::generate(model, {tokenizer->eot_token()}, sampling);
  data::TokenIds sample;
  for (size_t i = 1; i < ids.size(); ++i) {
    if (ids[i] < tokenizer->vocab_size()) sample.push_back(static_cast<int32_t>(ids[i]));
  }
  return tokenizer->decode(sample);
}

// On the CPU, a note when other processes already keep the cores busy: an
// oversubscribed run is several times slower and nothing else says why.
// One process only: a launch's ranks would count each other.
void note_busy_cores(const training::TrainConfig& config, bool distributed) {
  if (distributed || !torch::Device(config.run.device).is_cpu()) return;
  const auto busy = busy_cores(std::chrono::milliseconds(100));
  if (!busy) return;
  const std::string note = oversubscription_warning(*busy, at::get_num_threads(), core_count());
  if (!note.empty()) std::cout << note << std::endl;
}

// Under a launcher, ranks other than 0 train silently.
void run_other_rank(const training::TrainConfig& config, const TrainArgs& args) {
  training::TrainResult result = training::train(config, {}, args.resume, args.resume_from);
  if (result.interrupted) fail("rank {}: interrupted after step {}", result.rank, result.steps);
}

// What is in run.out_dir now, as `train` would find it.
std::string run_folder_state(const std::string& out_dir) {
  if (!fs::exists(out_dir)) return "new";
  if (fs::exists(fs::path(out_dir) / "model.safetensors")) {
    return "holds a finished run: train refuses it without --move-aside or another run.out_dir";
  }
  if (const auto checkpoint = training::newest_checkpoint(out_dir)) {
    return fmt::format("holds a run stopped at {}: train continues it with --resume, refuses it without",
                       fs::path(*checkpoint).filename().string());
  }
  return "exists, holds no run";
}

// "muon: 24,576 parameters in 8 tensors; AdamW 10,144 (...)": who steps what.
std::string optimizer_line(const training::RunPlan& plan, const training::TrainConfig& config) {
  if (plan.muon_tensors == 0) return fmt::format("{}: every parameter", config.optimizer.name);
  return fmt::format("{}: {} parameters in {} tensors; AdamW {} (embeddings, head, norms, biases)",
                     config.optimizer.name, with_thousands(plan.muon_parameters), plan.muon_tensors,
                     with_thousands(plan.parameters - plan.muon_parameters));
}

// "384 of the validation split's 3,072 tokens, every 3 steps and at the end".
std::string evaluation_line(const training::RunPlan& plan, const training::TrainConfig& config) {
  if (plan.val_split_tokens == 0) return "none (no data.val)";
  const std::string when = config.run.eval_every > 0
                               ? fmt::format("every {} steps and at the end", config.run.eval_every)
                               : std::string("at the end");
  return fmt::format("{} of the validation split's {} tokens, {}", with_thousands(plan.val_tokens_per_evaluation),
                     with_thousands(plan.val_split_tokens), when);
}

// --check: the run's plan, from everything train reads and checks before its
// first step; nothing is written.
void check_train(const training::TrainConfig& config, const std::string& config_path) {
  const training::RunPlan plan = training::plan_run(config);
  std::cout << fmt::format("{}: ready to train; nothing written\n", config_path)
            << fmt::format("  model       {} ({} layers, d_model {}): {} parameters\n", config.model_preset,
                           config.model.n_layer, config.model.d_model, with_thousands(plan.parameters))
            << fmt::format("  optimizer   {}\n", optimizer_line(plan, config))
            << fmt::format("  tokens      {} steps x {} = {} ({:.3g} epochs of the training split's {})\n",
                           with_thousands(plan.steps), with_thousands(plan.tokens_per_step),
                           with_thousands(plan.tokens()), plan.epochs(), with_thousands(plan.train_tokens_per_epoch))
            << fmt::format("  evaluation  {}\n", evaluation_line(plan, config));
  if (plan.hellaswag_items > 0) std::cout << fmt::format("  hellaswag   {} items\n", plan.hellaswag_items);
  std::cout << fmt::format("  compute     {:.3g} FLOPs\n", plan.flops)
            << fmt::format("  precision   {}\n", training::describe_precision(config, torch::Device(config.run.device)))
            << fmt::format("  run folder  {}: {}\n", config.run.out_dir, run_folder_state(config.run.out_dir));
}

void run_train(const TrainArgs& args) {
  training::TrainConfig config = training::load_train_config(args.config, args.overrides);
  if (args.check) return check_train(config, args.config);
  const distributed::DistEnv env = distributed::dist_env_from_environment();
  if (env.rank != 0) return run_other_rank(config, args);
  if (args.move_aside) {
    const std::string aside = training::move_run_aside(config.run.out_dir);
    if (!aside.empty()) std::cout << fmt::format("moved the earlier run in {} to {}\n", config.run.out_dir, aside);
  }
  std::cout << fmt::format("training {} ({} layers, d_model {}) with {} for {} steps of {} x {} tokens{}; outputs in {}\n",
                           config.model_preset, config.model.n_layer, config.model.d_model, config.optimizer.name,
                           config.run.steps, config.run.grad_accum * config.data.batch_size * env.world_size,
                           config.data.seq_len,
                           env.distributed() ? fmt::format(" on {} ranks (c10d {}{})", env.world_size,
                                                           torch::Device(config.run.device).is_cuda() ? "NCCL" : "Gloo",
                                                           config.distributed.shard_muon && config.optimizer.name != "adamw"
                                                               ? ", distributed Muon"
                                                               : "")
                                             : "",
                           config.run.out_dir)
            << fmt::format("precision: {}\n", training::describe_precision(config, torch::Device(config.run.device)))
            << std::flush;
  note_busy_cores(config, env.distributed());
  // describe_routing's lines ("moe h.0: load max ..."), one per MoE layer,
  // each indented under the step line.
  const auto indented_routing = [](const std::string& routing) {
    std::string out;
    std::istringstream lines(routing);
    for (std::string routing_line; std::getline(lines, routing_line);) {
      if (!routing_line.empty()) out += "\n  routing " + routing_line;
    }
    return out;
  };
  ProgressBar bar("train");
  training::TrainCallbacks callbacks;
  int64_t first_step = -1;  // the run's first step here (after a resume: the checkpoint's)
  callbacks.on_step = [&](const training::StepReport& report) {
    if (first_step < 0) first_step = report.step - 1;
    const std::string line = step_line(report, first_step);
    // One permanent line per run.log_every steps in the scrollback (and in
    // logs); the live bar between them.
    if (report.step % config.run.log_every == 0 || report.step == report.total_steps) {
      bar.finish();
      std::cout << line << indented_routing(report.routing) << std::endl;
    } else {
      bar.update(report.step, report.total_steps, line);
    }
  };
  ProgressBar eval_bar("evaluate");
  callbacks.on_note = [](const std::string& note) { std::cout << note << std::endl; };
  callbacks.on_eval_progress = [&](int64_t step, int64_t done, int64_t batches) {
    bar.finish();
    eval_bar.update(static_cast<uint64_t>(done), static_cast<uint64_t>(batches),
                    fmt::format("step {}: validation batch {}/{}", step, done, batches));
  };
  callbacks.on_eval = [&](const training::EvalReport& report) {
    bar.finish();
    eval_bar.finish();
    if (report.val_loss) {
      std::cout << fmt::format("step {}: validation loss {:.4f} ({} tokens)", report.step, *report.val_loss,
                               report.tokens)
                << std::endl;
    }
    if (report.hellaswag_acc_norm) {
      std::cout << fmt::format("step {}: hellaswag acc_norm {:.4f}, acc {:.4f} ({} items)", report.step,
                               *report.hellaswag_acc_norm, *report.hellaswag_acc, report.hellaswag_items)
                << std::endl;
    }
  };
  training::TrainResult result = training::train(config, callbacks, args.resume, args.resume_from);
  bar.finish();
  if (result.interrupted) {
    fail("interrupted after step {}: checkpoint in {}; continue with the same command and --resume", result.steps,
         result.checkpoint);
  }
  if (result.resumed_from > 0) std::cout << fmt::format("(resumed from step {})\n", result.resumed_from);
  std::cout << fmt::format("done: {} steps, final train loss {:.4f}", result.steps, result.final_train_loss);
  if (result.final_val_loss >= 0) std::cout << fmt::format(", validation loss {:.4f}", result.final_val_loss);
  if (result.skipped_steps > 0) {
    std::cout << fmt::format("; {} step(s) skipped as non-finite (weights unchanged on them)", result.skipped_steps);
  }
  std::cout << fmt::format("\nweights: {}\nmetrics: {} (and metrics.csv)\n", result.weights_path,
                           result.metrics_path);
  if (args.sample_tokens > 0) {
    std::cout << "sample:\n" << sample_text(config, result.weights_path, args.sample_tokens) << "\n";
  }
  std::cout << "plot: " << plot_run(config.run.out_dir, result.metrics_path) << std::endl;
}

}  // namespace

void register_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* train = app.add_subcommand("train", "Train a model from a TOML config");
  add_examples(*train, {
                    "muonlab train --config configs/cpu-small.toml",
                    "muonlab train --config configs/cpu-small.toml --set optimizer.lr=0.01 --set run.out_dir=runs/lr0.01",
                    "muonlab train --config configs/cpu-small.toml --resume",
                    "muonlab train configs/cpu-small.toml --set data.batch_size=16 --check"});
  auto* config = train->add_option("--config", args->config,
                                    "TOML file ([model], [data], [optimizer], [schedule], [run]); or give it first, "
                                    "without --config");
  // `muonlab train FILE` too, as `muonlab sweep SPEC` takes its spec.
  train->add_option("config_file", args->config, "The TOML file, as --config")->excludes(config);
  train->add_option("--set", args->overrides, "Override a setting: section.key=value (repeatable)");
  auto* resume = train->add_flag("--resume", args->resume, "Continue from the newest complete checkpoint in run.out_dir");
  auto* resume_from = train->add_option("--resume-from", args->resume_from,
                                        "Continue from this checkpoint folder (run.out_dir/checkpoints/step_N)");
  auto* move_aside = train->add_flag("--move-aside", args->move_aside,
                                     "Rename an existing run.out_dir to run.out_dir.old-N and start afresh")
                         ->excludes(resume)
                         ->excludes(resume_from);
  train->add_flag("--check", args->check,
                  "Read and check the config, model, optimizer and data as training would, print the plan "
                  "(parameters, tokens, epochs, evaluation, FLOPs), and exit without writing anything")
      ->excludes(resume)
      ->excludes(resume_from)
      ->excludes(move_aside);
  train->add_option("--sample-tokens", args->sample_tokens, "Tokens to sample at the end (0: none)")
      ->capture_default_str();
  auto reference = std::make_shared<bool>(false);
  train->add_flag("--config-reference", *reference,
                  "Print every config key (accepted values, default, meaning) as Markdown, and exit");
  train->callback([args, reference] {
    if (*reference) {
      std::cout << training::format_config_reference() << std::flush;
      return;
    }
    if (args->config.empty()) fail("no config: give the TOML file, as `muonlab train FILE` or --config FILE");
    run_train(*args);
  });
}

}  // namespace muonlab::cli
