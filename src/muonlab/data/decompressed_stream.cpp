#include "muonlab/data/decompressed_stream.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include <zlib.h>
#ifdef MUONLAB_ZSTD
#include <zstd.h>
#endif

#include "muonlab/core/errors.h"

namespace muonlab::data {
namespace {

bool ends_with(const std::string& text, const char* suffix) {
  const size_t length = std::strlen(suffix);
  return text.size() >= length && text.compare(text.size() - length, length, suffix) == 0;
}

}  // namespace

bool is_compressed_file_name(const std::string& path) { return ends_with(path, ".gz") || ends_with(path, ".zst"); }

// Decompresses into an output buffer, a buffer at a time.
class DecompressedStream::Decoder {
 public:
  explicit Decoder(const std::string& path) : path_(path), file_(path, std::ios::binary), input_(1 << 20) {
    if (!file_) fail("cannot open '{}': {}", path, std::strerror(errno));
  }
  virtual ~Decoder() = default;

  size_t read(char* out, size_t size) {
    if (begin_ == end_ && !produce()) return 0;
    const size_t taken = std::min(size, end_ - begin_);
    std::memcpy(out, output_.data() + begin_, taken);
    begin_ += taken;
    return taken;
  }

 protected:
  // Decompresses more into output_; false at the stream's clean end.
  virtual bool produce() = 0;

  // Reads the next piece of the file into input_; false at its end.
  bool refill() {
    file_.read(input_.data(), static_cast<std::streamsize>(input_.size()));
    input_size_ = static_cast<size_t>(file_.gcount());
    input_used_ = 0;
    at_end_ = input_size_ == 0;
    return !at_end_;
  }

  std::string path_;
  std::ifstream file_;
  std::vector<char> input_;
  size_t input_size_ = 0, input_used_ = 0;
  bool at_end_ = false;  // the whole file read
  std::vector<char> output_ = std::vector<char>(1 << 20);
  size_t begin_ = 0, end_ = 0;  // the output not yet handed out
};

namespace {

// Inflated with inflate rather than gzread, which some zlib builds let end
// quietly at a cut stream or read as plain data after a bad header.
class GzipDecoder : public DecompressedStream::Decoder {
 public:
  explicit GzipDecoder(const std::string& path) : Decoder(path) {
    if (inflateInit2(&stream_, 15 + 16) != Z_OK) fail("zlib could not start inflating '{}'", path);
  }
  ~GzipDecoder() override { inflateEnd(&stream_); }

 protected:
  bool produce() override {
    for (;;) {
      if (stream_.avail_in == 0 && !at_end_ && refill()) {
        stream_.next_in = reinterpret_cast<Bytef*>(input_.data());
        stream_.avail_in = static_cast<uInt>(input_size_);
      }
      if (stream_.avail_in == 0 && at_end_ && member_ended_) return false;  // a whole stream (or an empty file)
      if (member_ended_) {
        inflateReset(&stream_);
        member_ended_ = false;
      }
      stream_.next_out = reinterpret_cast<Bytef*>(output_.data());
      stream_.avail_out = static_cast<uInt>(output_.size());
      const int result = inflate(&stream_, Z_NO_FLUSH);
      if (result != Z_OK && result != Z_STREAM_END && result != Z_BUF_ERROR) {
        fail("'{}' is not valid gzip: {}", path_, stream_.msg ? stream_.msg : "inflate failed");
      }
      member_ended_ = result == Z_STREAM_END;
      begin_ = 0;
      end_ = output_.size() - stream_.avail_out;
      if (end_ > 0) return true;
      if (at_end_ && stream_.avail_in == 0 && !member_ended_) {
        fail("'{}' is not valid gzip: the stream is cut short", path_);
      }
    }
  }

 private:
  z_stream stream_{};
  bool member_ended_ = true;  // at the end of a member, or before the first
};

#ifdef MUONLAB_ZSTD
class ZstdDecoder : public DecompressedStream::Decoder {
 public:
  explicit ZstdDecoder(const std::string& path) : Decoder(path), context_(ZSTD_createDCtx()) {
    if (context_ == nullptr) fail("libzstd could not start decompressing '{}'", path);
  }
  ~ZstdDecoder() override { ZSTD_freeDCtx(context_); }

 protected:
  bool produce() override {
    for (;;) {
      if (input_used_ == input_size_ && !at_end_) read_any_ |= refill();
      ZSTD_inBuffer in{input_.data(), input_size_, input_used_};
      ZSTD_outBuffer out{output_.data(), output_.size(), 0};
      const size_t result = ZSTD_decompressStream(context_, &out, &in);
      if (ZSTD_isError(result)) fail("'{}' is not valid Zstandard: {}", path_, ZSTD_getErrorName(result));
      // A call that did nothing (no input left) says what the next frame
      // needs, not whether the last one ended.
      if (in.pos != input_used_ || out.pos > 0) pending_ = result;
      input_used_ = in.pos;
      begin_ = 0;
      end_ = out.pos;
      if (end_ > 0) return true;
      if (at_end_ && input_used_ == input_size_) {
        if (!read_any_) fail("'{}' is not valid Zstandard: the file is empty", path_);
        if (pending_ != 0) fail("'{}' is not valid Zstandard: the stream is cut short", path_);
        return false;
      }
    }
  }

 private:
  ZSTD_DCtx* context_;
  size_t pending_ = 0;  // 0 at the end of a frame
  bool read_any_ = false;
};
#endif

}  // namespace

DecompressedStream::DecompressedStream(const std::string& path) : path_(path) { start(); }

DecompressedStream::~DecompressedStream() = default;

void DecompressedStream::start() {
  position_ = 0;
  if (ends_with(path_, ".gz")) {
    decoder_ = std::make_unique<GzipDecoder>(path_);
    return;
  }
#ifdef MUONLAB_ZSTD
  if (ends_with(path_, ".zst")) {
    decoder_ = std::make_unique<ZstdDecoder>(path_);
    return;
  }
#else
  if (ends_with(path_, ".zst")) {
    fail("'{}' is Zstandard, which this build of muonlab does not read: install libzstd-dev and rebuild, or "
         "decompress it (zstd -d)", path_);
  }
#endif
  fail("'{}' is neither gzip (.gz) nor Zstandard (.zst)", path_);
}

size_t DecompressedStream::read(char* out, size_t size) {
  size_t taken = 0;
  while (taken < size) {
    const size_t got = decoder_->read(out + taken, size - taken);
    if (got == 0) break;
    taken += got;
  }
  position_ += taken;
  return taken;
}

void DecompressedStream::seek(uint64_t offset) {
  if (offset == position_) return;  // documents read in order: the usual case, at no cost
  if (offset < position_) start();
  std::vector<char> skipped(1 << 16);
  while (position_ < offset) {
    if (read(skipped.data(), std::min<uint64_t>(skipped.size(), offset - position_)) == 0) {
      fail("'{}' ends at decompressed byte {}, before byte {}: the file changed while it was read", path_, position_,
           offset);
    }
  }
}

}  // namespace muonlab::data
