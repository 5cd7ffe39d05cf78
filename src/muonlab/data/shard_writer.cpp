#include "muonlab/data/shard_writer.h"

#include <fstream>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/shard_header.h"

namespace muonlab::data {

void write_shard(const std::string& path, const std::vector<int32_t>& tokens, const ShardFormat& format) {
  const size_t width = static_cast<size_t>(format.token_bytes);
  std::vector<unsigned char> body(width * tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    const int32_t token = tokens[i];
    if (token < 0 || (width == 2 && token > 65535)) {
      fail("shard '{}': token {} at position {} does not fit uint{} (0-{})", path, token, i, 8 * width,
           width == 2 ? "65535" : "2147483647");
    }
    for (size_t byte = 0; byte < width; ++byte) {
      body[width * i + byte] = static_cast<unsigned char>(static_cast<uint32_t>(token) >> (8 * byte));
    }
  }
  auto header = make_shard_header(tokens.size(), format);
  write_file_atomically(path, [&](const std::string& tmp_path) {
    std::ofstream out(tmp_path, std::ios::binary);
    if (!out) fail("cannot create shard '{}': does its folder exist and can it be written?", path);
    out.write(reinterpret_cast<const char*>(header.data()), header.size());
    out.write(reinterpret_cast<const char*>(body.data()), static_cast<std::streamsize>(body.size()));
    out.close();
    if (!out) fail("cannot write shard '{}' (disk full?)", path);
  });
}

}  // namespace muonlab::data
