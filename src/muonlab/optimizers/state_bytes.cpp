#include "muonlab/optimizers/state_bytes.h"

#include "muonlab/core/errors.h"
#include "muonlab/optimizers/param_state_io.h"

namespace muonlab::optim {
namespace {

class ByteCounter : public ParamStateVisitor {
 public:
  void tensor(const std::string& /*key*/, torch::Tensor& value) override {
    if (value.defined()) bytes += static_cast<int64_t>(value.nbytes());
  }
  void integer(const std::string& /*key*/, int64_t& /*value*/) override {}
  int64_t bytes = 0;
};

}  // namespace

int64_t optimizer_state_bytes(torch::optim::Optimizer& optimizer) {
  ByteCounter counter;
  for (auto& [key, state] : optimizer.state()) {
    auto* visitable = dynamic_cast<VisitableParamState*>(state.get());
    if (visitable == nullptr) fail("optimizer_state_bytes: a parameter's state does not list its buffers");
    visitable->visit(counter);
  }
  return counter.bytes;
}

int64_t optimizer_parameter_count(const torch::optim::Optimizer& optimizer) {
  int64_t count = 0;
  for (const auto& group : optimizer.param_groups()) {
    for (const auto& p : group.params()) count += p.numel();
  }
  return count;
}

}  // namespace muonlab::optim
