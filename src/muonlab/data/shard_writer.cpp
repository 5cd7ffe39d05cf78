#include "muonlab/data/shard_writer.h"

#include <fstream>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/shard_header.h"

namespace muonlab::data {

void write_shard(const std::string& path, const std::vector<int32_t>& tokens) {
  std::vector<unsigned char> body(2 * tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) {
    int32_t token = tokens[i];
    if (token < 0 || token > 65535) {
      fail("shard '{}': token {} at position {} does not fit uint16 (0-65535)", path, token, i);
    }
    body[2 * i] = static_cast<unsigned char>(token & 0xFF);
    body[2 * i + 1] = static_cast<unsigned char>(token >> 8);
  }
  auto header = make_shard_header(tokens.size());
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
