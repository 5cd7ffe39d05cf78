#include "muonlab/models/transformer.h"

#include <cmath>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/models/linear.h"

namespace muonlab::models {

namespace {

// The rotary table MHA (head size d_h) or MLA (decoupled part d_R) needs.
std::shared_ptr<const RotaryEmbedding> rotary_for(const ModelConfig& config) {
  if (config.attention == AttentionKind::kMla) {
    return std::make_shared<RotaryEmbedding>(config.mla.rope_dim, config.block_size,
                                             config.rope_theta);
  }
  if (config.position == PositionKind::kRope) {
    return std::make_shared<RotaryEmbedding>(config.head_dim(), config.block_size,
                                             config.rope_theta);
  }
  return nullptr;
}

}  // namespace

TransformerImpl::TransformerImpl(ModelConfig config) : config_(std::move(config)) {
  config_.validate();
  wte_ = register_module("wte", torch::nn::Embedding(config_.vocab_size, config_.d_model));
  if (config_.position == PositionKind::kLearned) {
    wpe_ = register_module("wpe", torch::nn::Embedding(config_.block_size, config_.d_model));
  }
  const auto rope = rotary_for(config_);
  h_ = register_module("h", torch::nn::ModuleList());
  for (int64_t i = 0; i < config_.n_layer; ++i) {
    blocks_.emplace_back(config_, rope);
    h_->push_back(blocks_.back());
  }
  ln_f_ = register_module("ln_f",
                          Norm(config_.norm, config_.d_model, config_.norm_eps, config_.bias));
  if (!config_.tie_embeddings) {
    lm_head_ = register_module("lm_head",
                               make_linear(config_.d_model, config_.vocab_size, false));
  }
  initialize();
}

void TransformerImpl::initialize() {
  torch::NoGradGuard no_grad;
  const double std = config_.init_std;
  for (auto& named : named_parameters()) {
    auto& p = named.value();
    const bool bias = named.key().size() >= 4 && named.key().compare(named.key().size() - 4, 4, "bias") == 0;
    if (bias) {
      p.zero_();  // the stacked experts' biases are [E, out], so by name first
    } else if (p.dim() >= 2) {
      p.normal_(0.0, std);
    }
  }
  const double residual_std = std / std::sqrt(2.0 * static_cast<double>(config_.n_layer));
  for (auto& block : blocks_) {
    for (auto* weight : block->residual_output_weights()) weight->normal_(0.0, residual_std);
  }
}

torch::Tensor TransformerImpl::output_weight() {
  return config_.tie_embeddings ? wte_->weight : lm_head_->weight;
}

ModelOutput TransformerImpl::forward(const torch::Tensor& tokens, KvCache* cache) {
  ModelOutput out;
  out.logits = logits_of(final_hidden(tokens, cache, out));
  return out;
}

ModelOutput TransformerImpl::forward_where(const torch::Tensor& tokens, const torch::Tensor& where) {
  if (where.sizes() != tokens.sizes() || where.scalar_type() != torch::kBool) {
    fail("model input: expected a [batch, time] bool mask of the positions to score, like the tokens {}; got {}",
         shape_string(tokens.sizes()), shape_string(where.sizes()));
  }
  ModelOutput out;
  out.logits = logits_of(final_hidden(tokens, nullptr, out).index({where}));
  return out;
}

torch::Tensor TransformerImpl::logits_of(const torch::Tensor& hidden) {
  auto logits = torch::linear(hidden, output_weight());
  if (config_.logit_softcap > 0) logits = config_.logit_softcap * torch::tanh(logits / config_.logit_softcap);
  return logits;
}

torch::Tensor TransformerImpl::final_hidden(const torch::Tensor& tokens, KvCache* cache, ModelOutput& out) {
  if (tokens.dim() != 2) fail("model input: expected [batch, time] token ids, got {}",
                              shape_string(tokens.sizes()));
  const int64_t length = tokens.size(1);
  const int64_t position = cache != nullptr ? cache->position() : 0;
  if (cache != nullptr) cache->check_room(length);
  if (position + length > config_.block_size) {
    fail("model input: {} tokens after position {} exceed block_size {}", length, position,
         config_.block_size);
  }
  auto x = wte_(tokens);
  if (wpe_) {
    x = x + wpe_(torch::arange(position, position + length, tokens.options()));
  }
  out.aux_loss = torch::zeros({}, x.options());
  for (size_t i = 0; i < blocks_.size(); ++i) {
    auto* layer_cache = cache != nullptr ? &cache->layer(static_cast<int64_t>(i)) : nullptr;
    auto block = blocks_[i](x, layer_cache, position);
    x = block.x;
    if (block.aux_loss.defined()) out.aux_loss = out.aux_loss + block.aux_loss;
    if (block.moe) out.moe.push_back(std::move(*block.moe));
  }
  if (cache != nullptr) cache->advance(length);
  return ln_f_(x);
}

std::vector<optim::TaggedParam> TransformerImpl::tagged_parameters() const {
  ParamTags tags{{"wte.weight", optim::ParamRole::kEmbedding}};
  if (wpe_) tags.push_back({"wpe.weight", optim::ParamRole::kEmbedding});
  std::vector<int64_t> layer_of(tags.size(), -1);
  for (size_t i = 0; i < blocks_.size(); ++i) {
    append_tags(tags, "h." + std::to_string(i), blocks_[i]->param_tags());
    layer_of.resize(tags.size(), static_cast<int64_t>(i));
  }
  append_tags(tags, "ln_f", ln_f_->param_tags());
  if (lm_head_) tags.push_back({"lm_head.weight", optim::ParamRole::kHead});
  layer_of.resize(tags.size(), -1);

  const auto named = named_parameters();
  if (named.size() != tags.size()) {
    fail("internal: the model has {} parameters but its modules tag {}", named.size(),
         tags.size());
  }
  std::vector<optim::TaggedParam> tagged;
  for (size_t i = 0; i < tags.size(); ++i) {
    const auto* tensor = named.find(tags[i].name);
    if (tensor == nullptr) fail("internal: tagged parameter '{}' is not in the model", tags[i].name);
    tagged.push_back({tags[i].name, *tensor, tags[i].role, false, tags[i].heads, layer_of[i]});
  }
  return tagged;
}

torch::Tensor next_token_loss(const torch::Tensor& logits, const torch::Tensor& targets) {
  const auto wide = logits.scalar_type() == torch::kFloat64 ? logits : logits.to(torch::kFloat32);
  return torch::nn::functional::cross_entropy(
      wide.reshape({-1, wide.size(-1)}), targets.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-1));
}

torch::Tensor training_loss(const ModelOutput& output, const torch::Tensor& targets) {
  return next_token_loss(output.logits, targets) + output.aux_loss;
}

void TransformerImpl::track_max_logits(bool on) {
  for (auto& block : blocks_) block->track_max_logits(on);
}

std::vector<torch::Tensor> TransformerImpl::qk_clip(double tau, const MaxLogitCombine& combine) {
  std::vector<torch::Tensor> max_logits;
  for (auto& block : blocks_) max_logits.push_back(block->qk_clip(tau, combine));
  return max_logits;
}

}  // namespace muonlab::models
