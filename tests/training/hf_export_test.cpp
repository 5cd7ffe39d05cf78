// `export --hf`: the folder holds what Hugging Face's GPT-2 expects, and HF's
// computation on those files gives our model's logits. Nothing here reads the
// exported files with muonlab's own code: the safetensors reader and the
// GPT-2 forward pass are written from the format's spec and from
// transformers' modeling_gpt2, so a layout mistake in the export cannot be
// mirrored by the same mistake in the check.
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "data/data_test_util.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/core/remove_tree.h"
#include "muonlab/data/gpt2_byte_map.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/hf_gpt2_export.h"
#include "muonlab/training/hf_llama_export.h"
#include "muonlab/training/train_config.h"
#include "test_util.h"
#include "training/hf_reference.h"

namespace muonlab::training {
namespace {
namespace fs = std::filesystem;
using hf_reference::HfTensors;
using hf_reference::hf_gpt2_logits;
using hf_reference::hf_llama_logits;
using hf_reference::hub_gpt2_shapes;
using hf_reference::Shape;

// ---- an independent safetensors reader ---------------------------------------

struct ParsedSafetensors {
  HfTensors tensors;
  nlohmann::json metadata;
};

// By the format's definition alone: an 8-byte little-endian header length, a
// JSON header, then the data, which the tensors' [begin, end) offsets must
// tile exactly. Only F32 is expected here.
ParsedSafetensors read_safetensors_independently(const std::string& path) {
  const std::string bytes = testing::read_bytes(path);
  EXPECT_GE(bytes.size(), 8u);
  uint64_t header_size = 0;
  for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | static_cast<unsigned char>(bytes[i]);
  EXPECT_LE(8 + header_size, bytes.size());
  const auto header = nlohmann::json::parse(bytes.substr(8, header_size));
  const char* data = bytes.data() + 8 + header_size;
  const uint64_t data_size = bytes.size() - 8 - header_size;

  ParsedSafetensors parsed;
  std::map<uint64_t, std::pair<uint64_t, std::string>> extents;  // begin -> (end, name)
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      parsed.metadata = entry;
      continue;
    }
    EXPECT_EQ(entry.at("dtype"), "F32") << name;
    const auto shape = entry.at("shape").get<Shape>();
    const auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
    auto tensor = torch::empty(shape, torch::kFloat32);
    EXPECT_EQ(offsets.at(1) - offsets.at(0), 4u * tensor.numel()) << name;
    EXPECT_LE(offsets.at(1), data_size) << name;
    if (offsets.at(1) <= data_size && offsets.at(1) - offsets.at(0) == 4u * tensor.numel()) {
      std::memcpy(tensor.data_ptr<float>(), data + offsets[0], offsets[1] - offsets[0]);
    }
    extents[offsets[0]] = {offsets[1], name};
    parsed.tensors[name] = tensor;
  }
  uint64_t covered = 0;
  for (const auto& [begin, end_and_name] : extents) {
    EXPECT_EQ(begin, covered) << "gap or overlap before '" << end_and_name.second << "'";
    covered = end_and_name.first;
  }
  EXPECT_EQ(covered, data_size) << "the tensors do not cover the data exactly";
  return parsed;
}

// ---- GPT-2 as Hugging Face computes it: hf_reference.h ---------------------------

std::map<std::string, Shape> shapes_of(const HfTensors& tensors) {
  std::map<std::string, Shape> shapes;
  for (const auto& [name, tensor] : tensors) shapes[name] = tensor.sizes().vec();
  return shapes;
}

// ---- run folders as `muonlab train` leaves them ---------------------------------

TrainConfig run_config(const testing::ScratchDir& dir, const std::string& model_lines,
                       const std::string& tokenizer = "byte", int64_t vocab_size = 257) {
  return parse_train_config(fmt::format(R"(
[model]
preset = "tiny-gpt2"
vocab_size = {}
block_size = 16
{}
[data]
train = "{}/shards/t_train_*.bin"
tokenizer = "{}"
[run]
out_dir = "{}/run"
)",
                                        vocab_size, model_lines, dir.path(), tokenizer, dir.path()),
                            "export_test.toml");
}

