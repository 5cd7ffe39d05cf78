#include "muonlab/data/thrift_compact.h"

#include "muonlab/core/errors.h"
#include "muonlab/data/varint.h"

namespace muonlab::data {
namespace {

// Parquet's metadata nests a few levels deep; far deeper is hostile input,
// and would otherwise overflow the stack.
constexpr int kMaxThriftDepth = 64;

}  // namespace

void ThriftCompactReader::fail_at(const std::string& what) const {
  fail("malformed Thrift metadata at byte {} of {}: {}", position_, size_, what);
}

uint8_t ThriftCompactReader::read_byte() {
  if (position_ >= size_) fail_at("it ends inside a value");
  return data_[position_++];
}

uint64_t ThriftCompactReader::read_varint() {
  if (const auto value = data::read_varint([this] { return read_byte(); })) return *value;
  fail_at("a varint longer than 10 bytes");
}

int64_t ThriftCompactReader::read_zigzag() { return zigzag_decode(read_varint()); }

void ThriftCompactReader::read_struct(const std::function<void(int16_t, ThriftType)>& on_field) {
  read_struct_at_depth(on_field, depth_);
}

void ThriftCompactReader::read_struct_at_depth(const std::function<void(int16_t, ThriftType)>& on_field,
                                               int depth) {
  if (depth >= kMaxThriftDepth) fail_at(fmt::format("structs nested more than {} deep", kMaxThriftDepth));
  const int outer_depth = depth_;
  depth_ = depth + 1;
  int16_t last_id = 0;
  for (;;) {
    const uint8_t header = read_byte();
    const auto type = static_cast<ThriftType>(header & 0x0f);
    if (type == ThriftType::kStop) break;
    if (type > ThriftType::kStruct) fail_at(fmt::format("unknown field type {}", header & 0x0f));
    const int delta = header >> 4;
    const int16_t id = delta != 0 ? static_cast<int16_t>(last_id + delta) : static_cast<int16_t>(read_zigzag());
    last_id = id;
    on_field(id, type);
  }
  depth_ = outer_depth;
}

int64_t ThriftCompactReader::read_integer(ThriftType type) {
  switch (type) {
    case ThriftType::kByte:
      return static_cast<int8_t>(read_byte());
    case ThriftType::kI16:
    case ThriftType::kI32:
    case ThriftType::kI64:
      return read_zigzag();
    default:
      fail_at(fmt::format("expected an integer, got type {}", static_cast<int>(type)));
  }
}

bool ThriftCompactReader::read_bool(ThriftType type) {
  if (type == ThriftType::kTrue) return true;
  if (type == ThriftType::kFalse) return false;
  fail_at(fmt::format("expected a bool, got type {}", static_cast<int>(type)));
}

std::string ThriftCompactReader::read_binary() {
  const uint64_t length = read_varint();
  if (length > size_ - position_) fail_at(fmt::format("a string of {} bytes runs past the end", length));
  std::string value(reinterpret_cast<const char*>(data_ + position_), length);
  position_ += length;
  return value;
}

ThriftListHeader ThriftCompactReader::read_list_header() {
  const uint8_t header = read_byte();
  ThriftListHeader list;
  list.element = static_cast<ThriftType>(header & 0x0f);
  const uint64_t size = (header >> 4) == 15 ? read_varint() : header >> 4;
  // Every element takes at least one byte (bools, and the smallest ints).
  if (size > size_ - position_) fail_at(fmt::format("a list of {} elements runs past the end", size));
  list.size = static_cast<uint32_t>(size);
  return list;
}

void ThriftCompactReader::skip(ThriftType type) { skip_at_depth(type, depth_); }

void ThriftCompactReader::skip_element(ThriftType type, int depth) {
  // A bool element of a list or map is one byte, unlike a bool field.
  if (type == ThriftType::kTrue || type == ThriftType::kFalse) {
    read_byte();
  } else {
    skip_at_depth(type, depth);
  }
}

void ThriftCompactReader::skip_at_depth(ThriftType type, int depth) {
  if (depth >= kMaxThriftDepth) fail_at(fmt::format("values nested more than {} deep", kMaxThriftDepth));
  switch (type) {
    case ThriftType::kTrue:
    case ThriftType::kFalse:
      return;  // a bool field's value is its type code
    case ThriftType::kByte:
      read_byte();
      return;
    case ThriftType::kI16:
    case ThriftType::kI32:
    case ThriftType::kI64:
      read_varint();
      return;
    case ThriftType::kDouble:
      for (int i = 0; i < 8; ++i) read_byte();
      return;
    case ThriftType::kBinary:
      read_binary();
      return;
    case ThriftType::kList:
    case ThriftType::kSet: {
      const ThriftListHeader list = read_list_header();
      for (uint32_t i = 0; i < list.size; ++i) skip_element(list.element, depth + 1);
      return;
    }
    case ThriftType::kMap: {
      const uint64_t size = read_varint();
      if (size == 0) return;
      if (size > size_ - position_) fail_at(fmt::format("a map of {} entries runs past the end", size));
      const uint8_t types = read_byte();
      for (uint64_t i = 0; i < size; ++i) {
        skip_element(static_cast<ThriftType>(types >> 4), depth + 1);
        skip_element(static_cast<ThriftType>(types & 0x0f), depth + 1);
      }
      return;
    }
    case ThriftType::kStruct:
      read_struct_at_depth([this, depth](int16_t, ThriftType field) { skip_at_depth(field, depth + 1); }, depth);
      return;
    default:
      fail_at(fmt::format("unknown type {}", static_cast<int>(type)));
  }
}

}  // namespace muonlab::data
