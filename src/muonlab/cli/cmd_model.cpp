// `muonlab model info|init`: what a model is (sizes, FLOPs, KV cache), and
// a freshly initialized model file.
#include <filesystem>
#include <iostream>
#include <memory>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/model_args.h"
#include "muonlab/core/errors.h"
#include "muonlab/models/model_file.h"
#include "muonlab/models/model_stats.h"

namespace muonlab::cli {

namespace {

std::string millions(int64_t n) { return fmt::format("{:>14} ({:.2f}M)", n, n / 1e6); }

std::string architecture(const models::ModelConfig& c) {
  using namespace models;
  std::string attention =
      c.attention == AttentionKind::kMla
          ? fmt::format("MLA, {} heads of {} + rotary {}, KV latent {}, query latent {}", c.n_head,
                        c.head_dim(), c.mla.rope_dim, c.mla.kv_latent,
                        c.mla.q_latent > 0 ? std::to_string(c.mla.q_latent) : "none")
          : fmt::format("{}, {} heads of {}, {} K/V heads{}", c.kv_heads() < c.n_head ? "GQA" : "MHA",
                        c.n_head, c.head_dim(), c.kv_heads(), c.qk_norm ? ", QK-norm" : "");
  std::string ffn =
      c.feed_forward == FeedForwardKind::kMoe
          ? fmt::format("MoE, {} shared + {} routed SwiGLU experts of {}, top-{}{}", c.moe.num_shared,
                        c.moe.num_routed, c.moe.expert_hidden, c.moe.top_k,
                        c.moe.capacity_factor > 0
                            ? fmt::format(", capacity factor {}", c.moe.capacity_factor)
                            : ", dropless")
          : fmt::format("dense {} of {}", to_string(c.mlp), c.dense_hidden());
  return fmt::format(
      "  {} layers, width {}, vocabulary {}, context {}\n  attention: {}\n  feed-forward: {}\n"
      "  {}, {} positions, biases {}, {} head\n",
      c.n_layer, c.d_model, c.vocab_size, c.block_size, attention, ffn, to_string(c.norm),
      to_string(c.position), c.bias ? "on" : "off", c.tie_embeddings ? "tied" : "untied");
}

std::string cache_line(const char* label, int64_t numbers, int64_t context) {
  return fmt::format("  {:<28} {:>7} numbers/token = {:>8.1f} KiB/token in bf16, {:>8.1f} MiB per "
                     "{}-token sequence\n",
                     label, numbers, numbers * 2 / 1024.0, numbers * 2.0 * context / (1 << 20),
                     context);
}

std::string model_info(const models::ModelConfig& config, int64_t sequence) {
  const auto s = models::model_stats(config);
  std::string text = fmt::format("model {}\n{}", config.name, architecture(config));
  text += fmt::format("parameters\n  total           {}\n  embeddings      {}\n"
                      "  non-embedding   {}\n  active/token    {}\n",
                      millions(s.parameters), millions(s.embedding_parameters),
                      millions(s.parameters - s.embedding_parameters),
                      millions(s.active_parameters));
  text += fmt::format(
      "FLOPs per token at sequence {} (matmuls 2/weight + attention)\n  forward  {:.3f} GFLOP\n"
      "  training {:.3f} GFLOP (3x forward; MFU = tokens/s x this / peak)\n",
      sequence, s.forward_flops_per_token(sequence) / 1e9,
      s.training_flops_per_token(sequence) / 1e9);
  text += "KV cache per token, all layers\n";
  if (config.attention == models::AttentionKind::kMla) {
    auto mha = config;
    mha.attention = models::AttentionKind::kMha;
    const auto mha_numbers = models::model_stats(mha).kv_cache_numbers_per_token;
    text += cache_line("MLA (latent + rotary key)", s.kv_cache_numbers_per_token, config.block_size);
    text += cache_line("MHA at the same width", mha_numbers, config.block_size);
    text += fmt::format("  MLA / MHA = {:.3f}\n",
                        static_cast<double>(s.kv_cache_numbers_per_token) / mha_numbers);
  } else {
    text += cache_line(config.kv_heads() < config.n_head ? "GQA (keys + values)" : "MHA (keys + values)",
                       s.kv_cache_numbers_per_token, config.block_size);
  }
  return text;
}

void register_info(CLI::App& model) {
  struct Args {
    ModelArgs model;
    std::string positional_preset;
    int64_t sequence = 0;
    bool describe = false;
  };
  auto args = std::make_shared<Args>();
  auto* info = model.add_subcommand("info", "Parameter count, FLOPs per token and KV-cache size");
  add_examples(*info, {
                    "muonlab model info gpt2-small",
                    "muonlab model info mla-moe-small --seq-len 512",
                    "muonlab model info runs/cpu-small --describe",
                    "muonlab model info configs/cpu-small.toml --set n_layer=8   # the model a train config trains"});
  info->add_option("preset_name", args->positional_preset,
                   "Model preset, or a model file, run folder or its weights (as --model), or a train config");
  args->model.add_to(*info, /*with_model_file=*/true, /*with_device=*/false);
  info->add_option("--seq-len", args->sequence, "Sequence length for FLOPs (default: block_size)");
  info->add_flag("--describe", args->describe, "Also print every config field as key=value");
  info->callback([args] {
    if (!args->positional_preset.empty()) {
      // A path that exists is a model (as --model); anything else a preset name.
      const bool is_path = std::filesystem::exists(args->positional_preset);
      if (!(is_path ? args->model.model_file : args->model.preset).empty()) {
        fail("give the {} once: positionally or with {}", is_path ? "model" : "preset",
             is_path ? "--model" : "--preset");
      }
      (is_path ? args->model.model_file : args->model.preset) = args->positional_preset;
    }
    const auto config = args->model.config();
    std::cout << model_info(config, args->sequence > 0 ? args->sequence : config.block_size);
    if (args->describe) std::cout << "config\n" << models::describe(config);
    std::cout << std::flush;
  });
}

void register_init(CLI::App& model) {
  struct Args {
    ModelArgs model;
    std::string out;
  };
  auto args = std::make_shared<Args>();
  auto* init = model.add_subcommand("init", "Write a freshly initialized model file");
  add_examples(*init, {
                    "muonlab model init --preset tiny-gpt2 --out tiny.safetensors"});
  args->model.add_to(*init, /*with_model_file=*/false, /*with_device=*/false);
  init->add_option("--out", args->out, "Model file to write")->required();
  init->callback([args] {
    const auto model = args->model.build();
    models::save_model(model, args->out);
    std::cout << "wrote " << args->out << " (" << model->config().name << ", "
              << models::model_stats(model->config()).parameters << " parameters)" << std::endl;
  });
}

}  // namespace

void register_model(CLI::App& app) {
  auto* model = app.add_subcommand("model", "Inspect and create models");
  add_examples(*model, {
                    "muonlab model info gpt2-small"});
  model->require_subcommand(1);
  register_info(*model);
  register_init(*model);
}

}  // namespace muonlab::cli
