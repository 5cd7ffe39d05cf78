// libFuzzer target for the llm.c shard header (shard_header.h) and the
// memory-mapped reader (token_shard.h). The input is the start of a shard
// file. Properties, each checked against an independent reference model:
//   - parse_shard_header returns the token count and width exactly when the
//     header is valid (uint16: magic 20240520 version 1; uint32: magic
//     20240801 version 7) for the given file size, and otherwise throws muonlab::Error
//     (naming the path); nothing else escapes, and ASan/UBSan stay quiet.
//     File sizes tried: the input's own size, the size its count implies,
//     a raw 64-bit size read from the header's reserved words, and the
//     input's size with one byte fewer readable (a short read).
//   - make_shard_header(count, format) parses back to count and format for
//     count <= INT32_MAX, and throws muonlab::Error above it.
//   - TokenShard opens the input written to a file exactly when the header
//     is valid, and then reads every token as the little-endian uint16 at
//     1024 + 2 * index (uint32 at 1024 + 4 * index); a moved-from shard hands its mapping over intact.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <utility>

#include "muonlab/core/errors.h"
#include "muonlab/data/shard_header.h"
#include "muonlab/data/token_shard.h"

namespace {

using muonlab::data::kMaxShardTokens;
using muonlab::data::kShardHeaderBytes;
using muonlab::data::kUint16Shards;
using muonlab::data::kUint32Shards;
using muonlab::data::ShardFormat;

[[noreturn]] void violated(const char* what, const std::string& detail = "") {
  std::fprintf(stderr, "fuzz_shard_header: property violated: %s%s%s\n", what, detail.empty() ? "" : ": ",
               detail.c_str());
  __builtin_trap();
}

uint32_t load_u32(const uint8_t* data, size_t size, size_t at) {
  uint32_t value = 0;
  for (size_t i = 0; i < 4; ++i) {
    if (at + i < size) value |= static_cast<uint32_t>(data[at + i]) << (8 * i);
  }
  return value;
}

uint64_t load_u64(const uint8_t* data, size_t size, size_t at) {
  return load_u32(data, size, at) | static_cast<uint64_t>(load_u32(data, size, at + 4)) << 32;
}

// Bytes per token the magic at the start of `data` names (2 or 4), or 0.
int token_bytes_of(const uint8_t* data, size_t available) {
  const auto magic = static_cast<int32_t>(load_u32(data, available, 0));
  const auto version = static_cast<int32_t>(load_u32(data, available, 4));
  if (magic == 20240520 && version == 1) return 2;
  if (magic == 20240801 && version == 7) return 4;
  return 0;
}

// The reference model: the count when `data` (of which `available` bytes are
// readable) heads a valid shard of `file_size` bytes, or -1.
int64_t reference_count(const uint8_t* data, size_t available, uint64_t file_size) {
  if (available < kShardHeaderBytes || file_size < kShardHeaderBytes) return -1;
  const int width = token_bytes_of(data, available);
  if (width == 0) return -1;
  auto count = static_cast<int32_t>(load_u32(data, available, 8));
  if (count < 0) return -1;
  if (file_size != kShardHeaderBytes + static_cast<uint64_t>(width) * static_cast<uint64_t>(count)) return -1;
  return count;
}

void check_parse(const uint8_t* data, size_t available, uint64_t file_size) {
  static const std::string path = "fuzz/shard.bin";
  int64_t expected = reference_count(data, available, file_size);
  try {
    const auto header = muonlab::data::parse_shard_header(data, available, file_size, path);
    const uint64_t count = header.token_count;
    if (expected < 0) violated("parse_shard_header accepted an invalid header", "count " + std::to_string(count));
    if (count != static_cast<uint64_t>(expected)) {
      violated("parse_shard_header returned the wrong count",
               std::to_string(count) + " vs " + std::to_string(expected));
    }
    if (header.token_bytes != token_bytes_of(data, available)) violated("parse_shard_header returned the wrong width");
    if (file_size != kShardHeaderBytes + static_cast<uint64_t>(header.token_bytes) * count) {
      violated("returned count disagrees with the file size");
    }
  } catch (const muonlab::Error& error) {
    if (expected >= 0) violated("parse_shard_header rejected a valid header", error.what());
    if (std::string(error.what()).find(path) == std::string::npos) {
      violated("error message does not name the path", error.what());
    }
  }
}

void check_round_trip(uint64_t count, const ShardFormat& format) {
  try {
    auto header = muonlab::data::make_shard_header(count, format);
    if (count > kMaxShardTokens) violated("make_shard_header accepted a count above INT32_MAX");
    for (size_t i = 12; i < header.size(); ++i) {
      if (header[i] != 0) violated("make_shard_header left a reserved byte nonzero");
    }
    const auto parsed = muonlab::data::parse_shard_header(
        header.data(), header.size(), kShardHeaderBytes + static_cast<uint64_t>(format.token_bytes) * count,
        "round-trip");
    if (parsed.token_count != count || parsed.token_bytes != format.token_bytes) {
      violated("make_shard_header does not parse back", std::to_string(count));
    }
  } catch (const muonlab::Error& error) {
    if (count <= kMaxShardTokens) violated("round trip failed for a representable count", error.what());
  }
}

// Where the input goes as a file for TokenShard: a memfd, opened by its
// /proc path, so the many rewrites touch no disk (rewriting a real file in
// place can make ext4 flush it on every close). Falls back to a temp file,
// created anew each time for the same reason.
class ShardFile {
 public:
  ShardFile() {
    fd_ = ::memfd_create("muonlab-fuzz-shard", MFD_CLOEXEC);
    if (fd_ >= 0) {
      path_ = "/proc/self/fd/" + std::to_string(fd_);
      return;
    }
    const char* dir = std::getenv("TMPDIR");
    path_ = std::string(dir != nullptr && *dir != '\0' ? dir : "/tmp") + "/muonlab-fuzz-shard-XXXXXX";
    int fd = ::mkstemp(path_.data());
    if (fd < 0) die("mkstemp");
    ::close(fd);
  }
  ~ShardFile() {
    if (fd_ >= 0) {
      ::close(fd_);
    } else {
      ::unlink(path_.c_str());
    }
  }
  ShardFile(const ShardFile&) = delete;
  ShardFile& operator=(const ShardFile&) = delete;

