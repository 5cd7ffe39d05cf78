#include "muonlab/data/parquet_encodings.h"

#include <string>

#include "muonlab/core/errors.h"
#include "muonlab/data/varint.h"

namespace muonlab::data {
namespace {

// A cursor over a byte range that fails, naming the encoding, at its end.
class ByteCursor {
 public:
  ByteCursor(ByteRange bytes, const char* encoding) : bytes_(bytes), encoding_(encoding) {}

  uint8_t byte() {
    need(1);
    return bytes_.data[position_++];
  }
  uint64_t varint() {
    if (const auto value = read_varint([this] { return byte(); })) return *value;
    fail("malformed Parquet {} data: a varint longer than 10 bytes", encoding_);
  }
  int64_t zigzag() { return zigzag_decode(varint()); }
  uint64_t little_endian(int bytes) {
    need(bytes);
    uint64_t value = 0;
    for (int i = 0; i < bytes; ++i) value |= static_cast<uint64_t>(bytes_.data[position_ + i]) << (8 * i);
    position_ += bytes;
    return value;
  }
  const uint8_t* take(uint64_t bytes) {
    need(bytes);
    const uint8_t* start = bytes_.data + position_;
    position_ += bytes;
    return start;
  }
  void need(uint64_t bytes) const {
    if (bytes > bytes_.size - position_) {
      fail("malformed Parquet {} data: {} more bytes needed at byte {} of {}", encoding_, bytes, position_,
           bytes_.size);
    }
  }
  size_t position() const { return position_; }
  size_t remaining() const { return bytes_.size - position_; }

