#include "muonlab/training/tensorboard_events.h"

#include <unistd.h>

#include <boost/crc.hpp>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>

#include "muonlab/core/errors.h"

namespace muonlab::training {
namespace {

// Protobuf's wire format: a key (field number << 3 | wire type), then the
// value. Wire types: 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32.
void put_varint(std::string& out, uint64_t value) {
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7F) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
}

void put_little_endian(std::string& out, uint64_t bits, int bytes) {
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>(bits >> (8 * i)));
}

void put_key(std::string& out, int field, int wire_type) { put_varint(out, static_cast<uint64_t>(field << 3 | wire_type)); }

void put_bytes(std::string& out, int field, const std::string& bytes) {
  put_key(out, field, 2);
  put_varint(out, bytes.size());
  out += bytes;
}

void put_double(std::string& out, int field, double value) {
  uint64_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, 1);
  put_little_endian(out, bits, 8);
}

void put_float(std::string& out, int field, float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  put_key(out, field, 5);
  put_little_endian(out, bits, 4);
}

void put_int(std::string& out, int field, int64_t value) {
  put_key(out, field, 0);
  put_varint(out, static_cast<uint64_t>(value));
}

double wall_time() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

// tensorflow.Event: wall_time = 1, step = 2, file_version = 3, summary = 5,
// session_log = 6.
std::string event_header(int64_t step) {
  std::string event;
  put_double(event, 1, wall_time());
  put_int(event, 2, step);
  return event;
}

std::string host_name() {
  char name[256] = {};
  return ::gethostname(name, sizeof name - 1) == 0 ? name : "localhost";
}

}  // namespace

uint32_t crc32c(const std::string& bytes) {
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

uint32_t masked_crc32c(const std::string& bytes) {
  const uint32_t crc = crc32c(bytes);
  return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
}

TensorBoardEvents::TensorBoardEvents(const std::string& folder, std::optional<int64_t> resumed_at) {
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error) fail("cannot create the TensorBoard folder '{}': {}", folder, error.message());
  path_ = (std::filesystem::path(folder) /
           fmt::format("events.out.tfevents.{}.{}.{}", static_cast<int64_t>(wall_time()), host_name(), ::getpid()))
              .string();
  file_ = std::fopen(path_.c_str(), "wb");
  if (file_ == nullptr) fail("cannot create the TensorBoard event file '{}': {}", path_, std::strerror(errno));
  std::string version = event_header(0);
  put_bytes(version, 3, "brain.Event:2");
  write_event(version);
  if (resumed_at) {
    std::string session = event_header(*resumed_at);
    std::string session_log;
    put_int(session_log, 1, 1);  // tensorflow.SessionLog: status = 1, START
    put_bytes(session, 6, session_log);
    write_event(session);
  }
}

TensorBoardEvents::~TensorBoardEvents() {
  if (file_ != nullptr) std::fclose(file_);
}

void TensorBoardEvents::write_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars) {
  std::string summary;  // tensorflow.Summary: repeated Value value = 1
  for (const auto& [tag, value] : scalars) {
    std::string entry;  // Summary.Value: tag = 1, simple_value = 2 (float)
    put_bytes(entry, 1, tag);
    put_float(entry, 2, static_cast<float>(value));
    put_bytes(summary, 1, entry);
  }
  std::string event = event_header(step);
  put_bytes(event, 5, summary);
  write_event(event);
}

void TensorBoardEvents::write_event(const std::string& event) {
  // TFRecord: uint64 length, masked CRC of those 8 bytes, data, masked CRC of the data.
  std::string length;
  put_little_endian(length, event.size(), 8);
  std::string record = length;
  put_little_endian(record, masked_crc32c(length), 4);
  record += event;
  put_little_endian(record, masked_crc32c(event), 4);
  if (std::fwrite(record.data(), 1, record.size(), file_) != record.size() || std::fflush(file_) != 0) {
    fail("cannot write the TensorBoard event file '{}': {}", path_, std::strerror(errno));
  }
}

}  // namespace muonlab::training
