#include "muonlab/training/initial_weights.h"

#include <filesystem>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/models/model_file.h"
#include "muonlab/training/hf_import.h"
#include "muonlab/training/run_folder.h"

namespace muonlab::training {
namespace {

models::Transformer model_at(const std::string& path) {
  if (!std::filesystem::exists(path)) fail("run.init_from '{}': no such file or folder", path);
  if (names_hf_model(path)) return import_hf_model(path).model;
  if (names_run_model(path)) return load_run_model(path);
  return models::load_model(path);
}

}  // namespace

void load_initial_weights(models::Transformer& model, const std::string& path) {
  const auto source = model_at(path)->named_parameters();
  auto target = model->named_parameters();
  // Everything checked before anything is copied.
  for (const auto& item : target) {
    const torch::Tensor* found = source.find(item.key());
    if (found == nullptr) {
      fail("run.init_from '{}': no parameter '{}', which [model] has; does [model] describe that model?", path,
           item.key());
    }
    if (found->sizes() != item.value().sizes()) {
      fail("run.init_from '{}': parameter '{}' is {} there and {} in [model]; set [model] to that model's shape",
           path, item.key(), shape_string(found->sizes()), shape_string(item.value().sizes()));
    }
  }
  for (const auto& item : source) {
    if (target.find(item.key()) == nullptr) {
      fail("run.init_from '{}': parameter '{}' has no place in [model]'s model; does [model] describe it?", path,
           item.key());
    }
  }
  torch::NoGradGuard no_grad;
  for (auto& item : target) item.value().copy_(source[item.key()]);
}

}  // namespace muonlab::training
