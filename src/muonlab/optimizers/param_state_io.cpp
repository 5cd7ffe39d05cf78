#include "muonlab/optimizers/param_state_io.h"

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

class StateReader : public ParamStateVisitor {
 public:
  StateReader(torch::serialize::InputArchive& archive, const std::string& param_name)
      : archive_(archive), param_name_(param_name) {}

  void tensor(const std::string& key, torch::Tensor& value) override {
    torch::Tensor loaded;
    if (!archive_.try_read(archive_key(key), loaded, /*is_buffer=*/true)) {
      fail("optimizer state of parameter '{}' lacks buffer '{}'", param_name_, key);
    }
    if (loaded.sizes() != value.sizes()) {
      fail("optimizer state of parameter '{}': buffer '{}' has shape {}, expected {}",
           param_name_, key, shape_string(loaded.sizes()), shape_string(value.sizes()));
    }
    value = loaded.to(value.options());
  }

  void integer(const std::string& key, int64_t& value) override {
    c10::IValue loaded;
    if (!archive_.try_read(archive_key(key), loaded) || !loaded.isInt()) {
      fail("optimizer state of parameter '{}' lacks integer '{}'", param_name_, key);
    }
    value = loaded.toInt();
  }

 private:
  torch::serialize::InputArchive& archive_;
  const std::string& param_name_;
};

// Each buffer the stack of the slices' own, each integer their largest; a
// slice saved without state (null) keeps the fresh state's.
class SlicedStateReader : public ParamStateVisitor {
 public:
  SlicedStateReader(const std::vector<torch::serialize::InputArchive*>& slices,
                    const std::vector<std::string>& slice_names, const std::string& param_name)
      : slices_(slices), slice_names_(slice_names), param_name_(param_name) {}

  void tensor(const std::string& key, torch::Tensor& value) override {
    TORCH_CHECK(value.dim() >= 1 && value.size(0) == static_cast<int64_t>(slices_.size()),
                "sliced optimizer state needs buffers with one row per slice");
    const auto slice_shape = value.sizes().slice(1);
    std::vector<torch::Tensor> loaded(slices_.size());
    for (size_t i = 0; i < slices_.size(); ++i) {
      if (slices_[i] == nullptr) {
        loaded[i] = value[static_cast<int64_t>(i)];
        continue;
      }
      if (!slices_[i]->try_read(archive_key(key), loaded[i], /*is_buffer=*/true)) {
        fail("optimizer state of '{}' (slice {} of parameter '{}') lacks buffer '{}'", slice_names_[i], i,
             param_name_, key);
      }
      if (loaded[i].sizes() != slice_shape) {
        fail("optimizer state of '{}' (slice {} of parameter '{}'): buffer '{}' has shape {}, expected {}",
             slice_names_[i], i, param_name_, key, shape_string(loaded[i].sizes()), shape_string(slice_shape));
      }
      loaded[i] = loaded[i].to(value.options());
    }
    value = torch::stack(loaded);
  }

  void integer(const std::string& key, int64_t& value) override {
    bool first = true;
    for (size_t i = 0; i < slices_.size(); ++i) {
      if (slices_[i] == nullptr) continue;
      c10::IValue loaded;
      if (!slices_[i]->try_read(archive_key(key), loaded) || !loaded.isInt()) {
        fail("optimizer state of '{}' (slice {} of parameter '{}') lacks integer '{}'", slice_names_[i], i,
             param_name_, key);
      }
      value = first ? loaded.toInt() : std::max(value, loaded.toInt());
      first = false;
    }
  }

 private:
  const std::vector<torch::serialize::InputArchive*>& slices_;
  const std::vector<std::string>& slice_names_;
  const std::string& param_name_;
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
