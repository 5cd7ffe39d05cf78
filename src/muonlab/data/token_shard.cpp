#include "muonlab/data/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "muonlab/core/errors.h"
#include "muonlab/data/shard_bus_error.h"
#include "muonlab/data/shard_header.h"

namespace muonlab::data {
namespace {

struct FileDescriptor {
  int fd;
  ~FileDescriptor() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

TokenShard::TokenShard(std::string path) : path_(std::move(path)) {
  FileDescriptor file{::open(path_.c_str(), O_RDONLY | O_CLOEXEC)};
  if (file.fd < 0) fail("cannot open shard '{}': {}", path_, std::strerror(errno));
  struct stat info {};
  if (::fstat(file.fd, &info) != 0) fail("cannot stat shard '{}': {}", path_, std::strerror(errno));
  if (!S_ISREG(info.st_mode)) fail("shard '{}' is not a regular file", path_);
  auto file_size = static_cast<uint64_t>(info.st_size);
  if (file_size == 0) parse_shard_header(nullptr, 0, 0, path_);  // fails: truncated

  void* mapping = ::mmap(nullptr, file_size, PROT_READ, MAP_SHARED, file.fd, 0);
  if (mapping == MAP_FAILED) fail("cannot map shard '{}': {}", path_, std::strerror(errno));
  mapping_ = mapping;
  mapping_bytes_ = file_size;
  try {
    const auto* bytes = static_cast<const unsigned char*>(mapping);
    const ShardHeader header = parse_shard_header(bytes, file_size, file_size, path_);
    token_count_ = header.token_count;
    token_bytes_ = header.token_bytes;
    tokens_ = bytes + kShardHeaderBytes;
    bus_error_slot_ = register_shard_mapping(mapping_, mapping_bytes_, path_);
  } catch (...) {
    ::munmap(mapping_, mapping_bytes_);
    throw;
  }
}

TokenShard::TokenShard(TokenShard&& other) noexcept
    : path_(std::move(other.path_)),
      mapping_(std::exchange(other.mapping_, nullptr)),
      mapping_bytes_(std::exchange(other.mapping_bytes_, 0)),
      tokens_(std::exchange(other.tokens_, nullptr)),
      token_count_(std::exchange(other.token_count_, 0)),
      token_bytes_(other.token_bytes_),
      bus_error_slot_(std::exchange(other.bus_error_slot_, -1)) {}

TokenShard::~TokenShard() {
  unregister_shard_mapping(bus_error_slot_);
  if (mapping_ != nullptr) ::munmap(mapping_, mapping_bytes_);
}

}  // namespace muonlab::data
