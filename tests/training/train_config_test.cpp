// Train configs: TOML in, every error naming the file, line and key; the
// resolved config prints as TOML that loads back to itself.
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <gtest/gtest.h>

#include <filesystem>

#include "data/data_test_util.h"
#include "muonlab/core/native_bf16.h"
#include "muonlab/models/transformer.h"
#include "muonlab/training/train_config.h"
#include "muonlab/training/train_optimizer.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

const char* kMinimal = R"(# a small run
[data]
train = "shards/t_train_*.bin"
val = "shards/t_val_*.bin"
seq_len = 32

[model]
n_layer = 3
preset = "tiny-llama"

[run]
steps = 50
)";

std::string error_of(const std::string& text, const std::vector<std::string>& overrides = {}) {
  return testing::error_message([&] { parse_train_config(text, "train.toml", overrides); });
}

TEST(TrainConfig, ReadsSettingsAndAppliesThePresetBeforeModelFields) {
  TrainConfig config = parse_train_config(kMinimal, "train.toml");
  EXPECT_EQ(config.data.train, "shards/t_train_*.bin");
  EXPECT_EQ(config.data.seq_len, 32);
  EXPECT_EQ(config.run.steps, 50);
  EXPECT_EQ(config.model_preset, "tiny-llama");
  EXPECT_EQ(config.model.n_layer, 3);  // after the preset, though TOML keys come sorted
  EXPECT_EQ(config.model.d_model, models::model_preset("tiny-llama").d_model);
  EXPECT_EQ(config.optimizer.name, "muon");  // a default
}

TEST(TrainConfig, OverridesWinAndTakeBareStrings) {
  TrainConfig config = parse_train_config(
      kMinimal, "train.toml", {"run.steps=7", "data.train=other/dir", "model.n_layer=1", "optimizer.adamw_betas=[0.8, 0.99]"});
  EXPECT_EQ(config.run.steps, 7);
  EXPECT_EQ(config.data.train, "other/dir");
  EXPECT_EQ(config.model.n_layer, 1);
  EXPECT_DOUBLE_EQ(config.optimizer.adamw_betas[1], 0.99);
}

TEST(TrainConfig, OverridesWrittenAsTomlOrSplitInTwo) {
  // "key = value", as the TOML file writes it: the spaces around both go.
  TrainConfig config = parse_train_config(kMinimal, "train.toml", {"run.steps = 7", "data.train =  other/dir "});
  EXPECT_EQ(config.run.steps, 7);
  EXPECT_EQ(config.data.train, "other/dir");
  // "--set run.steps 100" reaches the config as "run.steps" and "100".
  EXPECT_CONTAINS(error_of(kMinimal, {"run.steps", "100"}),
                  "--set run.steps: expected section.key=value, one argument: --set run.steps=VALUE");
  const std::string no_key = error_of(kMinimal, {"100"});
  EXPECT_CONTAINS(no_key, "--set 100: expected section.key=value");
  EXPECT_EQ(no_key.find("one argument"), std::string::npos) << no_key;
}

TEST(TrainConfig, NestedModelKeysAsDottedKeysOrTables) {
  TrainConfig dotted = parse_train_config(std::string(kMinimal) + "[model.moe]\ntop_k = 3\n", "train.toml",
                                          {"model.preset=tiny-mla-moe"});
  EXPECT_EQ(dotted.model.moe.top_k, 3);
  TrainConfig table = parse_train_config("[data]\ntrain = 'x'\n[model]\npreset = 'tiny-mla-moe'\nmla.kv_latent = 8\n", "t.toml");
  EXPECT_EQ(table.model.mla.kv_latent, 8);
}

TEST(TrainConfig, ResolvedConfigLoadsBackToItself) {
  TrainConfig config = parse_train_config(kMinimal, "train.toml",
                                          {"model.preset=tiny-mla-moe", "schedule.kind=wsd", "run.out_dir=runs/a \"b\""});
  std::string printed = format_train_config(config);
  TrainConfig again = parse_train_config(printed, "resolved.toml");
  EXPECT_EQ(format_train_config(again), printed);
  EXPECT_EQ(again.run.out_dir, "runs/a \"b\"");
  EXPECT_EQ(again.schedule.kind, ScheduleKind::kWsd);
  EXPECT_EQ(models::describe(again.model), models::describe(config.model));
}