 private:
  ByteRange bytes_;
  const char* encoding_;
  size_t position_ = 0;
};

// Bit `bit_width`-wide values packed least significant bit first, as every
// Parquet bit-packing except the deprecated BIT_PACKED levels stores them.
uint64_t unpack_bits(const uint8_t* data, uint64_t index, int bit_width) {
  uint64_t value = 0;
  const uint64_t first_bit = index * static_cast<uint64_t>(bit_width);
  for (int bit = 0; bit < bit_width;) {
    const uint64_t at = first_bit + bit;
    const int in_byte = static_cast<int>(at % 8);
    const int take = std::min(8 - in_byte, bit_width - bit);
    const uint64_t bits = (data[at / 8] >> in_byte) & ((1u << take) - 1);
    value |= bits << bit;
    bit += take;
  }
  return value;
}

}  // namespace

std::vector<uint32_t> decode_rle_bit_packed(ByteRange bytes, int bit_width, size_t count) {
  if (bit_width < 0 || bit_width > 32) fail("malformed Parquet RLE data: bit width {} (expected 0 to 32)", bit_width);
  ByteCursor cursor(bytes, "RLE");
  std::vector<uint32_t> values;
  values.reserve(count);
  while (values.size() < count) {
    const uint64_t header = cursor.varint();
    if (header & 1) {  // bit-packed: (header >> 1) groups of 8 values
      // Only the bytes of the values still wanted are read: at bit width 0
      // values take none (a dictionary of one entry), and writers may end
      // the last run of a page before its last group's padding.
      const uint64_t groups = header >> 1;
      const uint64_t wanted = count - values.size();
      const uint64_t used = groups >= (wanted + 7) / 8 ? wanted : groups * 8;
      const uint64_t bytes = (used * static_cast<uint64_t>(bit_width) + 7) / 8;
      if (bytes > cursor.remaining()) fail("malformed Parquet RLE data: a bit-packed run runs past the end");
      const uint8_t* packed = cursor.take(bytes);
      for (uint64_t i = 0; i < used; ++i) values.push_back(static_cast<uint32_t>(unpack_bits(packed, i, bit_width)));
    } else {  // a run: one value, (header >> 1) times
      const uint64_t run = header >> 1;
      const auto value = static_cast<uint32_t>(cursor.little_endian((bit_width + 7) / 8));
      if (run == 0) fail("malformed Parquet RLE data: an empty run");
      values.insert(values.end(), std::min<uint64_t>(run, count - values.size()), value);
    }
  }
  return values;
}

void decode_plain_byte_arrays(ByteRange bytes, size_t count, const ByteArrayVisitor& visit) {
  ByteCursor cursor(bytes, "PLAIN");
  for (size_t i = 0; i < count; ++i) {
    const uint64_t length = cursor.little_endian(4);
    visit({reinterpret_cast<const char*>(cursor.take(length)), length});
  }
}

std::vector<int64_t> decode_delta_binary_packed(ByteRange bytes, size_t max_values, size_t* end) {
  ByteCursor cursor(bytes, "DELTA_BINARY_PACKED");
  const uint64_t block_size = cursor.varint();
  const uint64_t miniblocks = cursor.varint();
  const uint64_t total = cursor.varint();
  if (block_size == 0 || block_size % 128 != 0 || block_size > (1u << 20) || miniblocks == 0 ||
      block_size % miniblocks != 0 || (block_size / miniblocks) % 32 != 0) {
    fail("malformed Parquet DELTA_BINARY_PACKED data: blocks of {} values in {} miniblocks (expected a multiple of "
         "128 values up to 2^20, in miniblocks of a multiple of 32)", block_size, miniblocks);
  }
  if (total > max_values) {
    fail("malformed Parquet DELTA_BINARY_PACKED data: {} values where the page holds {}", total, max_values);
  }
  const uint64_t per_miniblock = block_size / miniblocks;
  std::vector<int64_t> values;
  values.reserve(total);
  // Deltas add with wrap-around, as the writers subtract.
  uint64_t value = static_cast<uint64_t>(cursor.zigzag());
  if (total > 0) values.push_back(static_cast<int64_t>(value));
  while (values.size() < total) {
    const uint64_t min_delta = static_cast<uint64_t>(cursor.zigzag());
    const uint8_t* widths = cursor.take(miniblocks);
    for (uint64_t m = 0; m < miniblocks && values.size() < total; ++m) {
      const int width = widths[m];
      if (width > 64) fail("malformed Parquet DELTA_BINARY_PACKED data: a miniblock of {}-bit values", width);
      const uint8_t* packed = cursor.take(per_miniblock * width / 8);
      for (uint64_t i = 0; i < per_miniblock && values.size() < total; ++i) {
        value += min_delta + unpack_bits(packed, i, width);
        values.push_back(static_cast<int64_t>(value));
      }
    }
  }
  if (end) *end = cursor.position();
  return values;
}

void decode_delta_length_byte_arrays(ByteRange bytes, size_t count, const ByteArrayVisitor& visit) {
  size_t lengths_end = 0;
  const std::vector<int64_t> lengths = decode_delta_binary_packed(bytes, count, &lengths_end);
  if (lengths.size() < count) {
    fail("malformed Parquet DELTA_LENGTH_BYTE_ARRAY data: {} lengths for {} values", lengths.size(), count);
  }
  ByteCursor cursor({bytes.data + lengths_end, bytes.size - lengths_end}, "DELTA_LENGTH_BYTE_ARRAY");
  for (size_t i = 0; i < count; ++i) {
    if (lengths[i] < 0) fail("malformed Parquet DELTA_LENGTH_BYTE_ARRAY data: a length of {}", lengths[i]);
    visit({reinterpret_cast<const char*>(cursor.take(lengths[i])), static_cast<size_t>(lengths[i])});
  }
}

void decode_delta_byte_arrays(ByteRange bytes, size_t count, const ByteArrayVisitor& visit) {
  size_t prefixes_end = 0;
  const std::vector<int64_t> prefixes = decode_delta_binary_packed(bytes, count, &prefixes_end);
  if (prefixes.size() < count) {
    fail("malformed Parquet DELTA_BYTE_ARRAY data: {} prefix lengths for {} values", prefixes.size(), count);
  }
  std::string value;
  size_t index = 0;
  decode_delta_length_byte_arrays({bytes.data + prefixes_end, bytes.size - prefixes_end}, count,
                                  [&](std::string_view suffix) {
                                    const int64_t prefix = prefixes[index++];
                                    if (prefix < 0 || static_cast<uint64_t>(prefix) > value.size()) {
                                      fail("malformed Parquet DELTA_BYTE_ARRAY data: a prefix of {} bytes of a "
                                           "value of {}", prefix, value.size());
                                    }
                                    value.resize(static_cast<size_t>(prefix));
                                    value.append(suffix);
                                    visit(value);
                                  });
}

}  // namespace muonlab::data