// Weights far from the init (std 0.02 makes attention almost uniform, which
// would hide a swapped q and k): every entry of order 0.1-1, gains near 1.
models::Transformer distinctive_model(const models::ModelConfig& config, uint64_t seed) {
  torch::manual_seed(seed);
  models::Transformer model(config);
  torch::NoGradGuard no_grad;
  for (auto& item : model->named_parameters()) {
    auto& p = item.value();
    const bool norm_gain = p.dim() == 1 && item.key().find("ln_") != std::string::npos &&
                           item.key().find(".weight") != std::string::npos;
    p.copy_(norm_gain ? 1.0 + 0.2 * torch::randn_like(p) : 0.2 * torch::randn_like(p));
  }
  return model;
}

void save_weights(const models::Transformer& model, const std::string& path) {
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value());
  fs::create_directories(fs::path(path).parent_path());
  save_safetensors(path, weights, {{"format", "pt"}});
}

// config.toml and model.safetensors in config.run.out_dir; returns the model.
models::Transformer write_run(const TrainConfig& config, uint64_t seed = 7) {
  auto model = distinctive_model(config.model, seed);
  save_weights(model, config.run.out_dir + "/model.safetensors");
  testing::write_bytes(config.run.out_dir + "/config.toml", format_train_config(config));
  return model;
}

HfExportOptions export_options(const TrainConfig& config, const std::string& out_dir) {
  HfExportOptions options;
  options.run_dir = config.run.out_dir;
  options.out_dir = out_dir;
  return options;
}

nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(testing::read_bytes(path)); }

std::set<std::string> entries_of(const std::string& folder) {
  std::set<std::string> names;
  for (const auto& entry : fs::directory_iterator(folder)) names.insert(entry.path().filename().string());
  return names;
}

// Twelve of the 16 positions, every id below tiny-gpt2's vocabulary of 257.
torch::Tensor some_tokens() {
  return torch::tensor({5, 200, 17, 256, 42, 42, 3, 99, 128, 0, 64, 250}, torch::kLong);
}

torch::Tensor our_logits(models::Transformer& model) {
  torch::NoGradGuard no_grad;
  return model(some_tokens().unsqueeze(0)).logits[0];
}

// ---- tests ---------------------------------------------------------------------

TEST(HfExport, FileHasTheHubsNamesAndConv1dShapes) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "n_layer = 3");
  write_run(config);
  const HfExportResult result = export_hf(export_options(config, dir.file("hf")));

  const ParsedSafetensors file = read_safetensors_independently(dir.file("hf/model.safetensors"));
  EXPECT_EQ(file.metadata, nlohmann::json({{"format", "pt"}}));
  EXPECT_EQ(shapes_of(file.tensors), hub_gpt2_shapes(257, 16, 32, 3, 128));
  EXPECT_EQ(result.tensors, 4 + 3 * 12);
  int64_t parameters = 0;
  for (const auto& [name, tensor] : file.tensors) parameters += tensor.numel();
  EXPECT_EQ(result.parameters, parameters);
  EXPECT_EQ(result.weights_path, dir.file("run/model.safetensors"));
  EXPECT_EQ(entries_of(dir.file("hf")), (std::set<std::string>{"model.safetensors", "config.json"}));
  EXPECT_CONTAINS(result.tokenizer_note, "tokenizer 'byte' has no Hugging Face class");
}

TEST(HfExport, HfForwardOnTheExportedFilesGivesOurLogits) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "");
  auto model = write_run(config);
  export_hf(export_options(config, dir.file("hf")));

  const auto hf = read_safetensors_independently(dir.file("hf/model.safetensors")).tensors;
  const auto hf_config = read_json(dir.file("hf/config.json"));
  const auto reference = hf_gpt2_logits(hf, hf_config, some_tokens());
  EXPECT_GT(reference.std().item<double>(), 0.3);  // logits that tell tokens apart
  EXPECT_TENSOR_NEAR(our_logits(model), reference, 1e-5);
}