  const std::string& path() const { return path_; }

  void write(const uint8_t* data, size_t size) {
    int fd = fd_;
    if (fd_ >= 0) {
      if (::ftruncate(fd_, 0) != 0) die("ftruncate");
    } else {
      ::unlink(path_.c_str());
      fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
      if (fd < 0) die("open");
    }
    for (size_t done = 0; done < size;) {
      ssize_t wrote = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
      if (wrote <= 0) die("write");
      done += static_cast<size_t>(wrote);
    }
    if (fd != fd_) ::close(fd);
  }

 private:
  [[noreturn]] static void die(const char* what) {
    std::perror(what);
    std::abort();
  }

  int fd_ = -1;
  std::string path_;
};

void check_tokens(const muonlab::data::TokenShard& shard, const uint8_t* data, size_t size) {
  const int width = token_bytes_of(data, size);
  if (shard.token_bytes() != width) violated("TokenShard has the wrong token width");
  if (kShardHeaderBytes + static_cast<uint64_t>(width) * shard.size() != size) {
    violated("TokenShard size disagrees with the file");
  }
  for (uint64_t i = 0; i < shard.size(); ++i) {
    const size_t at = kShardHeaderBytes + static_cast<size_t>(width) * i;
    uint32_t expected = 0;
    for (int byte = width - 1; byte >= 0; --byte) expected = expected << 8 | data[at + static_cast<size_t>(byte)];
    if (shard[i] != expected) violated("TokenShard read a wrong token", std::to_string(i));
  }
}

void check_token_shard(const uint8_t* data, size_t size) {
  static ShardFile file;
  file.write(data, size);
  const std::string& path = file.path();
  int64_t expected = reference_count(data, size, size);
  try {
    muonlab::data::TokenShard shard(path);
    if (expected < 0) violated("TokenShard opened an invalid shard");
    if (shard.size() != static_cast<uint64_t>(expected)) violated("TokenShard has the wrong size");
    if (shard.path() != path) violated("TokenShard has the wrong path");
    check_tokens(shard, data, size);
    muonlab::data::TokenShard moved(std::move(shard));
    if (shard.size() != 0) violated("moved-from TokenShard still has tokens");
    check_tokens(moved, data, size);
  } catch (const muonlab::Error& error) {
    if (expected >= 0) violated("TokenShard rejected a valid shard", error.what());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The input is the whole file.
  check_parse(data, size, size);
  // The file is as long as the header's count says (in either width),
  // whatever the input's length.
  check_parse(data, size, kShardHeaderBytes + 2 * static_cast<uint64_t>(load_u32(data, size, 8)));
  check_parse(data, size, kShardHeaderBytes + 4 * static_cast<uint64_t>(load_u32(data, size, 8)));
  // Any file size at all, from the reserved words 3-4 (huge and tiny sizes).
  check_parse(data, size, load_u64(data, size, 12));
  // Fewer bytes readable than the file holds (a short read).
  if (size > 0) check_parse(data, size - 1, size);

  for (const ShardFormat* format : {&kUint16Shards, &kUint32Shards}) {
    check_round_trip(load_u64(data, size, 8), *format);
    check_round_trip(load_u32(data, size, 8), *format);
  }

  check_token_shard(data, size);
  return 0;
}
