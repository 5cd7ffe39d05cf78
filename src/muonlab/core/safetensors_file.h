// safetensors files (Hugging Face's format, readable from Python with the
// `safetensors` package): an 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets}, "__metadata__": {...}}, then
// the tensors' bytes, little-endian and row-major, back to back.
// Writes are atomic; reads check every offset and size against the file.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

namespace muonlab {

struct SafetensorsContent {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;  // in file order
  std::map<std::string, std::string> metadata;
};

// Tensors are written in the order given, from CPU copies. Supported dtypes:
// F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Fails naming the file and the tensor or field at fault.
SafetensorsContent load_safetensors(const std::string& path);

}  // namespace muonlab