// The check above would notice the classic layout mistakes: q and k swapped
// inside c_attn, or a square Conv1D weight left untransposed.
TEST(HfExport, ReferenceForwardCatchesSwappedQkAndUntransposedWeights) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "n_layer = 1");
  write_run(config);
  export_hf(export_options(config, dir.file("hf")));
  auto hf = read_safetensors_independently(dir.file("hf/model.safetensors")).tensors;
  const auto hf_config = read_json(dir.file("hf/config.json"));
  const auto right = hf_gpt2_logits(hf, hf_config, some_tokens());

  HfTensors swapped = hf;
  const auto parts = hf.at("h.0.attn.c_attn.weight").split(32, 1);
  swapped["h.0.attn.c_attn.weight"] = torch::cat({parts[1], parts[0], parts[2]}, 1);
  EXPECT_GT(testing::max_abs_diff(hf_gpt2_logits(swapped, hf_config, some_tokens()), right), 1e-2);

  HfTensors untransposed = hf;
  untransposed["h.0.attn.c_proj.weight"] = hf.at("h.0.attn.c_proj.weight").t().contiguous();
  EXPECT_GT(testing::max_abs_diff(hf_gpt2_logits(untransposed, hf_config, some_tokens()), right), 1e-2);
}

// Separate wq/wk/wv become one c_attn, and a non-default MLP width is n_inner.
TEST(HfExport, SeparateQkvAndCustomMlpWidthExportExactly) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "fused_qkv = false\nmlp_hidden = 48");
  auto model = write_run(config);
  export_hf(export_options(config, dir.file("hf")));

  const auto hf = read_safetensors_independently(dir.file("hf/model.safetensors")).tensors;
  const auto hf_config = read_json(dir.file("hf/config.json"));
  EXPECT_EQ(shapes_of(hf), hub_gpt2_shapes(257, 16, 32, 2, 48));
  EXPECT_EQ(hf_config.at("n_inner"), 48);
  EXPECT_TENSOR_NEAR(our_logits(model), hf_gpt2_logits(hf, hf_config, some_tokens()), 1e-5);
}

// modded-nanogpt's ReLU squared MLP is GPT2Config's activation "relu2".
TEST(HfExport, ReluSquaredMlpExportsAsRelu2) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "mlp = \"relu2\"");
  auto model = write_run(config);
  export_hf(export_options(config, dir.file("hf")));
  const auto hf = read_safetensors_independently(dir.file("hf/model.safetensors")).tensors;
  auto hf_config = read_json(dir.file("hf/config.json"));
  EXPECT_EQ(hf_config.at("activation_function"), "relu2");
  EXPECT_TENSOR_NEAR(our_logits(model), hf_gpt2_logits(hf, hf_config, some_tokens()), 1e-5);
  hf_config["activation_function"] = "gelu_new";  // the check tells the two apart
  EXPECT_GT(testing::max_abs_diff(hf_gpt2_logits(hf, hf_config, some_tokens()), our_logits(model)), 1e-4);
}

TEST(HfExport, ConfigJsonDescribesTheModelAsGpt2Config) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "norm_eps = 1e-6\ninit_std = 0.03");
  write_run(config);
  export_hf(export_options(config, dir.file("hf")));
  const auto json = read_json(dir.file("hf/config.json"));

  EXPECT_EQ(json.at("architectures"), nlohmann::json({"GPT2LMHeadModel"}));
  EXPECT_EQ(json.at("model_type"), "gpt2");
  EXPECT_EQ(json.at("vocab_size"), 257);
  EXPECT_EQ(json.at("n_positions"), 16);
  EXPECT_EQ(json.at("n_ctx"), 16);
  EXPECT_EQ(json.at("n_embd"), 32);
  EXPECT_EQ(json.at("n_layer"), 2);
  EXPECT_EQ(json.at("n_head"), 4);
  EXPECT_TRUE(json.at("n_inner").is_null());  // 4 * n_embd
  EXPECT_EQ(json.at("activation_function"), "gelu_new");
  EXPECT_EQ(json.at("layer_norm_epsilon"), 1e-6);
  EXPECT_EQ(json.at("initializer_range"), 0.03);
  for (const char* dropout : {"resid_pdrop", "embd_pdrop", "attn_pdrop"}) EXPECT_EQ(json.at(dropout), 0.0);
  EXPECT_EQ(json.at("scale_attn_weights"), true);
  EXPECT_EQ(json.at("scale_attn_by_inverse_layer_idx"), false);
  EXPECT_EQ(json.at("reorder_and_upcast_attn"), false);
  EXPECT_EQ(json.at("tie_word_embeddings"), true);
  EXPECT_EQ(json.at("torch_dtype"), "float32");
  EXPECT_EQ(json.at("bos_token_id"), 256);  // the byte tokenizer's <|endoftext|>
  EXPECT_EQ(json.at("eos_token_id"), 256);
}

