// safetensors files: the exact bytes of a small file as the format's spec
// lays them out, a round trip of every dtype, and one test per kind of bad file.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "muonlab/core/safetensors_file.h"
#include "test_util.h"

namespace muonlab {
namespace {

std::string scratch(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("muonlab_st_" + std::to_string(::getpid()) + "_" + name)).string();
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::string& bytes) { std::ofstream(path, std::ios::binary) << bytes; }

TEST(Safetensors, BytesFollowTheSpec) {
  std::string path = scratch("spec.safetensors");
  save_safetensors(path, {{"w", torch::tensor({1.0f, -2.0f})}}, {{"format", "pt"}});
  // Header JSON, padded with spaces to a multiple of 8, after its u64 length.
  std::string json = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  json.append((8 - json.size() % 8) % 8, ' ');
  std::string expected(8, '\0');
  uint64_t length = json.size();
  std::memcpy(expected.data(), &length, 8);  // little-endian on the machines this runs on
  expected += json;
  float values[2] = {1.0f, -2.0f};
  expected.append(reinterpret_cast<const char*>(values), sizeof(values));
  EXPECT_EQ(read_bytes(path), expected);
  std::remove(path.c_str());
}

TEST(Safetensors, RoundTripsEveryDtypeInOrder) {
  std::string path = scratch("round.safetensors");
  std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"f64", torch::randn({2, 3}, torch::kFloat64)},
      {"f32", torch::randn({4}).t()},
      {"bf16", torch::randn({3, 2}).to(torch::kBFloat16)},
      {"f16", torch::randn({5}).to(torch::kFloat16)},
      {"i64", torch::arange(6, torch::kInt64).view({2, 3})},
      {"i32", torch::arange(3, torch::kInt32)},
      {"u8", torch::arange(4, torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5)},
      {"empty", torch::empty({0, 4})},
      {"strided", torch::randn({4, 6}).t()},  // non-contiguous input
  };
  save_safetensors(path, tensors, {{"step", "12"}});
  SafetensorsContent content = load_safetensors(path);
  ASSERT_EQ(content.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    EXPECT_EQ(content.tensors[i].first, tensors[i].first);
    EXPECT_EQ(content.tensors[i].second.scalar_type(), tensors[i].second.scalar_type()) << tensors[i].first;
    EXPECT_TRUE(torch::equal(content.tensors[i].second, tensors[i].second)) << tensors[i].first;
  }
  EXPECT_EQ(content.metadata.at("step"), "12");
  std::remove(path.c_str());
}

std::string load_error(const std::string& bytes) {
  std::string path = scratch("bad.safetensors");
  write_bytes(path, bytes);
  std::string error = testing::error_message([&] { load_safetensors(path); });
  std::remove(path.c_str());
  return error;
}

std::string with_header(const std::string& json, const std::string& data) {
  std::string bytes(8, '\0');
  uint64_t length = json.size();
  std::memcpy(bytes.data(), &length, 8);
  return bytes + json + data;
}

TEST(SafetensorsErrors, EachNamesTheProblem) {
  EXPECT_CONTAINS(load_error("abc"), "shorter than the header length");
  EXPECT_CONTAINS(load_error(with_header("{}", "").substr(0, 9)), "runs past the end");
  EXPECT_CONTAINS(load_error(with_header("{nope", "")), "the header is not valid JSON");
  EXPECT_CONTAINS(load_error(with_header(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "tensor 'w' of shape [3] needs 12 bytes");
  EXPECT_CONTAINS(load_error(with_header(R"({"w":{"dtype":"C64","shape":[1],"data_offsets":[0,8]}})", std::string(8, '\0'))),
                  "tensor 'w' has unsupported dtype 'C64'");
  EXPECT_CONTAINS(load_error(with_header(R"({"w":{"dtype":"F32","shape":[1]}})", "")), "tensor 'w' has a malformed entry");
  EXPECT_CONTAINS(testing::error_message([] { save_safetensors(scratch("x"), {{"c", torch::zeros({1}, torch::kComplexFloat)}}); }),
                  "tensor 'c' has dtype");
}

}  // namespace
}  // namespace muonlab
