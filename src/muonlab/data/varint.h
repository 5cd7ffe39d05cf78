// Unsigned LEB128 varints and zigzag-coded signed integers: how Thrift's
// compact protocol (Parquet's metadata) and Parquet's RLE and delta
// encodings store integers.
#pragma once

#include <cstdint>
#include <optional>

namespace muonlab::data {

// A varint, pulled a byte at a time from next_byte(), which fails by itself
// at the end of its input. Nothing for a varint longer than the 10 bytes a
// 64-bit value needs, so each caller can word the error for its format.
template <typename NextByte>
std::optional<uint64_t> read_varint(NextByte&& next_byte) {
  uint64_t value = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    const uint8_t byte = next_byte();
    value |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) return value;
  }
  return std::nullopt;
}

// 0, -1, 1, -2, ... from 0, 1, 2, 3, ...
inline int64_t zigzag_decode(uint64_t value) {
  return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

}  // namespace muonlab::data
