#include "muonlab/data/text_stream.h"

namespace muonlab::data {

namespace {

bool is_continuation_byte(unsigned char byte) { return (byte & 0xC0) == 0x80; }

// The length of the sequence a lead byte starts; 1 for bytes that start none.
size_t utf8_sequence_length(unsigned char lead) {
  if (lead >= 0xC2 && lead <= 0xDF) return 2;
  if (lead >= 0xE0 && lead <= 0xEF) return 3;
  if (lead >= 0xF0 && lead <= 0xF4) return 4;
  return 1;
}

}  // namespace

size_t complete_utf8_prefix(std::string_view bytes) {
  // A sequence is at most 4 bytes, so only the last 3 can be unfinished.
  const size_t size = bytes.size();
  for (size_t back = 1; back <= 3 && back <= size; ++back) {
    const auto byte = static_cast<unsigned char>(bytes[size - back]);
    if (is_continuation_byte(byte)) continue;
    return utf8_sequence_length(byte) > back ? size - back : size;
  }
  return size;
}

void TextStream::add(int64_t id) {
  pending_ += id >= 0 && id < tokenizer_.vocab_size() ? tokenizer_.decode({static_cast<int32_t>(id)})
                                                      : std::string("\xEF\xBF\xBD");
  const size_t whole = complete_utf8_prefix(pending_);
  if (whole == 0) return;
  out_.write(pending_.data(), static_cast<std::streamsize>(whole));
  out_.flush();
  pending_.erase(0, whole);
}

void TextStream::finish() {
  out_ << pending_;
  out_.flush();
  pending_.clear();
}

}  // namespace muonlab::data
