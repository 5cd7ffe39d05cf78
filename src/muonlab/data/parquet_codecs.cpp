#include "muonlab/data/parquet_codecs.h"

#include <cstring>
#include <limits>

#include <zlib.h>
#ifdef MUONLAB_SNAPPY
#include <snappy-c.h>
#endif
#ifdef MUONLAB_ZSTD
#include <zstd.h>
#endif
#ifdef MUONLAB_BROTLI
#include <brotli/decode.h>
#endif
#ifdef MUONLAB_LZ4
#include <lz4.h>
#endif

#include "muonlab/core/errors.h"
#include "muonlab/data/parquet_metadata.h"

namespace muonlab::data {
namespace {

void check_size(int32_t codec, size_t got, size_t expected) {
  if (got != expected) {
    fail("malformed Parquet page: {} data decompressed to {} bytes, its header says {}", parquet_codec_name(codec),
         got, expected);
  }
}

// A gzip (or zlib) stream, as Parquet's GZIP pages hold.
void inflate_page(ByteRange compressed, std::vector<uint8_t>& out) {
  z_stream stream{};
  if (inflateInit2(&stream, 15 + 32) != Z_OK) fail("zlib could not start inflating a Parquet page");
  stream.next_in = const_cast<Bytef*>(compressed.data);
  stream.avail_in = static_cast<uInt>(compressed.size);
  stream.next_out = out.data();
  stream.avail_out = static_cast<uInt>(out.size());
  const int result = inflate(&stream, Z_FINISH);
  const size_t produced = out.size() - stream.avail_out;
  const std::string message = stream.msg ? stream.msg : "";
  inflateEnd(&stream);
  if (result != Z_STREAM_END) {
    fail("malformed Parquet page: its GZIP data {}", result == Z_BUF_ERROR && stream.avail_out == 0
                                                          ? "is longer than its header says"
                                                          : "is not a complete gzip stream (" + message + ")");
  }
  check_size(parquet_code::kGzip, produced, out.size());
}

}  // namespace

bool parquet_codec_supported(int32_t codec) {
  switch (codec) {
    case parquet_code::kUncompressed:
    case parquet_code::kGzip:
      return true;
#ifdef MUONLAB_SNAPPY
    case parquet_code::kSnappy:
      return true;
#endif
#ifdef MUONLAB_ZSTD
    case parquet_code::kZstd:
      return true;
#endif
#ifdef MUONLAB_BROTLI
    case parquet_code::kBrotli:
      return true;
#endif
#ifdef MUONLAB_LZ4
    case parquet_code::kLz4Raw:
      return true;
#endif
    default:
      return false;
  }
}

std::string supported_parquet_codecs() {
  std::string names;
  for (int32_t codec = 0; codec < 8; ++codec) {
    if (parquet_codec_supported(codec)) names += (names.empty() ? "" : ", ") + parquet_codec_name(codec);
  }
  return names;
}

std::vector<uint8_t> decompress_parquet_page(int32_t codec, ByteRange compressed, size_t uncompressed_size) {
  if (!parquet_codec_supported(codec)) {
    fail("Parquet codec {} is not read by this build of muonlab (it reads {}{})", parquet_codec_name(codec),
         supported_parquet_codecs(),
         codec == parquet_code::kSnappy || codec == parquet_code::kZstd || codec == parquet_code::kBrotli ||
                 codec == parquet_code::kLz4Raw
             ? "; install libsnappy-dev, libzstd-dev, libbrotli-dev and liblz4-dev and rebuild"
             : "; write the file again with compression='snappy' or 'zstd'");
  }
  std::vector<uint8_t> out(uncompressed_size);
  switch (codec) {
    case parquet_code::kUncompressed:
      check_size(codec, compressed.size, uncompressed_size);
      if (compressed.size > 0) std::memcpy(out.data(), compressed.data, compressed.size);
      break;
    case parquet_code::kGzip:
      inflate_page(compressed, out);
      break;
#ifdef MUONLAB_SNAPPY
    case parquet_code::kSnappy: {
      size_t length = 0;
      const char* input = reinterpret_cast<const char*>(compressed.data);
      if (snappy_uncompressed_length(input, compressed.size, &length) != SNAPPY_OK) {
        fail("malformed Parquet page: its SNAPPY data does not start with a valid length");
      }
      check_size(codec, length, uncompressed_size);
      if (snappy_uncompress(input, compressed.size, reinterpret_cast<char*>(out.data()), &length) != SNAPPY_OK) {
        fail("malformed Parquet page: its SNAPPY data is corrupt");
      }
      break;
    }
#endif
#ifdef MUONLAB_ZSTD
    case parquet_code::kZstd: {
      const size_t length = ZSTD_decompress(out.data(), out.size(), compressed.data, compressed.size);
      if (ZSTD_isError(length)) fail("malformed Parquet page: its ZSTD data: {}", ZSTD_getErrorName(length));
      check_size(codec, length, uncompressed_size);
      break;
    }
#endif
#ifdef MUONLAB_BROTLI
    case parquet_code::kBrotli: {
      size_t length = out.size();
      const auto result = BrotliDecoderDecompress(compressed.size, compressed.data, &length, out.data());
      if (result != BROTLI_DECODER_RESULT_SUCCESS) {
        fail("malformed Parquet page: its BROTLI data is corrupt or longer than its header says");
      }
      check_size(codec, length, uncompressed_size);
      break;
    }
#endif
#ifdef MUONLAB_LZ4
    case parquet_code::kLz4Raw: {
      constexpr size_t kMax = static_cast<size_t>(std::numeric_limits<int>::max());
      if (compressed.size > kMax || uncompressed_size > kMax) fail("Parquet LZ4_RAW page of more than 2 GB");
      const int length = LZ4_decompress_safe(reinterpret_cast<const char*>(compressed.data),
                                             reinterpret_cast<char*>(out.data()), static_cast<int>(compressed.size),
                                             static_cast<int>(uncompressed_size));
      if (length < 0) fail("malformed Parquet page: its LZ4_RAW data is corrupt or longer than its header says");
      check_size(codec, static_cast<size_t>(length), uncompressed_size);
      break;
    }
#endif
  }
  return out;
}

}  // namespace muonlab::data
