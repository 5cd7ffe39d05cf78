#include "muonlab/models/model_config.h"

#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <sstream>
#include <utility>

#include "muonlab/core/enum_names.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/nearest_name.h"
#include "muonlab/core/torch_compat.h"
#include "muonlab/models/model_field_aliases.h"

namespace muonlab::models {

namespace {

// ---- enum names ---------------------------------------------------------

const EnumNames<NormKind> kNormNames{{NormKind::kLayerNorm, "layernorm"},
                                     {NormKind::kRmsNorm, "rmsnorm"}};
const EnumNames<PositionKind> kPositionNames{{PositionKind::kLearned, "learned"},
                                             {PositionKind::kRope, "rope"}};
const EnumNames<MlpKind> kMlpNames{{MlpKind::kGelu, "gelu"}, {MlpKind::kSwiglu, "swiglu"}, {MlpKind::kRelu2, "relu2"}};
const EnumNames<AttentionKind> kAttentionNames{{AttentionKind::kMha, "mha"},
                                               {AttentionKind::kMla, "mla"}};
const EnumNames<FeedForwardKind> kFeedForwardNames{{FeedForwardKind::kDense, "dense"},
                                                   {FeedForwardKind::kMoe, "moe"}};
const EnumNames<MoeDispatch> kMoeDispatchNames{{MoeDispatch::kAuto, "auto"},
                                               {MoeDispatch::kLooped, "looped"},
                                               {MoeDispatch::kBatched, "batched"},
                                               {MoeDispatch::kGrouped, "grouped"}};

template <typename Enum>
Enum parse_field_enum(const EnumNames<Enum>& names, const std::string& key, const std::string& text) {
  if (auto value = find_enum(names, text)) return *value;
  const auto accepted = enum_name_list(names);
  fail("model config field '{}': '{}' is not one of {}{}", key, text, fmt::join(accepted, ", "),
       did_you_mean(text, accepted));
}

int64_t parse_int(const std::string& key, const std::string& text) {
  try {
    size_t used = 0;
    const auto value = std::stoll(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  fail("model config field '{}': '{}' is not an integer", key, text);
}

double parse_double(const std::string& key, const std::string& text) {
  try {
    size_t used = 0;
    const auto value = std::stod(text, &used);
    if (used == text.size()) return value;
  } catch (const std::exception&) {
  }
  fail("model config field '{}': '{}' is not a number", key, text);
}

bool parse_bool(const std::string& key, const std::string& text) {
  if (text == "true" || text == "1" || text == "on") return true;
  if (text == "false" || text == "0" || text == "off") return false;
  fail("model config field '{}': '{}' is not true or false", key, text);
}

// ---- the field table: one entry per settable key -------------------------

struct Field {
  std::function<void(ModelConfig&, const std::string& key, const std::string&)> set;
  std::function<std::string(const ModelConfig&)> get;
};

template <typename T>
Field int_field(T ModelConfig::*member) {
  return {[member](ModelConfig& c, const std::string& k, const std::string& v) {
            c.*member = parse_int(k, v);
          },
          [member](const ModelConfig& c) { return std::to_string(c.*member); }};
}

Field double_field(double ModelConfig::*member) {
  return {[member](ModelConfig& c, const std::string& k, const std::string& v) {
            c.*member = parse_double(k, v);
          },
          [member](const ModelConfig& c) { return fmt::format("{}", c.*member); }};
}

Field bool_field(bool ModelConfig::*member) {
  return {[member](ModelConfig& c, const std::string& k, const std::string& v) {
            c.*member = parse_bool(k, v);
          },
          [member](const ModelConfig& c) { return std::string(c.*member ? "true" : "false"); }};
}

template <typename Enum>
Field enum_field(Enum ModelConfig::*member, const EnumNames<Enum>& names) {
  return {[member, &names](ModelConfig& c, const std::string& k, const std::string& v) {
            c.*member = parse_field_enum(names, k, v);
          },
          [member, &names](const ModelConfig& c) { return enum_name(names, c.*member); }};
}

// Sub-struct fields: "mla.kv_latent" and "moe.top_k".
template <typename Sub, typename T>
Field nested_field(Sub ModelConfig::*sub, T Sub::*member) {
  return {[sub, member](ModelConfig& c, const std::string& k, const std::string& v) {
            if constexpr (std::is_same_v<T, bool>) {
              c.*sub.*member = parse_bool(k, v);
            } else if constexpr (std::is_floating_point_v<T>) {
              c.*sub.*member = parse_double(k, v);
            } else {
              c.*sub.*member = parse_int(k, v);
            }
          },
          [sub, member](const ModelConfig& c) {
            if constexpr (std::is_same_v<T, bool>) {
              return std::string(c.*sub.*member ? "true" : "false");
            } else {
              return fmt::format("{}", c.*sub.*member);
            }
          }};
}

const std::vector<std::pair<std::string, Field>>& fields() {
  static const std::vector<std::pair<std::string, Field>> table{
      {"name",
       {[](ModelConfig& c, const std::string&, const std::string& v) { c.name = v; },
        [](const ModelConfig& c) { return c.name; }}},
      {"vocab_size", int_field(&ModelConfig::vocab_size)},
      {"block_size", int_field(&ModelConfig::block_size)},
      {"n_layer", int_field(&ModelConfig::n_layer)},
      {"n_head", int_field(&ModelConfig::n_head)},
      {"n_kv_head", int_field(&ModelConfig::n_kv_head)},
      {"d_model", int_field(&ModelConfig::d_model)},
      {"mlp_hidden", int_field(&ModelConfig::mlp_hidden)},
      {"norm", enum_field(&ModelConfig::norm, kNormNames)},
      {"position", enum_field(&ModelConfig::position, kPositionNames)},
      {"mlp", enum_field(&ModelConfig::mlp, kMlpNames)},
      {"attention", enum_field(&ModelConfig::attention, kAttentionNames)},
      {"feed_forward", enum_field(&ModelConfig::feed_forward, kFeedForwardNames)},
      {"bias", bool_field(&ModelConfig::bias)},
      {"tie_embeddings", bool_field(&ModelConfig::tie_embeddings)},
      {"qk_norm", bool_field(&ModelConfig::qk_norm)},
      {"fused_qkv", bool_field(&ModelConfig::fused_qkv)},
      {"norm_eps", double_field(&ModelConfig::norm_eps)},
      {"rope_theta", double_field(&ModelConfig::rope_theta)},
      {"init_std", double_field(&ModelConfig::init_std)},
      {"logit_softcap", double_field(&ModelConfig::logit_softcap)},
      {"mla.kv_latent", nested_field(&ModelConfig::mla, &MlaConfig::kv_latent)},
      {"mla.q_latent", nested_field(&ModelConfig::mla, &MlaConfig::q_latent)},
      {"mla.rope_dim", nested_field(&ModelConfig::mla, &MlaConfig::rope_dim)},
      {"moe.num_shared", nested_field(&ModelConfig::moe, &MoeConfig::num_shared)},
      {"moe.num_routed", nested_field(&ModelConfig::moe, &MoeConfig::num_routed)},
      {"moe.top_k", nested_field(&ModelConfig::moe, &MoeConfig::top_k)},
      {"moe.expert_hidden", nested_field(&ModelConfig::moe, &MoeConfig::expert_hidden)},
      {"moe.renormalize", nested_field(&ModelConfig::moe, &MoeConfig::renormalize)},
      {"moe.balance_coef", nested_field(&ModelConfig::moe, &MoeConfig::balance_coef)},
      {"moe.capacity_factor", nested_field(&ModelConfig::moe, &MoeConfig::capacity_factor)},
      {"moe.dispatch",
       {[](ModelConfig& c, const std::string& k, const std::string& v) {
          c.moe.dispatch = parse_field_enum(kMoeDispatchNames, k, v);
        },
        [](const ModelConfig& c) { return enum_name(kMoeDispatchNames, c.moe.dispatch); }}},
  };
  return table;
}

// ---- validation ---------------------------------------------------------

void require_positive(const char* field, int64_t value) {
  if (value <= 0) fail("model config field '{}' = {}: expected a positive integer", field, value);
}

// NaN and infinities fail too: either would make every forward NaN.
void require_finite_positive(const char* field, double value) {
  if (!(value > 0 && std::isfinite(value))) {
    fail("model config field '{}' = {}: expected a finite positive number", field, value);
  }
}

void validate_mla(const ModelConfig& c) {
  require_positive("mla.kv_latent", c.mla.kv_latent);
  require_positive("mla.rope_dim", c.mla.rope_dim);
  if (c.mla.rope_dim % 2 != 0) {
    fail("model config field 'mla.rope_dim' = {}: expected an even size (RoPE rotates pairs)",
         c.mla.rope_dim);
  }
  if (c.mla.q_latent < 0) {
    fail("model config field 'mla.q_latent' = {}: expected 0 (no query compression) or a "
         "positive size", c.mla.q_latent);
  }
}

// at::_grouped_mm exists from LibTorch 2.9 and reads rows 16 bytes aligned:
// sizes that are multiples of 8 keep bf16 (and fp32, fp64) rows aligned.
void validate_grouped_dispatch(const ModelConfig& c) {
  if (!compat::kHasGroupedMm) {
    fail("model config field 'moe.dispatch' = grouped: needs LibTorch 2.9 or later "
         "(at::_grouped_mm); this build has {}. Use looped or batched",
         compat::torch_version());
  }
  for (const auto& [field, size] : {std::pair{"d_model", c.d_model},
                                    std::pair{"moe.expert_hidden", c.moe.expert_hidden}}) {
    if (size % 8 != 0) {
      fail("model config field '{}' = {}: moe.dispatch = grouped needs a multiple of 8 "
           "(grouped GEMM rows 16 bytes aligned)", field, size);
    }
  }
}

void validate_moe(const ModelConfig& c) {
  require_positive("moe.num_routed", c.moe.num_routed);
  require_positive("moe.top_k", c.moe.top_k);
  require_positive("moe.expert_hidden", c.moe.expert_hidden);
  if (c.moe.num_shared < 0) {
    fail("model config field 'moe.num_shared' = {}: expected 0 or more", c.moe.num_shared);
  }
  if (c.moe.top_k > c.moe.num_routed) {
    fail("model config field 'moe.top_k' = {}: larger than moe.num_routed = {}", c.moe.top_k,
         c.moe.num_routed);
  }
  if (!(c.moe.capacity_factor >= 0 && std::isfinite(c.moe.capacity_factor))) {
    fail("model config field 'moe.capacity_factor' = {}: expected 0 (dropless) or a finite positive number",
         c.moe.capacity_factor);
  }
  if (!(c.moe.balance_coef >= 0 && std::isfinite(c.moe.balance_coef))) {
    fail("model config field 'moe.balance_coef' = {}: expected 0 or a finite positive number",
         c.moe.balance_coef);
  }
  if (c.moe.dispatch == MoeDispatch::kGrouped) validate_grouped_dispatch(c);
}

}  // namespace

int64_t ModelConfig::dense_hidden() const {
  if (mlp_hidden > 0) return mlp_hidden;
  if (mlp != MlpKind::kSwiglu) return 4 * d_model;
  const int64_t two_thirds = (8 * d_model + 2) / 3;  // SwiGLU keeps 4d's parameter count
  return (two_thirds + 63) / 64 * 64;
}

std::optional<int64_t> ModelConfig::first_id_outside_vocabulary(const std::vector<int64_t>& ids) const {
  for (const int64_t id : ids) {
    if (id < 0 || id >= vocab_size) return id;
  }
  return std::nullopt;
}

void ModelConfig::validate() const {
  require_positive("vocab_size", vocab_size);
  require_positive("block_size", block_size);
  require_positive("n_layer", n_layer);
  require_positive("n_head", n_head);
  require_positive("d_model", d_model);
  if (d_model % n_head != 0) {
    fail("model config field 'n_head' = {}: does not divide d_model = {}", n_head, d_model);
  }
  if (n_kv_head < 0 || kv_heads() > n_head || n_head % kv_heads() != 0) {
    fail("model config field 'n_kv_head' = {}: expected 0 (same as n_head) or a divisor of "
         "n_head = {}", n_kv_head, n_head);
  }
  if (mlp_hidden < 0) fail("model config field 'mlp_hidden' = {}: expected 0 or more", mlp_hidden);
  if (position == PositionKind::kRope && head_dim() % 2 != 0) {
    fail("model config field 'position' = rope: head size d_model / n_head = {} must be even",
         head_dim());
  }
  require_finite_positive("norm_eps", norm_eps);
  require_finite_positive("init_std", init_std);
  require_finite_positive("rope_theta", rope_theta);
  if (!(logit_softcap >= 0) || !std::isfinite(logit_softcap)) {
    fail("model config field 'logit_softcap' = {}: expected 0 (off) or a positive cap", logit_softcap);
  }
  if (attention == AttentionKind::kMla) {
    validate_mla(*this);
    if (n_kv_head != 0 && n_kv_head != n_head) {
      fail("model config field 'n_kv_head' = {}: MLA has no separate K/V heads; leave it 0",
           n_kv_head);
    }
  }
  if (feed_forward == FeedForwardKind::kMoe) validate_moe(*this);
}

std::string to_string(NormKind kind) { return enum_name(kNormNames, kind); }
std::string to_string(PositionKind kind) { return enum_name(kPositionNames, kind); }
std::string to_string(MlpKind kind) { return enum_name(kMlpNames, kind); }
std::string to_string(AttentionKind kind) { return enum_name(kAttentionNames, kind); }
std::string to_string(FeedForwardKind kind) { return enum_name(kFeedForwardNames, kind); }

// ---- presets ------------------------------------------------------------

namespace {

ModelConfig gpt2(const std::string& name, int64_t layers, int64_t heads, int64_t width) {
  ModelConfig c;  // the defaults are GPT-2's choices
  c.name = name;
  c.n_layer = layers;
  c.n_head = heads;
  c.d_model = width;
  return c;
}

// LLaMA as in the GaLore / Muon² 60M-1.3B runs, with the GPT-2 vocabulary
// muonlab's tokenizer produces (so the embedding is larger than theirs).
ModelConfig llama(const std::string& name, int64_t layers, int64_t heads, int64_t width,
                  int64_t hidden) {
  ModelConfig c;
  c.name = name;
  c.block_size = 1024;
  c.n_layer = layers;
  c.n_head = heads;
  c.d_model = width;
  c.mlp_hidden = hidden;
  c.norm = NormKind::kRmsNorm;
  c.position = PositionKind::kRope;
  c.mlp = MlpKind::kSwiglu;
  c.bias = false;
  c.tie_embeddings = false;
  c.fused_qkv = false;
  c.norm_eps = 1e-6;
  return c;
}

// In the spirit of Mehta et al.'s Muon study with MLA and MoE
// (docs/algorithms.md, Multi-head Latent Attention): LLaMA blocks with MLA
// of latent rank d/2 and fine-grained MoE, 2 shared + 62 routed small
// experts, top-6.
ModelConfig mla_moe(const std::string& name, int64_t layers, int64_t heads, int64_t width,
                    int64_t shared, int64_t routed, int64_t top_k, int64_t expert_hidden) {
  ModelConfig c = llama(name, layers, heads, width, 0);
  c.attention = AttentionKind::kMla;
  c.mla.kv_latent = width / 2;
  c.mla.q_latent = width / 2;
  c.mla.rope_dim = c.head_dim() / 2;
  c.feed_forward = FeedForwardKind::kMoe;
  c.moe.num_shared = shared;
  c.moe.num_routed = routed;
  c.moe.top_k = top_k;
  c.moe.expert_hidden = expert_hidden;
  return c;
}

// The dense model with an MoE model's active FLOPs per token: the same
// attention, and one SwiGLU as wide as the shared and top-k experts
// together (the router's small matmul aside). The baseline MoE throughput is
// judged against.
ModelConfig mla_dense_twin(ModelConfig c, const std::string& name) {
  c.name = name;
  c.feed_forward = FeedForwardKind::kDense;
  c.mlp_hidden = (c.moe.num_shared + c.moe.top_k) * c.moe.expert_hidden;
  c.moe = MoeConfig{};
  return c;
}

ModelConfig tiny(ModelConfig c, const std::string& name) {
  c.name = name;
  c.vocab_size = 64;
  c.block_size = 32;
  c.n_layer = 2;
  c.n_head = 4;
  c.d_model = 32;
  c.mlp_hidden = 0;
  return c;
}

const std::map<std::string, std::function<ModelConfig()>>& presets() {
  static const std::map<std::string, std::function<ModelConfig()>> table{
      {"gpt2-small", [] { return gpt2("gpt2-small", 12, 12, 768); }},
      {"gpt2-medium", [] { return gpt2("gpt2-medium", 24, 16, 1024); }},
      {"llama-60m", [] { return llama("llama-60m", 8, 8, 512, 1376); }},
      {"llama-130m", [] { return llama("llama-130m", 12, 12, 768, 2048); }},
      {"mla-moe-small", [] { return mla_moe("mla-moe-small", 8, 8, 512, 2, 62, 6, 128); }},
      {"mla-dense-small", [] { return mla_dense_twin(model_preset("mla-moe-small"), "mla-dense-small"); }},
      {"tiny-gpt2", [] { return tiny(gpt2("", 1, 1, 1), "tiny-gpt2"); }},
      {"tiny-llama", [] { return tiny(llama("", 1, 1, 1, 0), "tiny-llama"); }},
      {"tiny-mla-moe", [] {
         auto c = tiny(mla_moe("", 1, 4, 32, 1, 6, 2, 16), "tiny-mla-moe");
         c.mla = {16, 16, 4};
         return c;
       }},
  };
  return table;
}

}  // namespace

ModelConfig model_preset(const std::string& name) {
  const auto it = presets().find(name);
  if (it == presets().end()) {
    fail("unknown model preset '{}'{}: expected one of {}", name, did_you_mean(name, preset_names()),
         fmt::join(preset_names(), ", "));
  }
  return it->second();
}

std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const auto& [name, make] : presets()) names.push_back(name);
  return names;
}

void set_config_field(ModelConfig& config, const std::string& key, const std::string& value) {
  for (const auto& [name, field] : fields()) {
    if (name == key) {
      field.set(config, key, value);
      return;
    }
  }
  const std::vector<std::string> names = config_field_names();
  fail("unknown model config field '{}'{}: expected one of {}", key, unknown_model_field_hint(key, names),
       fmt::join(names, ", "));
}

void apply_override(ModelConfig& config, const std::string& assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string::npos || eq == 0) {
    fail("model config override '{}': expected key=value", assignment);
  }
  set_config_field(config, assignment.substr(0, eq), assignment.substr(eq + 1));
}

bool is_config_field(const std::string& key) {
  const auto& table = fields();
  return std::any_of(table.begin(), table.end(), [&key](const auto& field) { return field.first == key; });
}

std::vector<std::string> config_field_names() {
  std::vector<std::string> names;
  for (const auto& [name, field] : fields()) names.push_back(name);
  return names;
}

std::string describe(const ModelConfig& config) {
  std::string text;
  for (const auto& [name, field] : fields()) {
    const bool is_mla = name.rfind("mla.", 0) == 0;
    const bool is_moe = name.rfind("moe.", 0) == 0;
    if (is_mla && config.attention != AttentionKind::kMla) continue;
    if (is_moe && config.feed_forward != FeedForwardKind::kMoe) continue;
    text += fmt::format("{}={}\n", name, field.get(config));
  }
  return text;
}

ModelConfig parse_description(const std::string& text) {
  ModelConfig config;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    if (!line.empty()) apply_override(config, line);
  }
  return config;
}

}  // namespace muonlab::models
