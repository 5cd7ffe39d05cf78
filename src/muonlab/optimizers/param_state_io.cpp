#include "muonlab/optimizers/param_state_io.h"

#include <fmt/format.h>

#include <algorithm>

#include "muonlab/core/errors.h"
#include "muonlab/core/shape_string.h"

namespace muonlab::optim {

namespace {

std::string archive_key(const std::string& key) { return "state_" + key; }

class StateWriter : public ParamStateVisitor {
 public:
  explicit StateWriter(torch::serialize::OutputArchive& archive) : archive_(archive) {}
  void tensor(const std::string& key, torch::Tensor& value) override {
    archive_.write(archive_key(key), value, /*is_buffer=*/true);
  }
  void integer(const std::string& key, int64_t& value) override {
    archive_.write(archive_key(key), c10::IValue(value));
  }

 private:
  torch::serialize::OutputArchive& archive_;
};

// One saved buffer of `shape`, or one saved integer, read from `archive`;
// errors name `whose` state it is ("parameter 'w'", or a slice of one).
torch::Tensor read_buffer(torch::serialize::InputArchive& archive, const std::string& key, c10::IntArrayRef shape,
                          const std::string& whose) {
  torch::Tensor loaded;
  if (!archive.try_read(archive_key(key), loaded, /*is_buffer=*/true)) {
    fail("optimizer state of {} lacks buffer '{}'", whose, key);
  }
  if (loaded.sizes() != shape) {
    fail("optimizer state of {}: buffer '{}' has shape {}, expected {}", whose, key, shape_string(loaded.sizes()),
         shape_string(shape));
  }
  return loaded;
}

int64_t read_integer(torch::serialize::InputArchive& archive, const std::string& key, const std::string& whose) {
  c10::IValue loaded;
  if (!archive.try_read(archive_key(key), loaded) || !loaded.isInt()) {
    fail("optimizer state of {} lacks integer '{}'", whose, key);
  }
  return loaded.toInt();
}

class StateReader : public ParamStateVisitor {
 public:
  StateReader(torch::serialize::InputArchive& archive, const std::string& param_name)
      : archive_(archive), whose_("parameter '" + param_name + "'") {}

  void tensor(const std::string& key, torch::Tensor& value) override {
    value = read_buffer(archive_, key, value.sizes(), whose_).to(value.options());
  }
  void integer(const std::string& key, int64_t& value) override { value = read_integer(archive_, key, whose_); }

 private:
  torch::serialize::InputArchive& archive_;
  const std::string whose_;
};

// Each buffer the stack of the slices' own, each integer their largest; a
// slice saved without state (null) keeps the fresh state's.
class SlicedStateReader : public ParamStateVisitor {
 public:
  SlicedStateReader(const std::vector<torch::serialize::InputArchive*>& slices,
                    const std::vector<std::string>& slice_names, const std::string& param_name)
      : slices_(slices) {
    for (size_t i = 0; i < slices.size(); ++i) {
      whose_.push_back(fmt::format("'{}' (slice {} of parameter '{}')", slice_names[i], i, param_name));
    }
  }

  void tensor(const std::string& key, torch::Tensor& value) override {
    TORCH_CHECK(value.dim() >= 1 && value.size(0) == static_cast<int64_t>(slices_.size()),
                "sliced optimizer state needs buffers with one row per slice");
    std::vector<torch::Tensor> loaded(slices_.size());
    for (size_t i = 0; i < slices_.size(); ++i) {
      loaded[i] = slices_[i] == nullptr
                      ? value[static_cast<int64_t>(i)]
                      : read_buffer(*slices_[i], key, value.sizes().slice(1), whose_[i]).to(value.options());
    }
    value = torch::stack(loaded);
  }

  void integer(const std::string& key, int64_t& value) override {
    bool first = true;
    for (size_t i = 0; i < slices_.size(); ++i) {
      if (slices_[i] == nullptr) continue;
      const int64_t loaded = read_integer(*slices_[i], key, whose_[i]);
      value = first ? loaded : std::max(value, loaded);
      first = false;
    }
  }

 private:
  const std::vector<torch::serialize::InputArchive*>& slices_;
  std::vector<std::string> whose_;
};

}  // namespace

void write_param_state(VisitableParamState& state, torch::serialize::OutputArchive& archive) {
  StateWriter writer(archive);
  state.visit(writer);
}

void read_param_state(VisitableParamState& fresh, torch::serialize::InputArchive& archive,
                      const std::string& param_name) {
  StateReader reader(archive, param_name);
  fresh.visit(reader);
}

void read_sliced_param_state(VisitableParamState& fresh,
                             const std::vector<torch::serialize::InputArchive*>& slices,
                             const std::vector<std::string>& slice_names, const std::string& param_name) {
  SlicedStateReader reader(slices, slice_names, param_name);
  fresh.visit(reader);
}

}  // namespace muonlab::optim
