// A reader of Apache Thrift's compact protocol, the encoding of Parquet's
// metadata (the file footer and each page's header): just enough to walk
// structs, read integers, strings and lists, and skip whatever a caller
// does not need. Every read is bounds-checked; malformed input fails with
// an Error saying what was expected at which byte, never reads past the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

namespace muonlab::data {

// The compact protocol's type codes, as they appear in field headers.
enum class ThriftType : uint8_t {
  kStop = 0,
  kTrue = 1,  // a bool field's value lives in its type code
  kFalse = 2,
  kByte = 3,
  kI16 = 4,
  kI32 = 5,
  kI64 = 6,
  kDouble = 7,
  kBinary = 8,
  kList = 9,
  kSet = 10,
  kMap = 11,
  kStruct = 12,
};

struct ThriftListHeader {
  uint32_t size = 0;
  ThriftType element = ThriftType::kStop;
};

class ThriftCompactReader {
 public:
  ThriftCompactReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  // Calls on_field(id, type) for each field of the struct at the cursor, up
  // to its stop byte; on_field must read the field's value or skip() it.
  void read_struct(const std::function<void(int16_t id, ThriftType type)>& on_field);
  // An integer field or list element of any width (byte, i16, i32, i64).
  int64_t read_integer(ThriftType type);
  // A bool field (its value is its type code) or a list element (a byte).
  bool read_bool(ThriftType type);
  std::string read_binary();
  ThriftListHeader read_list_header();
  void skip(ThriftType type);

  size_t position() const { return position_; }

 private:
  uint8_t read_byte();
  uint64_t read_varint();
  int64_t read_zigzag();
  void skip_at_depth(ThriftType type, int depth);
  void skip_element(ThriftType type, int depth);
  void read_struct_at_depth(const std::function<void(int16_t, ThriftType)>& on_field, int depth);
  [[noreturn]] void fail_at(const std::string& what) const;

  const uint8_t* data_;
  size_t size_;
  size_t position_ = 0;
  int depth_ = 0;  // nesting of read_struct, bounded against hostile input
};

}  // namespace muonlab::data
