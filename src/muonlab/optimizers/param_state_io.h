// Per-parameter optimizer state that can be written and read by parameter
// name. Each optimizer's state class lists its buffers once, in visit();
// saving, loading and shape checking all walk that list.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace muonlab::optim {

class ParamStateVisitor {
 public:
  virtual ~ParamStateVisitor() = default;
  virtual void tensor(const std::string& key, torch::Tensor& value) = 0;
  virtual void integer(const std::string& key, int64_t& value) = 0;
};

class VisitableParamState {
 public:
  virtual ~VisitableParamState() = default;
  virtual void visit(ParamStateVisitor& visitor) = 0;
};

// Writes every buffer of `state` into `archive` (keys prefixed "state_").
void write_param_state(VisitableParamState& state, torch::serialize::OutputArchive& archive);

// Reads into `fresh`, a newly made state whose buffers have the expected
// shapes. Throws muonlab::Error naming `param_name` and the buffer when a
// buffer is missing or its shape differs.
void read_param_state(VisitableParamState& fresh, torch::serialize::InputArchive& archive,
                      const std::string& param_name);

// Reads into `fresh`, the state of a parameter whose state was saved as
// that of its slices along dim 0 (entry i: slice i, named slice_names[i];
// null where the slice was saved without state): each buffer becomes the
// stack of the slices' buffers, each checked against its slice of the
// expected shape, a slice without state keeping fresh's; each integer (a
// step count) the largest of the slices'. Slices differ where some sat out
// steps without a gradient (a MoE expert no token chose, in the per-expert
// layout): the stack steps as one from then on, and a lagging slice's bias
// corrections use the larger count, a difference that fades as the count
// grows. Throws muonlab::Error naming the slice and the buffer.
void read_sliced_param_state(VisitableParamState& fresh,
                             const std::vector<torch::serialize::InputArchive*>& slices,
                             const std::vector<std::string>& slice_names, const std::string& param_name);

}  // namespace muonlab::optim
