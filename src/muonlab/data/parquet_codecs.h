// Decompression of Parquet pages: UNCOMPRESSED, SNAPPY, GZIP and ZSTD, the
// codecs Parquet writers use by default (pyarrow and Hugging Face datasets:
// SNAPPY), and BROTLI and LZ4_RAW. All but gzip are optional in the build
// (libsnappy-dev, libzstd-dev, libbrotli-dev, liblz4-dev); a codec this
// build cannot read fails by name, as do LZO and the deprecated LZ4 (Hadoop's
// framing), which no current writer produces.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "muonlab/data/parquet_encodings.h"

namespace muonlab::data {

// Whether this build decompresses `codec` (a parquet_code codec).
bool parquet_codec_supported(int32_t codec);
// The codecs this build reads, for messages: "UNCOMPRESSED, SNAPPY, ...".
std::string supported_parquet_codecs();

// The page's bytes, which must decompress to exactly `uncompressed_size`.
std::vector<uint8_t> decompress_parquet_page(int32_t codec, ByteRange compressed, size_t uncompressed_size);

}  // namespace muonlab::data
