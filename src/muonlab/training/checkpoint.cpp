#include "muonlab/training/checkpoint.h"


#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/remove_tree.h"
#include "muonlab/core/read_file.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::training {
namespace {
namespace fs = std::filesystem;

constexpr const char* kPrefix = "step_";

fs::path checkpoints_dir(const std::string& out_dir) { return fs::path(out_dir) / "checkpoints"; }

// What a resumed run must share with the one that saved. "batch_size" is
// the global micro-batch (sequences per micro-step over all ranks), so a
// checkpoint of 2 ranks x 3 resumes on 1 x 6 or 3 x 2.
nlohmann::json identity(const TrainConfig& config, int64_t world_size) {
  return {{"model", models::describe(config.model)},
          {"train", config.data.train},
          {"batch_size", config.data.batch_size * world_size},
          {"seq_len", config.data.seq_len},
          {"shuffle", config.data.shuffle},
          {"data_seed", config.data.seed},
          {"grad_accum", config.run.grad_accum},
          {"optimizer", config.optimizer.name}};
}

// The random generators a resumed run must continue from where they were:
// the CPU one, and the run's CUDA device's. "cuda" is the current GPU's (a
// rank's own, cuda:LOCAL_RANK, under several ranks), stored as "cuda:0".
std::vector<std::pair<std::string, at::Generator>> run_generators(const TrainConfig& config) {
  std::vector<std::pair<std::string, at::Generator>> generators{
      {"cpu", at::globalContext().defaultGenerator(c10::Device(c10::kCPU))}};
  c10::Device device(config.run.device);
  if (device.is_cuda()) {
    const c10::Device stored_as(c10::kCUDA, device.has_index() ? device.index() : 0);
    generators.emplace_back(stored_as.str(), at::globalContext().defaultGenerator(device));
  }
  return generators;
}

void save_rng_states(const std::string& path, const TrainConfig& config) {
  std::vector<std::pair<std::string, torch::Tensor>> states;
  for (auto& [name, generator] : run_generators(config)) {
    std::lock_guard<std::mutex> lock(generator.mutex());
    states.emplace_back(name, generator.get_state());
  }
  save_safetensors(path, states, {{"format", "pt"}});
}

void load_rng_states(const std::string& path, const TrainConfig& config) {
  SafetensorsContent content = load_safetensors(path);
  for (auto& [name, generator] : run_generators(config)) {
    auto found = std::find_if(content.tensors.begin(), content.tensors.end(),
                              [&](const auto& item) { return item.first == name; });
    if (found == content.tensors.end()) fail("'{}' lacks the state of the {} generator", path, name);
    std::lock_guard<std::mutex> lock(generator.mutex());
    generator.set_state(found->second);
  }
}

// Fault injection for the atomicity test (tests/training/checkpoint_crash_check.sh):
// MUONLAB_CRASH_IN_CHECKPOINT=N kills this process with SIGKILL halfway
// through writing its N-th checkpoint, weights and optimizer written and
// state.json not, as a power cut or the OOM killer would.
void crash_here_if_requested() {
  static int checkpoints_written = 0;
  const char* crash_at = std::getenv("MUONLAB_CRASH_IN_CHECKPOINT");
  if (crash_at != nullptr && ++checkpoints_written == std::atoi(crash_at)) std::raise(SIGKILL);
}

std::vector<fs::path> complete_checkpoints(const std::string& out_dir) {
  std::vector<fs::path> found;
  fs::path dir = checkpoints_dir(out_dir);
  if (!fs::is_directory(dir)) return found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind(kPrefix, 0) == 0 && name.find(".tmp") == std::string::npos &&
        fs::exists(entry.path() / "state.json")) {
      found.push_back(entry.path());
    }
  }
  std::sort(found.begin(), found.end());  // zero-padded step numbers sort in step order
  return found;
}

}  // namespace