// A GPT-2 vocabulary folder as small as the loader accepts: the 256 byte
// tokens, one merge ("h e"), and <|endoftext|>.
void write_small_gpt2_vocabulary(const std::string& folder) {
  nlohmann::ordered_json encoder;
  const auto& spellings = data::gpt2_byte_spellings();
  for (int byte = 0; byte < 256; ++byte) encoder[spellings[byte]] = byte;
  encoder["he"] = 256;
  encoder["<|endoftext|>"] = 257;
  testing::write_bytes(folder + "/encoder.json", encoder.dump());
  testing::write_bytes(folder + "/vocab.bpe", "#version: 0.2\nh e\n");
}

TEST(HfExport, Gpt2TokenizerFilesAreCopiedForGpt2Tokenizer) {
  testing::ScratchDir dir;
  write_small_gpt2_vocabulary(dir.file("vocab"));
  TrainConfig config = run_config(dir, "", dir.file("vocab"), 258);
  write_run(config);
  const HfExportResult result = export_hf(export_options(config, dir.file("hf")));

  EXPECT_EQ(result.tokenizer_note, "");
  EXPECT_EQ(testing::read_bytes(dir.file("hf/vocab.json")), testing::read_bytes(dir.file("vocab/encoder.json")));
  EXPECT_EQ(testing::read_bytes(dir.file("hf/merges.txt")), testing::read_bytes(dir.file("vocab/vocab.bpe")));
  const auto tokenizer_config = read_json(dir.file("hf/tokenizer_config.json"));
  EXPECT_EQ(tokenizer_config.at("tokenizer_class"), "GPT2Tokenizer");
  EXPECT_EQ(tokenizer_config.at("model_max_length"), 16);
  EXPECT_EQ(read_json(dir.file("hf/special_tokens_map.json")).at("eos_token"), "<|endoftext|>");
  EXPECT_EQ(read_json(dir.file("hf/config.json")).at("eos_token_id"), 257);
}

// A run trained with a Hugging Face tokenizer.json exports it as it is, for
// the fast tokenizer class, its document separator as bos and eos.
TEST(HfExport, TokenizerJsonIsPassedOn) {
  testing::ScratchDir dir;
  const std::string tokenizer = testing::test_data("hf_tokenizer/tokenizer.json");
  TrainConfig config = run_config(dir, "", tokenizer, 1005);
  write_run(config);
  const HfExportResult result = export_hf(export_options(config, dir.file("hf")));

  EXPECT_EQ(result.tokenizer_note, "");
  EXPECT_EQ(testing::read_bytes(dir.file("hf/tokenizer.json")), testing::read_bytes(tokenizer));
  const auto tokenizer_config = read_json(dir.file("hf/tokenizer_config.json"));
  EXPECT_EQ(tokenizer_config.at("tokenizer_class"), "PreTrainedTokenizerFast");
  EXPECT_EQ(tokenizer_config.at("eos_token"), "<|begin_of_text|>");
  EXPECT_EQ(tokenizer_config.at("model_max_length"), 16);
  EXPECT_EQ(read_json(dir.file("hf/config.json")).at("eos_token_id"), 1002);
  EXPECT_FALSE(fs::exists(dir.file("hf/vocab.json")));
}

