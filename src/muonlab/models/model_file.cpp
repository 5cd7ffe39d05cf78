#include "muonlab/models/model_file.h"

#include <map>

#include "muonlab/core/archive_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/models/stacked_expert_names.h"

namespace muonlab::models {

namespace {

constexpr const char* kFormat = "muonlab-model-v1";
constexpr const char* kWhat = "model file";

ModelConfig parse_config(const std::string& text) {
  ModelConfig config = parse_description(text);
  config.validate();
  return config;
}

void check_format(torch::serialize::InputArchive& archive) {
  const auto format = read_archive_string(archive, "format", kWhat);
  if (format != kFormat) fail("format '{}', expected '{}'", format, kFormat);
}

// In today's layout: a file that stores each MoE expert apart is stacked.
std::map<std::string, torch::Tensor> read_tensors(torch::serialize::InputArchive& archive) {
  NamedTensors tensors;
  const auto count = read_archive_int(archive, "num_params", kWhat);
  for (int64_t i = 0; i < count; ++i) {
    torch::serialize::InputArchive entry;
    if (!archive.try_read("param" + std::to_string(i), entry)) {
      fail("truncated: parameter entry {} of {} is missing", i, count);
    }
    torch::Tensor value;
    entry.read("value", value, /*is_buffer=*/true);
    tensors.emplace_back(read_archive_string(entry, "name", kWhat), value);
  }
  stack_per_expert_tensors(tensors, "the file");
  return {tensors.begin(), tensors.end()};
}

// All checks first, then the copies: a mismatch leaves the model untouched.
void copy_into(Transformer& model, const std::map<std::string, torch::Tensor>& saved) {
  const auto named = model->named_parameters();
  for (const auto& item : named) {
    const auto it = saved.find(item.key());
    if (it == saved.end()) fail("parameter '{}' is missing", item.key());
    if (it->second.sizes() != item.value().sizes()) {
      fail("parameter '{}' has shape {}, the model expects {}", item.key(),
           shape_string(it->second.sizes()), shape_string(item.value().sizes()));
    }
  }
  if (saved.size() != named.size()) {
    for (const auto& [name, tensor] : saved) {
      if (named.find(name) == nullptr) fail("parameter '{}' is not in the model", name);
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& item : named) item.value().copy_(saved.at(item.key()));
}

}  // namespace

void save_model(const Transformer& model, const std::string& path) {
  torch::serialize::OutputArchive archive;
  archive.write("format", c10::IValue(std::string(kFormat)));
  archive.write("config", c10::IValue(describe(model->config())));
  const auto named = model->named_parameters();
  archive.write("num_params", c10::IValue(static_cast<int64_t>(named.size())));
  int64_t i = 0;
  for (const auto& item : named) {
    torch::serialize::OutputArchive entry(archive.compilation_unit());
    entry.write("name", c10::IValue(item.key()));
    entry.write("value", item.value().detach().to(torch::kCPU), /*is_buffer=*/true);
    archive.write("param" + std::to_string(i++), entry);
  }
  save_archive_atomically(archive, path);
}

ModelConfig read_model_config(const std::string& path) {
  ModelConfig config;
  read_archive_file(path, [&](torch::serialize::InputArchive& archive) {
    check_format(archive);
    config = parse_config(read_archive_string(archive, "config", kWhat));
  });
  return config;
}

void load_model_weights(Transformer& model, const std::string& path) {
  read_archive_file(path, [&](torch::serialize::InputArchive& archive) {
    check_format(archive);
    copy_into(model, read_tensors(archive));
  });
}

Transformer load_model(const std::string& path) {
  Transformer model(read_model_config(path));
  load_model_weights(model, path);
  return model;
}

}  // namespace muonlab::models