TEST(TrainConfigErrors, UnknownKeyNamesLineAndKnownKeys) {
  std::string text = std::string(kMinimal) + "stepz = 3\n";
  EXPECT_CONTAINS(error_of(text), "train.toml:13: unknown key 'run.stepz' (did you mean 'run.steps'?): [run] has");
  EXPECT_CONTAINS(error_of(text), "steps");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.lrr=1"}), "--set optimizer.lrr=1: unknown key 'optimizer.lrr'");
  EXPECT_CONTAINS(error_of(std::string(kMinimal) + "[trainer]\nx = 1\n"), "unknown section 'trainer'");
  EXPECT_CONTAINS(error_of(kMinimal, {"model.n_layers=2"}), "unknown key 'model.n_layers'");
}

TEST(TrainConfigErrors, WrongTypeNamesLineAndType) {
  std::string text = std::string(kMinimal) + "grad_accum = \"4\"\n";
  EXPECT_CONTAINS(error_of(text), "train.toml:13: 'run.grad_accum': expected an integer, got a string");
  EXPECT_CONTAINS(error_of(kMinimal, {"data.shuffle=1"}), "'data.shuffle': expected true or false, got an integer");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.name=sgd"}), "'optimizer.name': 'sgd' is not one of muon, muon2, muon2f, normuon, adamw");
  EXPECT_CONTAINS(error_of(kMinimal, {"schedule.kind=step"}), "'schedule.kind': unknown schedule 'step'");
}

TEST(TrainConfigErrors, MissingDataAndBadValues) {
  EXPECT_CONTAINS(error_of("[run]\nsteps = 10\n"), "train.toml: missing data: set [data] train");
  EXPECT_CONTAINS(error_of(kMinimal, {"run.steps=0"}), "'run.steps' = 0 must be at least 1 (from --set run.steps=0)");
  // A value from the file is not put on a --set given beside it.
  const std::string from_file = error_of(std::string(kMinimal) + "[optimizer]\ngroup_size = -1\n", {"run.steps=30"});
  EXPECT_CONTAINS(from_file, "'optimizer.group_size' = -1");
  EXPECT_EQ(from_file.find("--set"), std::string::npos) << from_file;
  EXPECT_CONTAINS(error_of(kMinimal, {"data.seq_len=4096"}), "'data.seq_len' = 4096 exceeds the model's block_size");
  EXPECT_CONTAINS(error_of(kMinimal, {"schedule.warmup_steps=100"}),
                  "warmup_steps = 100 is outside [0, total steps = 50]: the run is shorter than its warmup; lower "
                  "schedule.warmup_steps or raise run.steps (from --set schedule.warmup_steps=100)");
  EXPECT_CONTAINS(error_of("[data\ntrain = 1\n"), "train.toml:1: not valid TOML");
  EXPECT_CONTAINS(testing::error_message([] { load_train_config("/nonexistent/train.toml"); }),
                  "cannot read '/nonexistent/train.toml'");
}

TEST(TrainConfigErrors, DeviceAndDtype) {
  EXPECT_CONTAINS(error_of(kMinimal, {"run.device=gpu"}), "'run.device' = \"gpu\": expected \"cpu\", \"cuda\" or \"cuda:N\"");
  EXPECT_CONTAINS(error_of(kMinimal, {"run.dtype=fp16"}), "'run.dtype': 'fp16' is not one of auto, fp32, bf16");
  TrainConfig gpu = parse_train_config(kMinimal, "train.toml", {"run.device=cuda:1", "run.dtype=bf16"});
  EXPECT_EQ(gpu.run.dtype, "bf16");
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml", {"run.dtype=bf16"}).run.dtype, "bf16");  // CPU autocast
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml").run.dtype, "auto");
}