// "gpt2" finds OpenAI's files where load_tokenizer does (scripts/fetch-data).
TEST(HfExport, InstalledGpt2VocabularyBecomesVocabJsonAndMergesTxt) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "", "gpt2", 50257);
  write_run(config);
  const HfExportResult result = export_hf(export_options(config, dir.file("hf")));

  ASSERT_EQ(result.tokenizer_note, "");
  const auto vocab = read_json(dir.file("hf/vocab.json"));
  EXPECT_EQ(vocab.size(), 50257u);
  EXPECT_EQ(vocab.at("<|endoftext|>"), 50256);
  EXPECT_EQ(testing::read_bytes(dir.file("hf/merges.txt")).rfind("#version: 0.2\n", 0), 0u);
  EXPECT_EQ(read_json(dir.file("hf/config.json")).at("bos_token_id"), 50256);
}

TEST(HfExport, IncompatibleFieldsAreNamedWithWhatGpt2Needs) {
  EXPECT_TRUE(hf_gpt2_incompatibilities(models::model_preset("tiny-gpt2")).empty());
  EXPECT_TRUE(hf_gpt2_incompatibilities(models::model_preset("gpt2-small")).empty());

  const auto problems_with = [](const std::string& preset, const std::string& assignment) {
    auto config = models::model_preset(preset);
    if (!assignment.empty()) models::apply_override(config, assignment);
    return fmt::format("{}", fmt::join(hf_gpt2_incompatibilities(config), "; "));
  };
  EXPECT_CONTAINS(problems_with("tiny-gpt2", "n_kv_head=2"), "'n_kv_head' = 2 (GPT-2 needs 0 or n_head = 4)");
  EXPECT_CONTAINS(problems_with("tiny-gpt2", "qk_norm=true"), "'qk_norm' = true (GPT-2 needs false)");
  EXPECT_CONTAINS(problems_with("tiny-gpt2", "bias=false"), "'bias' = false (GPT-2 needs true)");
  EXPECT_CONTAINS(problems_with("tiny-gpt2", "tie_embeddings=false"), "'tie_embeddings' = false");
  EXPECT_CONTAINS(problems_with("tiny-gpt2", "position=rope"), "'position' = rope (GPT-2 needs learned)");
  EXPECT_CONTAINS(problems_with("tiny-gpt2", "mlp=swiglu"), "'mlp' = swiglu (GPT-2 needs gelu or relu2)");
  EXPECT_CONTAINS(problems_with("tiny-gpt2", "logit_softcap=30"), "'logit_softcap' = 30 (GPT-2 needs 0)");
  EXPECT_TRUE(problems_with("tiny-gpt2", "mlp=relu2").empty());
  auto capped_llama = models::model_preset("tiny-llama");
  models::apply_override(capped_llama, "logit_softcap=15");
  EXPECT_CONTAINS(fmt::format("{}", fmt::join(hf_llama_incompatibilities(capped_llama), "; ")),
                  "'logit_softcap' = 15 (LLaMA needs 0)");
  const std::string mla_moe = problems_with("tiny-mla-moe", "");
  EXPECT_CONTAINS(mla_moe, "'attention' = mla (GPT-2 needs mha)");
  EXPECT_CONTAINS(mla_moe, "'feed_forward' = moe (GPT-2 needs dense)");
}

TrainConfig llama_run_config(const testing::ScratchDir& dir, const std::string& model_lines) {
  return parse_train_config(
      fmt::format("[model]\npreset = \"tiny-llama\"\nvocab_size = 257\nblock_size = 16\n{}\n[data]\ntrain = \"x\"\n"
                  "tokenizer = \"byte\"\n[run]\nout_dir = \"{}/run\"\n",
                  model_lines, dir.path()),
      "llama.toml");
}

