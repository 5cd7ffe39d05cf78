// Decoders of the Parquet encodings a string column's pages use (Apache
// Parquet's Encodings.md): the RLE / bit-packed hybrid (definition levels,
// dictionary indices), PLAIN byte arrays, DELTA_BINARY_PACKED integers and
// the two delta encodings of byte arrays built on it. Each reads from a
// byte range it is given and fails, saying what ran short, rather than
// read past it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string_view>
#include <vector>

namespace muonlab::data {

struct ByteRange {
  const uint8_t* data = nullptr;
  size_t size = 0;
};

using ByteArrayVisitor = std::function<void(std::string_view value)>;

// `count` values of `bit_width` bits (0..32) in the RLE / bit-packed hybrid
// encoding, without a length prefix.
std::vector<uint32_t> decode_rle_bit_packed(ByteRange bytes, int bit_width, size_t count);

// `count` PLAIN byte arrays (a 4-byte little-endian length, then the bytes).
void decode_plain_byte_arrays(ByteRange bytes, size_t count, const ByteArrayVisitor& visit);

// DELTA_BINARY_PACKED integers, at most `max_values` of them (more fails);
// `end` gets the offset just past them, where a delta byte-array encoding's
// next section starts.
std::vector<int64_t> decode_delta_binary_packed(ByteRange bytes, size_t max_values, size_t* end);

// DELTA_LENGTH_BYTE_ARRAY: the lengths, delta-packed, then every value's
// bytes back to back. `count` values are expected.
void decode_delta_length_byte_arrays(ByteRange bytes, size_t count, const ByteArrayVisitor& visit);

// DELTA_BYTE_ARRAY: each value is the first prefix_length[i] bytes of the
// previous one, then suffix[i] (prefix lengths delta-packed, suffixes
// delta-length encoded).
void decode_delta_byte_arrays(ByteRange bytes, size_t count, const ByteArrayVisitor& visit);

}  // namespace muonlab::data