// auto is bf16 where the device has bf16 instructions; explicit values are
// kept whatever the device; the start line says what was chosen and why.
TEST(TrainConfig, PrecisionFollowsTheHardwareUnderAuto) {
  const torch::Device cpu(torch::kCPU), cuda(torch::kCUDA);
  const auto cpu_auto = has_native_bf16(cpu) ? torch::kBFloat16 : torch::kFloat32;
  EXPECT_EQ(training_dtype("auto", cpu), cpu_auto);
  EXPECT_EQ(training_dtype("auto", cuda), torch::kBFloat16);
  EXPECT_EQ(training_dtype("fp32", cuda), torch::kFloat32);
  EXPECT_EQ(training_dtype("bf16", cpu), torch::kBFloat16);

  TrainConfig config = parse_train_config(kMinimal, "train.toml");
  const std::string cpu_name = cpu_auto == torch::kBFloat16 ? "bf16" : "fp32";
  EXPECT_CONTAINS(describe_precision(config, cpu), "Newton-Schulz in " + cpu_name);
  EXPECT_CONTAINS(describe_precision(config, cpu), "(auto: " + native_bf16_reason(cpu) + ")");
  config.run.dtype = "bf16";
  config.optimizer.ns_dtype = "fp32";
  EXPECT_EQ(describe_precision(config, cpu),
            "forward in bf16 (autocast), fp32 weights and optimizer state, Newton-Schulz in fp32");
  config.run.dtype = "fp32";
  config.optimizer.name = "adamw";
  EXPECT_EQ(describe_precision(config, cpu), "fp32 throughout");
}

// [schedule.adamw] changes only the keys it sets, prints back as set, and
// its errors name the table.
TEST(TrainConfig, MuonVariantsDefaultTheirNewtonSchulzSteps) {
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml").optimizer.ns_steps, 5);
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml", {"optimizer.name=muon2"}).optimizer.ns_steps, 3);
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml", {"optimizer.name=muon2f"}).optimizer.ns_steps, 3);
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml", {"optimizer.name=muon2", "optimizer.ns_steps=5"}).optimizer.ns_steps,
            5);
  EXPECT_TRUE(is_muon_variant("muon2f"));
  EXPECT_FALSE(is_muon_variant("adamw"));
}

TEST(TrainConfigErrors, QkClipNeedsAFiniteTauAndNoQkNorm) {
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.qk_clip_tau=-1"}),
                  "'optimizer.qk_clip_tau' = -1: expected 0 (off) or a finite logit bound > 0");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.qk_clip_tau=50", "model.qk_norm=true"}),
                  "'optimizer.qk_clip_tau' = 50 with 'model.qk_norm' = true");
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml", {"optimizer.qk_clip_tau=100"}).optimizer.qk_clip_tau, 100);
}

TEST(TrainConfig, NorMuonIsMuonWithItsNeuronNormalization) {
  const TrainConfig config = parse_train_config(
      kMinimal, "train.toml", {"optimizer.name=normuon", "optimizer.neuron_beta2=0.9", "optimizer.neuron_eps=1e-6"});
  EXPECT_EQ(config.optimizer.ns_steps, 5);
  const optim::MuonOptions options = muon_options(config.optimizer);
  EXPECT_TRUE(options.neuron_norm());
  EXPECT_EQ(options.neuron_beta2(), 0.9);
  EXPECT_EQ(options.neuron_eps(), 1e-6);
  EXPECT_EQ(options.second_moment(), optim::SecondMomentKind::kNone);
  EXPECT_FALSE(muon_options(parse_train_config(kMinimal, "train.toml").optimizer).neuron_norm());
  EXPECT_CONTAINS(format_train_config(config), "neuron_beta2 = 0.9");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.name=normuon", "optimizer.neuron_beta2=1.5"}), "neuron_beta2");
}