TEST(HfExport, LlamaRunsExportAsLlamaForCausalLMAndHfForwardGivesOurLogits) {
  // MHA and GQA, separate and fused q/k/v, untied and tied heads.
  for (const std::string lines : {"", "n_kv_head = 2", "n_kv_head = 1\nfused_qkv = true", "tie_embeddings = true"}) {
    testing::ScratchDir dir;
    const TrainConfig config = llama_run_config(dir, lines);
    auto model = write_run(config);
    const HfExportResult result = export_hf(export_options(config, dir.file("hf")));
    EXPECT_EQ(result.architecture, "LlamaForCausalLM");

    const auto hf = read_safetensors_independently(dir.file("hf/model.safetensors")).tensors;
    const auto hf_config = read_json(dir.file("hf/config.json"));
    EXPECT_EQ(hf_config.at("model_type"), "llama");
    EXPECT_EQ(hf_config.at("num_key_value_heads"), config.model.kv_heads());
    EXPECT_EQ(hf.count("lm_head.weight"), config.model.tie_embeddings ? 0u : 1u) << lines;
    EXPECT_EQ(hf.at("model.layers.0.self_attn.k_proj.weight").sizes(),
              (c10::IntArrayRef{config.model.kv_heads() * config.model.head_dim(), config.model.d_model}));
    const auto reference = hf_llama_logits(hf, hf_config, some_tokens());
    EXPECT_GT(reference.std().item<double>(), 0.3) << lines;
    EXPECT_TENSOR_NEAR(our_logits(model), reference, 1e-5);
  }
}

// The check above notices RoPE's other pairing (interleaved, as Meta's
// original code) and swapped SwiGLU projections.
TEST(HfExport, LlamaReferenceForwardCatchesPermutedRopeAndSwappedGateUp) {
  testing::ScratchDir dir;
  const TrainConfig config = llama_run_config(dir, "n_layer = 1");
  write_run(config);
  export_hf(export_options(config, dir.file("hf")));
  auto hf = read_safetensors_independently(dir.file("hf/model.safetensors")).tensors;
  const auto hf_config = read_json(dir.file("hf/config.json"));
  const auto right = hf_llama_logits(hf, hf_config, some_tokens());

  HfTensors interleaved = hf;  // rows of each head reordered as (0, D/2, 1, D/2 + 1, ...)
  const int64_t head_dim = config.model.head_dim();
  auto q = hf.at("model.layers.0.self_attn.q_proj.weight");
  interleaved["model.layers.0.self_attn.q_proj.weight"] =
      q.view({-1, 2, head_dim / 2, q.size(1)}).transpose(1, 2).reshape(q.sizes()).contiguous();
  EXPECT_GT(testing::max_abs_diff(hf_llama_logits(interleaved, hf_config, some_tokens()), right), 1e-2);

  HfTensors swapped = hf;
  std::swap(swapped["model.layers.0.mlp.gate_proj.weight"], swapped["model.layers.0.mlp.up_proj.weight"]);
  EXPECT_GT(testing::max_abs_diff(hf_llama_logits(swapped, hf_config, some_tokens()), right), 1e-2);
}

TEST(HfExport, ModelsWithoutAHuggingFaceEquivalentAreRefusedBeforeAnythingIsWritten) {
  testing::ScratchDir dir;
  TrainConfig config = parse_train_config(
      fmt::format("[model]\npreset = \"tiny-mla-moe\"\n[data]\ntrain = \"x\"\n[run]\nout_dir = \"{}/run\"\n",
                  dir.path()),
      "mla.toml");
  write_run(config);
  const std::string message = testing::error_message([&] { export_hf(export_options(config, dir.file("hf"))); });
  EXPECT_CONTAINS(message, "model 'tiny-mla-moe' has no Hugging Face equivalent");
  EXPECT_CONTAINS(message, "as GPT-2, 'norm' = rmsnorm (GPT-2 needs layernorm)");
  EXPECT_CONTAINS(message, "as LLaMA, 'attention' = mla (LLaMA needs mha); 'feed_forward' = moe (LLaMA needs dense)");
  EXPECT_EQ(entries_of(dir.path()), (std::set<std::string>{"run"}));
}

