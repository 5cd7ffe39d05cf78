// AdamW with decoupled weight decay, for the parameters Muon must not touch.
// Same arithmetic, in the same order, as torch::optim::AdamW (without
// amsgrad), so the two agree to rounding; here it also gets parameter
// names, the non-finite policy and name-keyed state files.
#pragma once

#include <torch/torch.h>

#include <string>
#include <tuple>
#include <vector>

#include "muonlab/optimizers/optimizer_base.h"
#include "muonlab/optimizers/param_role.h"

namespace muonlab::optim {

// Betas default to (0.9, 0.95) as in the Muon papers' AdamW (torch's own
// default is 0.999); weight decay defaults to torch's 0.01.
struct AdamWOptions : public torch::optim::OptimizerCloneableOptions<AdamWOptions> {
  AdamWOptions(double lr = 1e-3) : lr_(lr) {}  // NOLINT: implicit as in torch::optim
  TORCH_ARG(double, lr);
  typedef std::tuple<double, double> betas_t;
  TORCH_ARG(betas_t, betas) = std::make_tuple(0.9, 0.95);
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 1e-2;
  TORCH_ARG(bool, bias_correction) = true;

 public:
  double get_lr() const override { return lr(); }
  void set_lr(const double lr) override { this->lr(lr); }
  void validate() const;
};

struct AdamWParamState : public torch::optim::OptimizerCloneableParamState<AdamWParamState>,
                         public VisitableParamState {
  TORCH_ARG(int64_t, step) = 0;
  TORCH_ARG(torch::Tensor, exp_avg);
  TORCH_ARG(torch::Tensor, exp_avg_sq);

 public:
  void visit(ParamStateVisitor& visitor) override {
    visitor.integer("step", step_);
    visitor.tensor("exp_avg", exp_avg_);
    visitor.tensor("exp_avg_sq", exp_avg_sq_);
  }
};

// One parameter's AdamW step on explicit state (updated in place); `step`
// is the 1-based step being taken. Contiguous fp32 CPU tensors take one
// pass (fused_adamw_cpu.h), others LibTorch's ops. AdamW::update and the
// Python binding both call it.
void adamw_step(torch::Tensor& param, const torch::Tensor& grad, torch::Tensor& exp_avg,
                torch::Tensor& exp_avg_sq, int64_t step, const AdamWOptions& options);

// Parameters that take one AdamW step together: one device, one dtype and
// one step count.
struct AdamWTensorLists {
  std::vector<torch::Tensor> params, grads, exp_avgs, exp_avg_sqs;
};

// adamw_step on every tensor of `lists` at once: PyTorch's fused AdamW
// kernel on CUDA (LibTorch 2.x, with bias correction), else multi-tensor
// (_foreach) ops in adamw_step's order, a few launches for the whole list on
// a GPU; on the CPU adamw_step tensor by tensor.
void adamw_multi_tensor_step(AdamWTensorLists& lists, int64_t step, const AdamWOptions& options);

// One optimizer step's parameters sorted into AdamWTensorLists by device,
// dtype and step count (usually one list), then stepped list by list.
// AdamW::update and the Python binding both fill one.
class AdamWBatches {
 public:
  // `step`: the 1-based step this parameter is taking.
  void add(const torch::Tensor& param, const torch::Tensor& grad, const torch::Tensor& exp_avg,
           const torch::Tensor& exp_avg_sq, int64_t step);
  void step_all(const AdamWOptions& options);

 private:
  struct Batch {
    torch::Device device;
    torch::Dtype dtype;
    int64_t step;
    AdamWTensorLists lists;
  };
  std::vector<Batch> batches_;
};

class AdamW : public OptimizerBase {
 public:
  explicit AdamW(std::vector<torch::optim::OptimizerParamGroup> param_groups,
                 AdamWOptions defaults = {});
  explicit AdamW(std::vector<torch::Tensor> params, AdamWOptions defaults = {});
  AdamW(const torch::OrderedDict<std::string, torch::Tensor>& named, AdamWOptions defaults = {});
  AdamW(const std::vector<TaggedParam>& tagged, AdamWOptions defaults = {});

  std::string kind() const override { return "adamw"; }

 protected:
  void update() override;
  std::unique_ptr<torch::optim::OptimizerParamState> make_state(
      const torch::Tensor& param) const override;

 private:
  // Each group's options, and each parameter's dtype (param_dtype.h).
  void validate_parameters() const;
};

}  // namespace muonlab::optim