TEST(TrainConfig, GroupMuonAndAblationSettingsLoadBack) {
  TrainConfig config = parse_train_config(
      kMinimal, "train.toml",
      {"optimizer.name=muon2f", "optimizer.group_size=2", "optimizer.grouping=random", "optimizer.grouped=[\"q\", \"k\"]",
       "optimizer.block_scale=true", "optimizer.grouping_seed=5", "optimizer.orthogonalize=false",
       "optimizer.ns_coefficients=polar_express", "optimizer.scale_rule=match_rms_adamw", "optimizer.beta2=0.99",
       "optimizer.second_moment_eps=1e-10", "optimizer.bias_correction=false", "run.one_step_group_sizes=[1, 2]",
       "optimizer.ns_dtype=fp64", "optimizer.ns_method=gram", "optimizer.gram_restart=3"});
  EXPECT_EQ(muon_options(config.optimizer).ns_method(), optim::NsMethod::kGram);
  EXPECT_EQ(muon_options(config.optimizer).gram_restart(), 3);
  EXPECT_EQ(config.optimizer.grouped, (std::vector<std::string>{"q", "k"}));
  EXPECT_EQ(config.optimizer.grouping, "random");
  const std::string printed = format_train_config(config);
  EXPECT_CONTAINS(printed, "grouped = [\"q\", \"k\"]");
  EXPECT_CONTAINS(printed, "second_moment_eps = 1e-10");
  EXPECT_CONTAINS(printed, "one_step_group_sizes = [1, 2]");
  EXPECT_EQ(muon_options(config.optimizer).ns_dtype(), optim::NsDtype::kFloat64);
  EXPECT_EQ(format_train_config(parse_train_config(printed, "resolved.toml")), printed);
}

// The config check's verdict on optimizer.group_size against the optimizer's
// own, made on the model's weights: both accept or both refuse, and the
// config's refusal names the key and the head count it does not divide.
TEST(TrainConfigErrors, GroupSizeIsRefusedWhereTheOptimizerWouldRefuseTheWeights) {
  const std::vector<std::vector<std::string>> models = {
      {"model.n_head=6", "model.d_model=48"},                        // MHA, fused QKV
      {"model.n_head=6", "model.n_kv_head=3", "model.d_model=48"},   // GQA
      {"model.n_head=12", "model.n_kv_head=4", "model.d_model=48"},  // GQA, K/V cut too
      {"model.preset=tiny-mla-moe", "model.n_layer=1", "model.n_head=6", "model.d_model=48"},
  };
  const std::vector<std::string> projections = {"[\"q\", \"k\", \"v\", \"o\"]", "[\"k\", \"v\"]", "[\"mla_up\"]"};
  int refused = 0, accepted = 0;
  for (const auto& model : models) {
    for (const std::string& grouped : projections) {
      for (int64_t g = 1; g <= 6; ++g) {
        std::vector<std::string> overrides = model;
        overrides.push_back("optimizer.grouped=" + grouped);
        SCOPED_TRACE(fmt::format("{}, grouped {}, g = {}", fmt::join(model, " "), grouped, g));
        TrainConfig config = parse_train_config(kMinimal, "train.toml", overrides);
        if (g > config.model.n_head) continue;  // refused on its own rule above
        config.optimizer.group_size = g;
        std::string optimizer_error;
        try {
          TrainOptimizer(models::Transformer(config.model), config.optimizer);
        } catch (const Error& error) {
          optimizer_error = error.what();
        }
        overrides.push_back(fmt::format("optimizer.group_size={}", g));
        const std::string config_error = error_of(kMinimal, overrides);
        EXPECT_EQ(config_error.empty(), optimizer_error.empty()) << config_error << optimizer_error;
        if (!config_error.empty()) {
          EXPECT_CONTAINS(config_error, fmt::format("'optimizer.group_size' = {} does not divide the model's", g));
        }
        ++(config_error.empty() ? accepted : refused);
      }
    }
  }
  EXPECT_GT(refused, 5);
  EXPECT_GT(accepted, 5);
}

