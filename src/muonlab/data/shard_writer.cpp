#include "muonlab/data/shard_writer.h"

#include <utility>

#include "muonlab/core/errors.h"

namespace muonlab::data {

ShardFileWriter::ShardFileWriter(std::string path, const ShardFormat& format)
    : file_(std::move(path)), format_(format) {
  const auto placeholder = make_shard_header(0, format_);
  file_.append(placeholder.data(), placeholder.size());
}

void ShardFileWriter::append(const int32_t* tokens, size_t count) {
  const size_t width = static_cast<size_t>(format_.token_bytes);
  if (count > kMaxShardTokens - tokens_) {
    fail("shard '{}': more than {} tokens, the most its header can count", path(), kMaxShardTokens);
  }
  bytes_.resize(width * count);
  for (size_t i = 0; i < count; ++i) {
    const int32_t token = tokens[i];
    if (token < 0 || (width == 2 && token > 65535)) {
      fail("shard '{}': token {} at position {} does not fit uint{} (0-{})", path(), token, tokens_ + i,
           8 * width, width == 2 ? "65535" : "2147483647");
    }
    for (size_t byte = 0; byte < width; ++byte) {
      bytes_[width * i + byte] = static_cast<unsigned char>(static_cast<uint32_t>(token) >> (8 * byte));
    }
  }
  file_.append(bytes_.data(), bytes_.size());
  tokens_ += count;
}

void ShardFileWriter::finish() {
  const auto header = make_shard_header(tokens_, format_);
  file_.overwrite(0, header.data(), header.size());
  file_.commit();
}

void write_shard(const std::string& path, const std::vector<int32_t>& tokens, const ShardFormat& format) {
  ShardFileWriter shard(path, format);
  shard.append(tokens.data(), tokens.size());
  shard.finish();
}

}  // namespace muonlab::data
