// Shared helpers for muonlab's tests: seeded matrices with known spectra and
// tensor comparisons with readable failure messages.
#pragma once

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <sstream>
#include <string>

namespace muonlab::testing {

inline torch::Tensor random_matrix(int64_t rows, int64_t cols, uint64_t seed,
                                   torch::Dtype dtype = torch::kFloat64) {
  torch::manual_seed(seed);
  return torch::randn({rows, cols}, torch::dtype(dtype));
}

// Random orthonormal columns, shape rows x cols (rows >= cols).
inline torch::Tensor random_orthonormal(int64_t rows, int64_t cols, uint64_t seed) {
  auto qr = torch::linalg_qr(random_matrix(rows, cols, seed));
  return std::get<0>(qr);
}

// U diag(s) V^T with the given singular values (descending), float64.
inline torch::Tensor matrix_with_singular_values(int64_t rows, int64_t cols,
                                                 const torch::Tensor& s, uint64_t seed) {
  const auto k = s.size(0);
  const auto U = random_orthonormal(rows, k, seed);
  const auto V = random_orthonormal(cols, k, seed + 1);
  return torch::matmul(U * s.to(torch::kFloat64).unsqueeze(0), V.t());
}

// Singular values log-spaced from 1 down to 1/condition.
inline torch::Tensor ill_conditioned(int64_t rows, int64_t cols, double condition,
                                     uint64_t seed) {
  const auto k = std::min(rows, cols);
  const auto s = torch::logspace(0, -std::log10(condition), k, 10.0, torch::kFloat64);
  return matrix_with_singular_values(rows, cols, s, seed);
}

inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

#define EXPECT_TENSOR_NEAR(a, b, tol)                                                  \
  do {                                                                                 \
    ASSERT_EQ((a).sizes(), (b).sizes());                                               \
    const double muonlab_diff = ::muonlab::testing::max_abs_diff((a), (b));            \
    EXPECT_LE(muonlab_diff, (tol)) << #a " and " #b " differ by " << muonlab_diff;     \
  } while (0)

// Runs `body` and returns the muonlab::Error message it throws ("" if none).
template <typename Body>
std::string error_message(Body&& body) {
  try {
    body();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

// What `saveable.save(archive)` writes, as bytes (an optimizer's whole state).
template <typename Saveable>
std::string saved_bytes(const Saveable& saveable) {
  torch::serialize::OutputArchive archive;
  saveable.save(archive);
  std::ostringstream bytes;
  archive.save_to(bytes);
  return bytes.str();
}

// `loadable.load(archive)` from such bytes.
template <typename Loadable>
void load_bytes(Loadable& loadable, const std::string& bytes) {
  std::istringstream in(bytes);
  torch::serialize::InputArchive archive;
  archive.load_from(in);
  loadable.load(archive);
}

}  // namespace muonlab::testing

// Passes when `text` contains `part`, and shows both when it does not.
// CUDA tests run where a GPU is present and skip, saying why, elsewhere.
#define MUONLAB_SKIP_WITHOUT_CUDA() \
  if (!torch::cuda::is_available()) GTEST_SKIP() << "needs a CUDA device; none is visible here"

#define EXPECT_CONTAINS(text, part)                                                \
  do {                                                                             \
    const std::string muonlab_text = (text);                                       \
    EXPECT_NE(muonlab_text.find(part), std::string::npos)                          \
        << "expected \"" << muonlab_text << "\" to contain \"" << (part) << "\"";  \
  } while (0)
