#include "muonlab/training/checkpoint.h"


#include <ATen/Parallel.h>

#include <algorithm>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>
#include <zlib.h>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/remove_tree.h"
#include "muonlab/core/read_file.h"
#include "muonlab/core/safetensors_file.h"
#include "muonlab/core/shape_string.h"
#include "muonlab/models/stacked_expert_names.h"

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

// The files of a checkpoint are listed in its state.json with their size
// and CRC-32; a load verifies them before reading any, so flipped bits or a
// truncated copy are named instead of silently resumed.
constexpr const char* kWeightsFile = "model.safetensors";
constexpr const char* kRngFile = "rng_state.safetensors";
constexpr const char* kOptimizerFile = "optimizer.pt";

struct FileDigest {
  uint64_t bytes = 0;
  std::string crc32;  // 8 hex digits
};

FileDigest digest_of(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("cannot read '{}'", path.string());
  std::vector<char> buffer(1 << 20);
  uLong crc = crc32(0L, Z_NULL, 0);
  FileDigest digest;
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    const std::streamsize got = in.gcount();
    if (got <= 0) break;
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(buffer.data()), static_cast<z_size_t>(got));
    digest.bytes += static_cast<uint64_t>(got);
  }
  if (in.bad()) fail("cannot read '{}'", path.string());
  digest.crc32 = fmt::format("{:08x}", crc);
  return digest;
}

nlohmann::json file_digests(const fs::path& folder, const std::vector<std::string>& names) {
  nlohmann::json files = nlohmann::json::object();
  for (const std::string& name : names) {
    const FileDigest digest = digest_of(folder / name);
    files[name] = {{"bytes", digest.bytes}, {"crc32", digest.crc32}};
  }
  return files;
}

// Folders a killed writer or pruner left behind: "step_N.tmp" (a checkpoint
// never renamed into place) and "step_N.del" (one renamed away to be
// deleted). Neither is ever read; this removes them.
void remove_stale_folders(const fs::path& dir) {
  if (!fs::is_directory(dir)) return;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    const bool is_leftover = name.size() > 4 && (name.compare(name.size() - 4, 4, ".tmp") == 0 ||
                                                  name.compare(name.size() - 4, 4, ".del") == 0);
    if (entry.is_directory() && name.rfind(kPrefix, 0) == 0 && is_leftover) stale.push_back(entry.path());
  }
  for (const auto& path : stale) remove_tree(path.string());
}

// Renamed first, so a kill mid-delete leaves a ".del" folder that no reader
// takes for a checkpoint (and the next save removes), not a half-deleted one.
void delete_checkpoint(const fs::path& folder) {
  const fs::path doomed = folder.string() + ".del";
  remove_tree(doomed.string());
  fs::rename(folder, doomed);
  remove_tree(doomed.string());
}

std::vector<fs::path> complete_checkpoints(const std::string& out_dir) {
  std::vector<fs::path> found;
  fs::path dir = checkpoints_dir(out_dir);
  if (!fs::is_directory(dir)) return found;
  for (const auto& entry : fs::directory_iterator(dir)) {
    std::string name = entry.path().filename().string();
    if (entry.is_directory() && name.rfind(kPrefix, 0) == 0 && name.find('.') == std::string::npos &&
        fs::exists(entry.path() / "state.json")) {
      found.push_back(entry.path());
    }
  }
  std::sort(found.begin(), found.end());  // zero-padded step numbers sort in step order
  return found;
}

fs::path checkpoint_folder(const TrainConfig& config, int64_t step) {
  return checkpoints_dir(config.run.out_dir) / fmt::format("{}{:08d}", kPrefix, step);
}

// Where the checkpoint of `step` is assembled before it is renamed into place.
fs::path staging_folder(const TrainConfig& config, int64_t step) {
  return checkpoint_folder(config, step).string() + ".tmp";
}

// An empty staging folder for the checkpoint of `step`, leftovers of killed
// writers removed.
fs::path prepare_staging_folder(const TrainConfig& config, int64_t step) {
  const fs::path staging = staging_folder(config, step);
  remove_stale_folders(staging.parent_path());
  fs::create_directories(staging);
  return staging;
}