TEST(HfExport, NonEmptyOutputIsKeptWithoutForceAndReplacedWithIt) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "");
  write_run(config);
  testing::write_bytes(dir.file("hf/mine.txt"), "precious");
  HfExportOptions options = export_options(config, dir.file("hf"));

  EXPECT_CONTAINS(testing::error_message([&] { export_hf(options); }),
                  "output folder '" + dir.file("hf") + "' exists and is not empty: choose another or pass --force");
  EXPECT_EQ(entries_of(dir.file("hf")), (std::set<std::string>{"mine.txt"}));
  EXPECT_EQ(testing::read_bytes(dir.file("hf/mine.txt")), "precious");

  options.force = true;
  export_hf(options);
  EXPECT_EQ(entries_of(dir.file("hf")), (std::set<std::string>{"model.safetensors", "config.json"}));
  EXPECT_EQ(entries_of(dir.path()), (std::set<std::string>{"run", "hf"}));  // no temporary or old folder left

  fs::create_directories(dir.file("empty"));  // an empty folder is as good as none
  export_hf(export_options(config, dir.file("empty")));
  EXPECT_TRUE(fs::exists(dir.file("empty/model.safetensors")));
}

TEST(HfExport, ForceNeverReplacesTheRunItself) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "");
  write_run(config);
  HfExportOptions options = export_options(config, dir.path());
  options.force = true;
  EXPECT_CONTAINS(testing::error_message([&] { export_hf(options); }),
                  "holds the run folder '" + dir.file("run") + "', which the export would replace");
  EXPECT_TRUE(fs::exists(dir.file("run/model.safetensors")));
}

TEST(HfExport, WeightsOfAnotherModelFailBeforeAnythingIsWritten) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "");
  write_run(config);
  TrainConfig bigger = run_config(dir, "n_layer = 3");
  save_weights(distinctive_model(bigger.model, 1), dir.file("other/model.safetensors"));
  HfExportOptions options = export_options(config, dir.file("hf"));
  options.weights = dir.file("other/model.safetensors");

  EXPECT_CONTAINS(testing::error_message([&] { export_hf(options); }),
                  "'" + options.weights + "'");  // load_weights' check names the file and what differs
  EXPECT_EQ(entries_of(dir.path()), (std::set<std::string>{"run", "other"}));
}

TEST(HfExport, WithoutFinalWeightsTheNewestCheckpointIsExported) {
  testing::ScratchDir dir;
  TrainConfig config = run_config(dir, "");
  auto model = write_run(config);
  fs::remove(dir.file("run/model.safetensors"));
  const auto write_checkpoint = [&](const std::string& step, const models::Transformer& weights) {
    save_weights(weights, dir.file("run/checkpoints/" + step + "/model.safetensors"));
    testing::write_bytes(dir.file("run/checkpoints/" + step + "/state.json"), "{}");
  };
  write_checkpoint("step_00000003", distinctive_model(config.model, 3));
  write_checkpoint("step_00000006", model);

  const HfExportResult result = export_hf(export_options(config, dir.file("hf")));
  EXPECT_EQ(result.weights_path, dir.file("run/checkpoints/step_00000006/model.safetensors"));
  const auto hf = read_safetensors_independently(dir.file("hf/model.safetensors")).tensors;
  EXPECT_TENSOR_NEAR(our_logits(model), hf_gpt2_logits(hf, read_json(dir.file("hf/config.json")), some_tokens()), 1e-5);

  remove_tree(dir.file("run/checkpoints"));
  EXPECT_CONTAINS(testing::error_message([&] { export_hf(export_options(config, dir.file("hf2"))); }),
                  "holds neither model.safetensors nor a complete checkpoint");
}

TEST(HfExport, FolderWithoutConfigIsNotARun) {
  testing::ScratchDir dir;
  HfExportOptions options;
  options.run_dir = dir.path();
  options.out_dir = dir.file("hf");
  EXPECT_CONTAINS(testing::error_message([&] { export_hf(options); }),
                  "config.toml' not found: expected a run folder written by muonlab train");
}

}  // namespace
}  // namespace muonlab::training
