// Newton-Schulz orthogonalization NS_K(M) (docs/algorithms.md,
// Newton-Schulz): an approximation of the polar factor msign(M) = U V^T built
// from matmuls only, so it runs in bf16 on tensor cores. Leading dimensions
// are batch dimensions: many same-shaped matrices run as one batched matmul.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "muonlab/core/enum_names.h"

namespace muonlab::optim {

// One step X <- a X + (b A + c A A) X with A = X X^T.
struct NsCoefficients {
  double a = 0, b = 0, c = 0;
  bool operator==(const NsCoefficients& o) const {
    return a == o.a && b == o.b && c == o.c;
  }
};

// The coefficients of every step and the input normalization.
// Step k (0-based) uses triples[min(k, triples.size() - 1)]: a one-triple
// schedule repeats, and a preset asked for more steps than it lists repeats
// its last triple (as the Polar Express reference does).
struct NsSchedule {
  std::string name;                   // "jordan", "taylor", "polar_express", "custom"
  std::vector<NsCoefficients> triples;
  double norm_scale = 1.0;            // X0 = M / (norm_scale * ||M||_F + eps)
  double eps = 1e-7;

  const NsCoefficients& step(int64_t k) const;
  bool operator==(const NsSchedule& o) const;
  bool operator!=(const NsSchedule& o) const { return !(*this == o); }
};

// Presets by name: "jordan" (default of every Muon implementation),
// "taylor" (classical quintic, converges to 1), "polar_express".
// Throws muonlab::Error naming the unknown value and the known ones.
NsSchedule ns_schedule(const std::string& name);
// The presets' names, in that order.
const std::vector<std::string>& ns_preset_names();

// A user-given list of triples, one per step.
NsSchedule ns_schedule_custom(std::vector<NsCoefficients> triples);

// Precision of the NS matmuls. kAuto is bf16 where the device multiplies
// bf16 natively (CUDA; CPUs with AVX512-BF16, AMX or ARM's BF16, about 5x
// fp32 there) and fp32 where bf16 would be emulated (core/native_bf16.h).
// NS is insensitive to bf16 rounding: every implementation of the field
// runs it in bf16 on GPUs.
enum class NsDtype { kAuto, kBFloat16, kFloat32, kFloat64 };
const EnumNames<NsDtype>& ns_dtype_names();  // "auto", "bf16", "fp32", "fp64"
// Also takes "bfloat16", "float32", "float64".
NsDtype parse_ns_dtype(const std::string& name);
std::string to_string(NsDtype dtype);
torch::Dtype resolve_ns_dtype(NsDtype dtype, const torch::Device& device);

// How the K steps are computed (docs/algorithms.md, Gram Newton-Schulz).
// kStandard updates X every step: 4 m^2 n + 2 m^3 FLOPs per step. kGram
// (Gram Newton-Schulz, Tri Dao, Jack Zhang, Noah Amsel and Berlin Chen,
// 2026) iterates on the m x m Gram matrix R = X X^T and the accumulated
// polynomial Q, touching the m x n X only at the start, at each restart and
// at the end; mathematically the same X_K, with fewer FLOPs where n is well
// above m (0.78x at n = 4 m, K = 5). In bf16, R drifts from the Gram matrix
// of the X it stands for, so every `gram_restart` steps X is rebuilt as Q X
// and R recomputed from it. Matrices where the Gram form would not save at
// least a tenth of the FLOPs (near-square ones) take the standard form.
enum class NsMethod { kStandard, kGram };
const EnumNames<NsMethod>& ns_method_names();  // "standard", "gram"
NsMethod parse_ns_method(const std::string& name);
std::string to_string(NsMethod method);

struct NewtonSchulzConfig {
  NsSchedule schedule = ns_schedule("jordan");
  int64_t steps = 5;
  NsDtype dtype = NsDtype::kAuto;
  NsMethod method = NsMethod::kStandard;
  int64_t gram_restart = 2;  // steps between restarts of the Gram form

  // Throws if steps < 0, if a custom schedule of several triples does not
  // list exactly `steps` of them (a silent truncation would be a trap), or
  // if gram_restart < 1.
  void validate() const;
  bool operator==(const NewtonSchulzConfig& o) const;
  bool operator!=(const NewtonSchulzConfig& o) const { return !(*this == o); }
};

// Called after step k (k = 0 is the normalized input) with X in the input's
// orientation; used by the alignment instrument.
using NsStepObserver = std::function<void(int64_t k, const torch::Tensor& X)>;

// NS_K of M, shape [..., r, c]. Works on X^T when r > c. Returns a tensor of
// M's shape and dtype. In the standard form FLOPs are dominated by
// 4 m^2 n + 2 m^3 per step and matrix, m = min(r, c), n = max(r, c).
torch::Tensor newton_schulz(const torch::Tensor& M,
                            const NewtonSchulzConfig& config,
                            const NsStepObserver& observer = nullptr);

// The K iterations alone, on a matrix X [r, c] already normalized and in
// the compute dtype, in X's own orientation: a tall X (r > c) takes the same
// polynomial as X (b A + c A A) with A = X^T X, so neither a transposed copy
// in nor one out is needed. Returns a contiguous [r, c] tensor of X's dtype.
torch::Tensor newton_schulz_iterations(const torch::Tensor& X, const NewtonSchulzConfig& config);

// Matmul FLOPs of NS_K on one r x c matrix (for benchmarks and MFU), in
// the standard form.
double newton_schulz_flops(int64_t rows, int64_t cols, int64_t steps);

// Matmul FLOPs of the form `config` computes an r x c matrix with: the Gram
// form's where config.method is kGram and it saves at least a tenth of the
// standard form's, the standard form's otherwise.
double newton_schulz_flops(int64_t rows, int64_t cols, const NewtonSchulzConfig& config);

// Whether `config` takes the Gram form for an r x c matrix.
bool uses_gram_form(int64_t rows, int64_t cols, const NewtonSchulzConfig& config);

}  // namespace muonlab::optim