TEST(TrainConfigErrors, MuonVariantSettings) {
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.group_size=8"}), "'optimizer.group_size' = 8 exceeds the model's n_head");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.group_size=-1"}), "'optimizer.group_size' = -1: expected heads per group");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.ns_steps=-2"}), "'optimizer.ns_steps' = -2");
  EXPECT_CONTAINS(error_of(kMinimal, {"run.one_step_group_sizes=[1, 3]"}),
                  "'run.one_step_group_sizes' holds 3: expected group sizes that divide the model's n_head = 4");
  EXPECT_CONTAINS(error_of(kMinimal, {"run.hellaswag_items=-1"}),
                  "'run.hellaswag_items' = -1: expected 0 (all) or a positive count");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.ns_dtype=fp16"}), "'optimizer.ns_dtype': 'fp16' is not one of auto, bf16, fp32, fp64");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.ns_method=fast"}), "'optimizer.ns_method': 'fast' is not one of standard, gram");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.gram_restart=0"}), "'optimizer.gram_restart' = 0: expected steps");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.grouping=sorted"}), "'optimizer.grouping': 'sorted' is not one of contiguous, strided, random");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.grouping=stided"}),
                  "is not one of contiguous, strided, random (did you mean 'strided'?)");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.name=muon2-f"}), "(did you mean 'muon2f'?)");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.scale_rule=match_rms_adam"}), "(did you mean 'match_rms_adamw'?)");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.grouped=[\"q\", \"z\"]"}), "'optimizer.grouped'");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.grouped=[\"q\", \"z\"]"}), "z");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.grouped=\"q\""}), "expected an array of projection names, got a string");
}

// Settings whose 0 means something (off, never, only at the end) refuse
// what is below it, by key, rather than train as if it were 0; the boundary
// itself is taken.
TEST(TrainConfigErrors, CountsAndSettingsBelowTheirMeaningfulZero) {
  const std::vector<std::pair<std::string, std::string>> refused = {
      {"run.eval_every=-1", "'run.eval_every' = -1: expected 0 (only at the end) or more"},
      {"run.checkpoint_every=-5", "'run.checkpoint_every' = -5: expected 0 (only at the end and on a signal)"},
      {"run.diagnostics_every=-1", "'run.diagnostics_every' = -1: expected 0 (never) or more"},
      {"run.one_step_every=-1", "'run.one_step_every' = -1: expected 0 (never) or more"},
      {"run.clip_grad_norm=-0.5", "'run.clip_grad_norm' = -0.5: expected 0 (no clipping) or more"},
      {"run.peak_tflops=-1", "'run.peak_tflops' = -1: expected 0 (the table of known GPUs) or more"},
      {"schedule.momentum_warmup_steps=-3", "'schedule.momentum_warmup_steps' = -3: expected 0 (no ramp) or more"},
      {"run.eval_tokens=0", "'run.eval_tokens' = 0 must be at least 1"},
      {"schedule.momentum_start=1.0", "'schedule.momentum_start' = 1: expected a momentum in [0, 1)"},
      {"schedule.warmup_steps=-1", "warmup_steps = -1: expected 0 (no warmup) or more"},
  };
  for (const auto& [override, expected] : refused) {
    SCOPED_TRACE(override);
    EXPECT_CONTAINS(error_of(kMinimal, {override}), expected + std::string(" "));
    EXPECT_CONTAINS(error_of(kMinimal, {override}), "(from --set " + override + ")");
  }
  const TrainConfig at_the_boundaries = parse_train_config(
      kMinimal, "train.toml",
      {"run.eval_every=0", "run.checkpoint_every=0", "run.diagnostics_every=0", "run.one_step_every=0",
       "run.clip_grad_norm=0", "run.peak_tflops=0", "schedule.momentum_warmup_steps=0", "run.eval_tokens=1",
       "schedule.momentum_start=0.0", "schedule.warmup_steps=0"});
  EXPECT_EQ(at_the_boundaries.run.eval_tokens, 1);
  EXPECT_EQ(at_the_boundaries.momentum_start, 0.0);
  EXPECT_EQ(parse_train_config(kMinimal, "train.toml", {"schedule.momentum_start=-1.0"}).momentum_start, -1.0);
}

