#include "muonlab/core/safetensors_file.h"

#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/read_file.h"

namespace muonlab {
namespace {

struct DtypeName {
  torch::Dtype dtype;
  const char* name;
};

constexpr DtypeName kDtypes[] = {
    {torch::kFloat64, "F64"}, {torch::kFloat32, "F32"}, {torch::kFloat16, "F16"}, {torch::kBFloat16, "BF16"},
    {torch::kInt64, "I64"},   {torch::kInt32, "I32"},   {torch::kInt16, "I16"},   {torch::kInt8, "I8"},
    {torch::kUInt8, "U8"},    {torch::kBool, "BOOL"},
};

const char* dtype_name(torch::Dtype dtype, const std::string& path, const std::string& tensor) {
  for (const auto& entry : kDtypes) {
    if (entry.dtype == dtype) return entry.name;
  }
  fail("'{}': tensor '{}' has dtype {}, which safetensors files here do not store", path, tensor,
       c10::toString(dtype));
}

torch::Dtype dtype_of(const std::string& name, const std::string& path, const std::string& tensor) {
  for (const auto& entry : kDtypes) {
    if (name == entry.name) return entry.dtype;
  }
  fail("'{}': tensor '{}' has unsupported dtype '{}'", path, tensor, name);
}

uint64_t read_u64_le(const unsigned char* bytes) {
  uint64_t value = 0;
  for (int i = 7; i >= 0; --i) value = (value << 8) | bytes[i];
  return value;
}

void write_u64_le(uint64_t value, std::string& out) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((value >> (8 * i)) & 0xFF));
}

}  // namespace

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> bodies;
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__" || header.contains(name)) fail("'{}': tensor name '{}' is reserved or repeated", path, name);
    torch::Tensor body = tensor.detach().to(torch::kCPU).contiguous();
    uint64_t bytes = body.numel() * body.element_size();
    header[name] = {{"dtype", dtype_name(body.scalar_type(), path, name)},
                    {"shape", body.sizes().vec()},
                    {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    bodies.push_back(body);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');  // the reference writer aligns the data to 8 bytes
  std::string prefix;
  write_u64_le(json.size(), prefix);
  write_bytes_atomically(path, [&](const AppendBytes& append) {
    append(prefix.data(), prefix.size());
    append(json.data(), json.size());
    for (const auto& body : bodies) append(body.data_ptr(), body.numel() * body.element_size());
  });
}

SafetensorsContent load_safetensors(const std::string& path) {
  std::string file = read_whole_file(path);
  if (file.size() < 8) fail("'{}' is not a safetensors file: {} bytes, shorter than the header length", path, file.size());
  uint64_t header_size = read_u64_le(reinterpret_cast<const unsigned char*>(file.data()));
  if (header_size > file.size() - 8) {
    fail("'{}': header length {} runs past the end of the {}-byte file", path, header_size, file.size());
  }
  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(file.substr(8, header_size));
  } catch (const nlohmann::json::exception& error) {
    fail("'{}': the header is not valid JSON: {}", path, error.what());
  }
  if (!header.is_object()) fail("'{}': the header is not a JSON object", path);
  const char* data = file.data() + 8 + header_size;
  const uint64_t data_size = file.size() - 8 - header_size;

  SafetensorsContent content;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) fail("'{}': metadata '{}' is not a string", path, key);
        content.metadata[key] = value.get<std::string>();
      }
      continue;
    }
    try {
      torch::Dtype dtype = dtype_of(entry.at("dtype").get<std::string>(), path, name);
      std::vector<int64_t> shape = entry.at("shape").get<std::vector<int64_t>>();
      auto offsets = entry.at("data_offsets").get<std::vector<uint64_t>>();
      torch::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(dtype));
      uint64_t bytes = tensor.numel() * tensor.element_size();
      if (offsets.size() != 2 || offsets[0] > offsets[1] || offsets[1] > data_size || offsets[1] - offsets[0] != bytes) {
        fail("'{}': tensor '{}' of shape {} needs {} bytes, but its data_offsets {} do not fit the {} data bytes",
             path, name, entry.at("shape").dump(), bytes, entry.at("data_offsets").dump(), data_size);
      }
      std::memcpy(tensor.data_ptr(), data + offsets[0], bytes);
      content.tensors.emplace_back(name, tensor);
    } catch (const nlohmann::json::exception& error) {
      fail("'{}': tensor '{}' has a malformed entry: {}", path, name, error.what());
    }
  }
  return content;
}

}  // namespace muonlab