std::string save_checkpoint(const TrainConfig& config, const CheckpointState& state, const models::Transformer& model,
                            const TrainOptimizer& optimizer) {
  fs::path dir = checkpoints_dir(config.run.out_dir);
  fs::path final_dir = dir / fmt::format("{}{:08d}", kPrefix, state.step);
  fs::path tmp_dir = final_dir.string() + ".tmp";
  remove_tree(tmp_dir.string());
  fs::create_directories(tmp_dir);

  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value());
  save_safetensors((tmp_dir / "model.safetensors").string(), weights, {{"format", "pt"}});
  optimizer.save_to_file((tmp_dir / "optimizer.pt").string());
  save_rng_states((tmp_dir / "rng_state.safetensors").string(), config);
  crash_here_if_requested();
  nlohmann::json json = {{"step", state.step},
                         {"loader_epoch", state.cursor.epoch},
                         {"loader_batch", state.cursor.batch},
                         {"world_size", state.world_size},
                         {"identity", identity(config, state.world_size)}};
  write_text_file_atomically((tmp_dir / "state.json").string(), json.dump(2) + "\n");
  sync_directory(tmp_dir.string());
  remove_tree(final_dir.string());
  fs::rename(tmp_dir, final_dir);
  sync_directory(dir.string());

  auto all = complete_checkpoints(config.run.out_dir);
  for (size_t i = 0; i + config.run.keep_checkpoints < all.size(); ++i) remove_tree(all[i]);
  return final_dir.string();
}

void load_weights(const std::string& safetensors_path, models::Transformer& model) {
  SafetensorsContent content = load_safetensors(safetensors_path);
  auto named = model->named_parameters();
  if (content.tensors.size() != named.size()) {
    fail("'{}' holds {} tensors; the model has {}", safetensors_path, content.tensors.size(), named.size());
  }
  for (const auto& [name, tensor] : content.tensors) {
    const torch::Tensor* target = named.find(name);
    if (target == nullptr) fail("'{}' holds '{}', which the model lacks", safetensors_path, name);
    if (target->sizes() != tensor.sizes()) {
      fail("'{}': '{}' has shape {}, the model's is {}", safetensors_path, name, shape_string(tensor.sizes()),
           shape_string(target->sizes()));
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : content.tensors) named[name].copy_(tensor);
}

std::optional<std::string> newest_checkpoint(const std::string& out_dir) {
  auto all = complete_checkpoints(out_dir);
  if (all.empty()) return std::nullopt;
  return all.back().string();
}

namespace {

nlohmann::json read_state_json(const std::string& folder) {
  const std::string path = (fs::path(folder) / "state.json").string();
  if (!fs::is_regular_file(path)) fail("checkpoint '{}' has no state.json", folder);
  try {
    return nlohmann::json::parse(read_whole_file(path));
  } catch (const nlohmann::json::exception& error) {
    fail("checkpoint '{}' is corrupt: {}", path, error.what());
  }
}

CheckpointState state_of(const std::string& folder, const nlohmann::json& json) {
  try {
    CheckpointState state;
    state.step = json.at("step").get<int64_t>();
    state.cursor = {json.at("loader_epoch").get<uint64_t>(), json.at("loader_batch").get<uint64_t>()};
    return state;
  } catch (const nlohmann::json::exception& error) {
    fail("checkpoint '{}' is corrupt: {}", (fs::path(folder) / "state.json").string(), error.what());
  }
}

}  // namespace

CheckpointState load_checkpoint(const std::string& folder, const TrainConfig& config, models::Transformer& model,
                                TrainOptimizer& optimizer, int64_t world_size) {
  const nlohmann::json json = read_state_json(folder);
  nlohmann::json expected = identity(config, world_size);
  for (const auto& [key, value] : expected.items()) {
    if (!json.contains("identity") || json["identity"].value(key, nlohmann::json()) != value) {
      fail("checkpoint '{}' does not match this config: '{}' was {}, now {}", folder, key,
           json.contains("identity") ? json["identity"].value(key, nlohmann::json()).dump() : "missing", value.dump());
    }
  }
  load_weights((fs::path(folder) / "model.safetensors").string(), model);
  optimizer.load_from_file((fs::path(folder) / "optimizer.pt").string());
  load_rng_states((fs::path(folder) / "rng_state.safetensors").string(), config);
  return state_of(folder, json);
}

CheckpointState read_checkpoint_state(const std::string& folder) { return state_of(folder, read_state_json(folder)); }

}  // namespace muonlab::training
