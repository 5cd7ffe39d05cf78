// Per-parameter optimizer state that can be written and read by parameter
// name. Each optimizer's state class lists its buffers once, in visit();
// saving, loading and shape checking all walk that list.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>

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

}  // namespace muonlab::optim
