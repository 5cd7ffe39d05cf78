#include "muonlab/bench/model_bench.h"

#include <fmt/format.h>

#include "muonlab/bench/bench_values.h"
#include "muonlab/bench/timing.h"
#include "muonlab/core/dtype_name.h"
#include "muonlab/core/errors.h"
#include "muonlab/models/kv_cache.h"
#include "muonlab/models/model_stats.h"
#include "muonlab/models/transformer.h"

namespace muonlab::bench {

namespace {

int64_t element_size(torch::Dtype dtype) {
  return static_cast<int64_t>(c10::elementSize(dtype));
}

std::string format_bytes(double bytes) {
  if (bytes >= kGiB) return fmt::format("{:.2f} GiB", bytes / kGiB);
  if (bytes >= 1024.0 * 1024.0) return fmt::format("{:.2f} MiB", bytes / (1024.0 * 1024.0));
  if (bytes >= 1024.0) return fmt::format("{:.2f} KiB", bytes / 1024.0);
  return fmt::format("{:.0f} B", bytes);
}

// FFN hidden units one token goes through (MoE: its shared and top-k experts).
int64_t active_ffn_hidden(const models::ModelConfig& c) {
  if (c.feed_forward == models::FeedForwardKind::kDense) return c.dense_hidden();
  return (c.moe.num_shared + c.moe.top_k) * c.moe.expert_hidden;
}

torch::Tensor random_tokens(const models::ModelConfig& c, int64_t batch, int64_t length,
                            const torch::Device& device) {
  return torch::randint(c.vocab_size, {batch, length}, torch::dtype(torch::kInt64).device(device));
}

// The model as every row builds it: seeded, on the device, in the bench dtype.
models::Transformer build_model(const models::ModelConfig& c, const ModelBenchConfig& config,
                                torch::Dtype dtype) {
  torch::manual_seed(config.seed);
  models::Transformer model(c);
  model->to(config.device, dtype);
  return model;
}

// model_preset's message lists the known presets; the prefix names the option.
models::ModelConfig preset_for_option(const char* option, const std::string& name) {
  try {
    return models::model_preset(name);
  } catch (const Error& e) {
    fail("{} {}: {}", option, name, e.what());
  }
}

void check_training_presets(const ModelBenchConfig& config) {
  if (config.presets.empty()) fail("--presets: the list is empty; name at least one preset");
  for (const auto& name : config.presets) {
    const auto c = preset_for_option("--presets", name);
    if (config.sequence > c.block_size) {
      fail("--seq-len {}: longer than {}'s block_size {}", config.sequence, name, c.block_size);
    }
  }
}

void check_decode_base(const ModelBenchConfig& config) {
  const auto base = preset_for_option("--decode-base", config.decode_base);
  if (base.attention != models::AttentionKind::kMha) {
    fail("--decode-base {}: its attention is already {}; give an MHA preset to compare with MLA",
         config.decode_base, models::to_string(base.attention));
  }
  if (config.prompt + config.new_tokens > base.block_size) {
    fail("--prompt {} + --new-tokens {}: {} tokens exceed {}'s block_size {}", config.prompt,
         config.new_tokens, config.prompt + config.new_tokens, config.decode_base,
         base.block_size);
  }
  mla_variant(base).validate();
}

void check_config(const ModelBenchConfig& config) {
  check_positive("--batch", static_cast<double>(config.batch));
  check_positive("--seq-len", static_cast<double>(config.sequence));
  check_positive("--prompt", static_cast<double>(config.prompt));
  check_positive("--new-tokens", static_cast<double>(config.new_tokens));
  check_positive("--reps", static_cast<double>(config.reps));
  if (config.max_gib <= 0) fail("--max-gib {}: expected a positive number of GiB", config.max_gib);
  check_training_presets(config);
  check_decode_base(config);
}

// ---- training ---------------------------------------------------------------

TrainingBenchRow skipped_row(const std::string& preset, int64_t parameters, double gib,
                             double max_gib) {
  TrainingBenchRow row;
  row.preset = preset;
  row.parameters = parameters;
  row.estimated_gib = gib;
  row.skipped = fmt::format("estimated {:.3g} GiB > --max-gib {}", gib, max_gib);
  return row;
}

TrainingBenchRow time_training(const std::string& preset, const ModelBenchConfig& config,
                               torch::Dtype dtype) {
  const auto c = models::model_preset(preset);
  const auto stats = models::model_stats(c);
  auto model = build_model(c, config, dtype);
  model->train();
  const auto tokens = random_tokens(c, config.batch, config.sequence, config.device);
  const auto targets = random_tokens(c, config.batch, config.sequence, config.device);
  const auto timing = time_runs(
      [&] {
        model->zero_grad(/*set_to_none=*/true);  // every step allocates its gradients afresh
        models::training_loss(model->forward(tokens), targets).backward();
      },
      config.device, config.warmup, config.reps);

  TrainingBenchRow row;
  row.preset = preset;
  row.parameters = stats.parameters;
  row.seconds_per_step = timing.median();
  const double tokens_per_step = static_cast<double>(config.batch * config.sequence);
  row.tokens_per_second = tokens_per_step / row.seconds_per_step;
  row.microseconds_per_token = 1e6 / row.tokens_per_second;
  row.gflop_per_token = stats.training_flops_per_token(config.sequence) / 1e9;
  row.gflops = row.gflop_per_token * row.tokens_per_second;
  return row;
}

// ---- decoding ---------------------------------------------------------------

std::string describe_attention(const models::ModelConfig& c) {
  if (c.attention == models::AttentionKind::kMla) {
    return fmt::format("mla (d_c {}, d_c' {}, d_R {})", c.mla.kv_latent, c.mla.q_latent,
                       c.mla.rope_dim);
  }
  if (c.kv_heads() != c.n_head) return fmt::format("gqa ({} kv heads)", c.kv_heads());
  return fmt::format("mha ({} heads of {})", c.n_head, c.head_dim());
}

// Prefill once, then time decoding alone: each timed run rewinds the cache
// to the end of the prompt (whose keys stay in place) and decodes greedily
// from the prefill's next token, so every run does the same work.
DecodeBenchRow time_decoding(const models::ModelConfig& c, const ModelBenchConfig& config,
                             torch::Dtype dtype) {
  torch::NoGradGuard no_grad;
  auto model = build_model(c, config, dtype);
  model->eval();
  const int64_t prompt = config.prompt;
  const auto prompt_tokens = random_tokens(c, config.batch, prompt, config.device);
  models::KvCache cache(c, config.batch, prompt + config.new_tokens,
                        torch::dtype(dtype).device(config.device));

  const auto greedy_next = [](const torch::Tensor& logits) {
    return logits.select(1, -1).argmax(-1, /*keepdim=*/true);  // [B, 1]
  };
  torch::Tensor first_token;
  const auto prefill = time_runs(
      [&] {
        cache.reset();
        first_token = greedy_next(model->forward(prompt_tokens, &cache).logits);
      },
      config.device, config.warmup, config.reps);
  const auto decode = time_runs(
      [&] {
        cache.reset();
        cache.advance(prompt);
        auto token = first_token;
        for (int64_t i = 0; i < config.new_tokens; ++i) {
          token = greedy_next(model->forward(token, &cache).logits);
        }
      },
      config.device, config.warmup, config.reps);

  const auto stats = models::model_stats(c);
  DecodeBenchRow row;
  row.name = c.name;
  row.attention = describe_attention(c);
  row.parameters = stats.parameters;
  row.cache_numbers_per_token_layer = stats.kv_cache_numbers_per_token / c.n_layer;
  row.cache_bytes_per_token = stats.kv_cache_numbers_per_token * element_size(dtype);
  row.cache_allocated_bytes = cache.allocated_bytes();
  row.prefill_tokens_per_second = static_cast<double>(config.batch * prompt) / prefill.median();
  row.decode_tokens_per_second =
      static_cast<double>(config.batch * config.new_tokens) / decode.median();
  row.decode_ms_per_step = decode.median() / static_cast<double>(config.new_tokens) * 1e3;
  return row;
}

std::string format_decode_row(const DecodeBenchRow& row) {
  return fmt::format("{:<32} {:>8} {:>10} {:>12} {:>12} {:>12.0f} {:>12.0f} {:>9.2f}\n",
                     row.attention, format_count(row.parameters), row.cache_numbers_per_token_layer,
                     format_bytes(static_cast<double>(row.cache_bytes_per_token)),
                     format_bytes(static_cast<double>(row.cache_allocated_bytes)),
                     row.prefill_tokens_per_second, row.decode_tokens_per_second,
                     row.decode_ms_per_step);
}

std::string format_ratio_row(const DecodeBenchRow& mla, const DecodeBenchRow& mha) {
  const auto ratio = [](double a, double b) { return fmt::format("{:.2f}x", a / b); };
  return fmt::format(
      "{:<32} {:>8} {:>10} {:>12} {:>12} {:>12} {:>12} {:>9}\n", "MLA / MHA",
      ratio(mla.parameters, mha.parameters),
      ratio(mla.cache_numbers_per_token_layer, mha.cache_numbers_per_token_layer),
      ratio(mla.cache_bytes_per_token, mha.cache_bytes_per_token),
      ratio(mla.cache_allocated_bytes, mha.cache_allocated_bytes),
      ratio(mla.prefill_tokens_per_second, mha.prefill_tokens_per_second),
      ratio(mla.decode_tokens_per_second, mha.decode_tokens_per_second),
      ratio(mla.decode_ms_per_step, mha.decode_ms_per_step));
}

}  // namespace

torch::Dtype resolve_model_dtype(torch::Dtype requested, const torch::Device& device) {
  return device.is_cuda() ? requested : torch::kFloat32;
}

double estimated_training_gib(const models::ModelConfig& c, int64_t batch, int64_t sequence,
                              int64_t element_size) {
  const double parameters = static_cast<double>(models::model_stats(c).parameters);
  const double per_token_layer =
      16.0 * c.d_model + 3.0 * active_ffn_hidden(c) + 2.0 * c.n_head * sequence;
  const double per_token = c.n_layer * per_token_layer + 3.0 * c.vocab_size;
  const double tokens = static_cast<double>(batch * sequence);
  return (4.0 * parameters + tokens * per_token) * element_size / kGiB;
}

TrainingBenchReport run_training_bench(const ModelBenchConfig& config) {
  check_config(config);
  const auto dtype = resolve_model_dtype(config.dtype, config.device);
  TrainingBenchReport report;
  report.device = config.device.str();
  report.dtype = short_dtype_name(dtype);
  report.batch = config.batch;
  report.sequence = config.sequence;
  report.max_gib = config.max_gib;

  double baseline_tokens_per_second = 0;
  for (const auto& preset : config.presets) {
    const auto c = models::model_preset(preset);
    const double gib = estimated_training_gib(c, config.batch, config.sequence, element_size(dtype));
    if (gib > config.max_gib) {
      report.rows.push_back(skipped_row(preset, models::model_stats(c).parameters, gib,
                                        config.max_gib));
      continue;
    }
    auto row = time_training(preset, config, dtype);
    row.estimated_gib = gib;
    if (report.baseline.empty()) {
      report.baseline = preset;
      baseline_tokens_per_second = row.tokens_per_second;
    }
    row.vs_baseline = row.tokens_per_second / baseline_tokens_per_second;
    report.rows.push_back(row);
  }
  return report;
}

std::string format_training_bench(const TrainingBenchReport& report) {
  std::string out = fmt::format(
      "training throughput (forward + loss + backward), device {}, {}, batch {} x {} tokens; "
      "ratios against {}\n",
      report.device, report.dtype, report.batch, report.sequence,
      report.baseline.empty() ? "nothing (no preset ran)" : report.baseline);
  out += fmt::format("{:<16} {:>8} {:>8} {:>10} {:>10} {:>9} {:>11} {:>9} {:>8}\n", "preset",
                     "params", "est GiB", "ms/step", "tokens/s", "us/token", "GFLOP/token",
                     "GFLOP/s", "vs base");
  for (const auto& row : report.rows) {
    if (!row.skipped.empty()) {
      out += fmt::format("{:<16} {:>8} {:>8.1f}   skipped: {}\n", row.preset,
                         format_count(row.parameters), row.estimated_gib, row.skipped);
      continue;
    }
    out += fmt::format("{:<16} {:>8} {:>8.1f} {:>10.1f} {:>10.0f} {:>9.1f} {:>11.3f} {:>9.1f} {:>7.2f}x\n",
                       row.preset, format_count(row.parameters), row.estimated_gib,
                       row.seconds_per_step * 1e3, row.tokens_per_second,
                       row.microseconds_per_token, row.gflop_per_token, row.gflops,
                       row.vs_baseline);
  }
  return out;
}

models::ModelConfig mla_variant(const models::ModelConfig& base) {
  auto c = base;
  c.name = base.name + "+mla";
  c.attention = models::AttentionKind::kMla;
  c.n_kv_head = 0;  // MLA has no separate K/V heads
  c.mla.kv_latent = base.d_model / 2;
  c.mla.q_latent = base.d_model / 2;
  c.mla.rope_dim = base.head_dim() / 2;
  return c;
}

DecodeBenchReport run_decode_bench(const ModelBenchConfig& config) {
  check_config(config);
  const auto dtype = resolve_model_dtype(config.dtype, config.device);
  const auto base = models::model_preset(config.decode_base);
  DecodeBenchReport report;
  report.device = config.device.str();
  report.dtype = short_dtype_name(dtype);
  report.base = config.decode_base;
  report.d_model = base.d_model;
  report.n_head = base.n_head;
  report.n_layer = base.n_layer;
  report.batch = config.batch;
  report.prompt = config.prompt;
  report.new_tokens = config.new_tokens;
  report.mha = time_decoding(base, config, dtype);
  report.mla = time_decoding(mla_variant(base), config, dtype);
  return report;
}

std::string format_decode_bench(const DecodeBenchReport& report) {
  std::string out = fmt::format(
      "decode with KV cache, MHA vs MLA at the same width: {} (d_model {}, {} heads, {} layers), "
      "feed-forward unchanged\n"
      "device {}, {}, batch {}, prompt {} tokens, {} new tokens (greedy, one forward pass each)\n",
      report.base, report.d_model, report.n_head, report.n_layer, report.device, report.dtype,
      report.batch, report.prompt, report.new_tokens);
  out += fmt::format("{:<32} {:>8} {:>10} {:>12} {:>12} {:>12} {:>12} {:>9}\n", "attention",
                     "params", "cache n/tl", "cache/token", "cache alloc", "prefill t/s",
                     "decode t/s", "ms/step");
  out += format_decode_row(report.mha);
  out += format_decode_row(report.mla);
  out += format_ratio_row(report.mla, report.mha);
  out += "(cache n/tl: numbers cached per token and layer; cache/token: bytes per token over all "
         "layers, one sequence; cache alloc: the run's cache, batch x (prompt + new tokens))\n";
  return out;
}

}  // namespace muonlab::bench