// With the optimizer state files already in `staging`: the weights, the
// generators' states and state.json (written last: its presence marks a
// complete checkpoint), then the folder renamed into place and the oldest
// checkpoints beyond run.keep_checkpoints removed.
std::string finish_checkpoint(const TrainConfig& config, const CheckpointState& state, const models::Transformer& model,
                              const fs::path& staging, const std::vector<std::string>& optimizer_files) {
  std::vector<std::pair<std::string, torch::Tensor>> weights;
  for (const auto& item : model->named_parameters()) weights.emplace_back(item.key(), item.value());
  save_safetensors((staging / kWeightsFile).string(), weights, {{"format", "pt"}});
  save_rng_states((staging / kRngFile).string(), config);
  crash_here_if_requested();
  std::vector<std::string> files = {kWeightsFile, kRngFile};
  files.insert(files.end(), optimizer_files.begin(), optimizer_files.end());
  nlohmann::json json = {{"step", state.step},
                         {"loader_epoch", state.cursor.epoch},
                         {"loader_batch", state.cursor.batch},
                         {"world_size", state.world_size},
                         {"intra_op_threads", at::get_num_threads()},
                         {"identity", identity(config, state.world_size)},
                         {"optimizer_files", optimizer_files},
                         {"files", file_digests(staging, files)}};
  write_text_file_atomically((staging / "state.json").string(), json.dump(2) + "\n");
  sync_directory(staging.string());
  const fs::path final_dir = checkpoint_folder(config, state.step);
  if (fs::exists(final_dir)) delete_checkpoint(final_dir);
  fs::rename(staging, final_dir);
  sync_directory(final_dir.parent_path().string());

  auto all = complete_checkpoints(config.run.out_dir);
  for (size_t i = 0; i + config.run.keep_checkpoints < all.size(); ++i) delete_checkpoint(all[i]);
  return final_dir.string();
}

}  // namespace

std::string optimizer_shard_name(int64_t rank, int64_t world_size) {
  return fmt::format("optimizer.rank{}-of-{}.pt", rank, world_size);
}

std::string save_checkpoint(const TrainConfig& config, const CheckpointState& state, const models::Transformer& model,
                            const TrainOptimizer& optimizer) {
  const fs::path staging = prepare_staging_folder(config, state.step);
  optimizer.save_to_file((staging / kOptimizerFile).string());
  return finish_checkpoint(config, state, model, staging, {kOptimizerFile});
}

std::string save_sharded_checkpoint(const TrainConfig& config, const CheckpointState& state,
                                    const models::Transformer& model, const TrainOptimizer& optimizer, int64_t rank,
                                    const std::function<void()>& barrier) {
  const fs::path staging = rank == 0 ? prepare_staging_folder(config, state.step) : staging_folder(config, state.step);
  barrier();  // the folder exists
  optimizer.save_shard_to_file((staging / optimizer_shard_name(rank, state.world_size)).string(), rank);
  barrier();  // every rank's file is written
  std::vector<std::string> shards;
  for (int64_t r = 0; r < state.world_size; ++r) shards.push_back(optimizer_shard_name(r, state.world_size));
  if (rank == 0) finish_checkpoint(config, state, model, staging, shards);
  barrier();  // no rank runs ahead of (or exits before) the checkpoint being in place
  return checkpoint_folder(config, state.step).string();
}

namespace {

// The tensors of a weights file, in today's layout (an older file's
// per-expert tensors stacked).
models::NamedTensors read_weights(const std::string& safetensors_path) {
  auto tensors = load_safetensors(safetensors_path).tensors;
  models::stack_per_expert_tensors(tensors, fmt::format("'{}'", safetensors_path));
  return tensors;
}

void copy_weights(const std::string& safetensors_path, const models::NamedTensors& tensors,
                  models::Transformer& model) {
  auto named = model->named_parameters();
  if (tensors.size() != named.size()) {
    fail("'{}' holds {} tensors; the model has {}", safetensors_path, tensors.size(), named.size());
  }
  for (const auto& [name, tensor] : tensors) {
    const torch::Tensor* target = named.find(name);
    if (target == nullptr) fail("'{}' holds '{}', which the model lacks", safetensors_path, name);
    if (target->sizes() != tensor.sizes()) {
      fail("'{}': '{}' has shape {}, the model's is {}", safetensors_path, name, shape_string(tensor.sizes()),
           shape_string(target->sizes()));
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : tensors) named[name].copy_(tensor);
}

}  // namespace

void load_weights(const std::string& safetensors_path, models::Transformer& model) {
  copy_weights(safetensors_path, read_weights(safetensors_path), model);
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
    if (state.step < 0) fail("checkpoint '{}' is corrupt: step {} in its state.json", folder, state.step);
    state.cursor = {json.at("loader_epoch").get<uint64_t>(), json.at("loader_batch").get<uint64_t>()};
    if (json.contains("intra_op_threads")) {
      state.intra_op_threads = json.at("intra_op_threads").get<int>();
      if (*state.intra_op_threads < 1) {
        fail("checkpoint '{}' is corrupt: intra_op_threads {} in its state.json", folder, *state.intra_op_threads);
      }
    }
    return state;
  } catch (const nlohmann::json::exception& error) {
    fail("checkpoint '{}' is corrupt: {}", (fs::path(folder) / "state.json").string(), error.what());
  }
}

// The other complete checkpoints of the run `folder` belongs to, newest
// first, for an error that must say what else could be resumed.
std::string other_checkpoints(const fs::path& folder) {
  std::vector<std::string> names;
  const auto all = complete_checkpoints(folder.parent_path().parent_path().string());
  for (auto it = all.rbegin(); it != all.rend(); ++it) {
    if (fs::path(*it).filename() != folder.filename()) names.push_back(it->string());
  }
  if (names.empty()) return "no other complete checkpoint";
  return fmt::format("other complete checkpoints, newest first: {}; resume one with --resume-from DIR",
                     fmt::join(names, ", "));
}