// The AdamW part's settings are named by their keys: the hybrid's adamw_lr,
// and optimizer.lr when AdamW is the whole optimizer.
TEST(TrainConfigErrors, AdamWSettingsNamedByTheirKeys) {
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.adamw_lr=-3"}),
                  "train.toml: 'optimizer.adamw_lr' = -3: expected a learning rate >= 0 (from --set optimizer.adamw_lr=-3)");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.name=adamw", "optimizer.lr=-3"}),
                  "train.toml: 'optimizer.lr' = -3: expected a learning rate >= 0");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.adamw_betas=[0.9, 1.0]"}),
                  "'optimizer.adamw_betas' = [0.9, 1]: expected two numbers in [0, 1)");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.adamw_betas=[-0.1, 0.95]"}), "'optimizer.adamw_betas' = [-0.1, 0.95]");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.adamw_eps=0"}), "'optimizer.adamw_eps' = 0: expected a number > 0");
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.adamw_weight_decay=-0.1"}),
                  "'optimizer.adamw_weight_decay' = -0.1: expected a number >= 0");
  // A hybrid's optimizer.lr is Muon's, checked as Muon's.
  EXPECT_CONTAINS(error_of(kMinimal, {"optimizer.lr=-3"}), "Muon lr = -3");
}

// The model is checked with the rest of the file, so that its errors name
// the file and the --set that gave the value.
TEST(TrainConfigErrors, ModelErrorsNameTheFileAndTheOverride) {
  const std::vector<std::string> kMoeTopKTooLarge = {"model.feed_forward=moe", "model.moe.num_routed=4",
                                                     "model.moe.expert_hidden=16", "model.moe.top_k=100"};
  EXPECT_CONTAINS(error_of(kMinimal, {"model.n_head=3"}),
                  "train.toml: [model]: model config field 'n_head' = 3: does not divide d_model");
  EXPECT_CONTAINS(error_of(kMinimal, {"model.n_head=3"}), "(from --set model.n_head=3)");
  EXPECT_CONTAINS(error_of(kMinimal, kMoeTopKTooLarge),
                  "train.toml: [model]: model config field 'moe.top_k' = 100: larger than moe.num_routed");
  EXPECT_CONTAINS(error_of(kMinimal, kMoeTopKTooLarge),
                  "(from --set model.moe.top_k=100)");
}

TEST(TrainConfig, AdamWPartScheduleOverridesOnlyWhatItSets) {
  std::string text = std::string(kMinimal) + "[schedule]\nkind = \"wsd\"\nwarmup_steps = 5\n"
                                             "[schedule.adamw]\nwarmup_steps = 20\n";
  TrainConfig config = parse_train_config(text, "train.toml");
  ScheduleConfig adamw = adamw_part_schedule(config);
  EXPECT_EQ(adamw.warmup_steps, 20);
  EXPECT_EQ(adamw.kind, ScheduleKind::kWsd);  // from [schedule]
  EXPECT_EQ(config.schedule.warmup_steps, 5);
  std::string printed = format_train_config(config);
  EXPECT_CONTAINS(printed, "[schedule.adamw]\nwarmup_steps = 20\n");
  EXPECT_EQ(format_train_config(parse_train_config(printed, "resolved.toml")), printed);
  EXPECT_EQ(format_train_config(parse_train_config(kMinimal, "train.toml")).find("schedule.adamw"), std::string::npos);
  EXPECT_CONTAINS(error_of(kMinimal, {"schedule.adamw.warmup_steps=80"}),
                  "[schedule.adamw]: schedule: warmup_steps = 80 is outside [0, total steps = 50]");
  EXPECT_CONTAINS(error_of(kMinimal, {"schedule.adamw.lr=1"}), "unknown key 'schedule.adamw.lr'");
}

// Every config users are pointed at loads and is consistent (data paths are
// not opened here: FineWeb shards are brought by users).
TEST(TrainConfig, EveryBundledConfigLoads) {
  const std::string configs = testing::test_data("../../configs");
  int loaded = 0;
  for (const auto& entry : std::filesystem::directory_iterator(configs)) {
    if (entry.path().extension() != ".toml") continue;
    SCOPED_TRACE(entry.path().string());
    TrainConfig config = load_train_config(entry.path().string());
    EXPECT_GE(config.run.steps, 1);
    ++loaded;
  }
  EXPECT_GE(loaded, 5);  // cpu-small and the four GPU configs of the papers
}

}  // namespace
}  // namespace muonlab::training