// Every file state.json lists has the size and CRC-32 it had when written.
// (Checkpoints written before checksums were recorded carry none.)
void verify_files(const fs::path& folder, const nlohmann::json& json) {
  if (!json.contains("files")) return;
  for (const auto& [name, recorded] : json["files"].items()) {
    const fs::path path = folder / name;
    if (!fs::is_regular_file(path)) {
      fail("checkpoint '{}' lacks '{}', which its state.json lists; {}", folder.string(), name,
           other_checkpoints(folder));
    }
    const FileDigest actual = digest_of(path);
    const auto bytes = recorded.value("bytes", uint64_t{0});
    const auto crc = recorded.value("crc32", std::string());
    if (actual.bytes != bytes || actual.crc32 != crc) {
      fail("checkpoint file '{}' is corrupt: {} bytes with CRC-32 {}, but {} bytes with CRC-32 {} were written; {}",
           path.string(), actual.bytes, actual.crc32, bytes, crc, other_checkpoints(folder));
    }
  }
}

// The optimizer state files the manifest lists (checkpoints written before
// the manifest had one, optimizer.pt), as paths; each must also be among
// the files with a recorded checksum.
std::vector<std::string> optimizer_files_of(const std::string& folder, const nlohmann::json& json) {
  const std::string state_path = (fs::path(folder) / "state.json").string();
  if (!json.contains("optimizer_files")) return {(fs::path(folder) / kOptimizerFile).string()};
  const nlohmann::json& listed = json["optimizer_files"];
  if (!listed.is_array() || listed.empty()) {
    fail("checkpoint '{}' is corrupt: 'optimizer_files' in {} is {}, not a list of file names", folder, state_path,
         listed.dump());
  }
  std::vector<std::string> paths;
  for (const auto& name : listed) {
    if (!name.is_string() || name.get<std::string>().find('/') != std::string::npos ||
        (json.contains("files") && !json["files"].contains(name.get<std::string>()))) {
      fail("checkpoint '{}' is corrupt: 'optimizer_files' in {} lists {}, which is not a file of its manifest",
           folder, state_path, name.dump());
    }
    paths.push_back((fs::path(folder) / name.get<std::string>()).string());
  }
  return paths;
}

// A checkpoint's weights must be finite: a run resumed from NaN weights
// would only fail later, far from the cause.
// A checkpoint's model description in today's words: one written before a
// model field existed lacks that field's line, and the model it trained
// had the field's default. A description that does not parse (a newer
// muonlab's field) is kept as it was, to be named as a mismatch.
nlohmann::json model_as_described_now(const nlohmann::json& recorded) {
  if (!recorded.is_string()) return recorded;
  try {
    return models::describe(models::parse_description(recorded.get<std::string>()));
  } catch (const Error&) {
    return recorded;
  }
}

void check_finite_weights(const fs::path& folder, const models::Transformer& model) {
  for (const auto& item : model->named_parameters()) {
    if (!torch::isfinite(item.value()).all().item<bool>()) {
      fail("checkpoint '{}': weight '{}' holds NaN or infinite values; {}", folder.string(), item.key(),
           other_checkpoints(folder));
    }
  }
}

}  // namespace

CheckpointState load_checkpoint(const std::string& folder, const TrainConfig& config, models::Transformer& model,
                                TrainOptimizer& optimizer, int64_t world_size) {
  const nlohmann::json json = read_state_json(folder);
  const CheckpointState state = state_of(folder, json);  // a corrupt state.json fails before anything loads
  verify_files(folder, json);
  const nlohmann::json recorded = json.contains("identity") ? json["identity"] : nlohmann::json::object();
  if (!recorded.is_object()) {
    fail("checkpoint '{}' is corrupt: its state.json's 'identity' is {}, not an object", folder, recorded.dump());
  }
  const nlohmann::json expected = identity(config, world_size);
  for (const auto& [key, value] : expected.items()) {
    nlohmann::json was = recorded.value(key, nlohmann::json());
    if (key == "model") was = model_as_described_now(was);
    if (was != value) {
      fail("checkpoint '{}' does not match this config: '{}' was {}, now {}", folder, key,
           was.is_null() ? "missing" : was.dump(), value.dump());
    }
  }
  const std::vector<std::string> optimizer_files = optimizer_files_of(folder, json);
  const std::string weights_path = (fs::path(folder) / kWeightsFile).string();
  copy_weights(weights_path, read_weights(weights_path), model);
  check_finite_weights(folder, model);
  if (optimizer_files.size() == 1) {
    optimizer.load_from_file(optimizer_files.front());
  } else {
    optimizer.load_from_shards(optimizer_files);
  }
  load_rng_states((fs::path(folder) / kRngFile).string(), config);
  return state;
}

CheckpointState read_checkpoint_state(const std::string& folder) { return state_of(folder, read_state_json(folder)); }

}  // namespace muonlab::training
