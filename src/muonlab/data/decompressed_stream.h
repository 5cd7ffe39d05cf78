// A gzip or Zstandard file's decompressed bytes, read forward: how `data
// prepare` reads x.jsonl.gz and x.txt.zst without a decompressed copy on
// disk. Every gzip member and every Zstandard frame is read; a stream cut
// short, or bytes that are not gzip or Zstandard, fail naming the file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace muonlab::data {

// Whether `path` names a compressed file this reads (.gz or .zst).
bool is_compressed_file_name(const std::string& path);

class DecompressedStream {
 public:
  // The kind is read off the name: .gz is gzip, .zst Zstandard. A build
  // without libzstd fails on a .zst file, naming it.
  explicit DecompressedStream(const std::string& path);
  ~DecompressedStream();
  DecompressedStream(const DecompressedStream&) = delete;
  DecompressedStream& operator=(const DecompressedStream&) = delete;

  // `size` decompressed bytes into `out`, fewer only at the end.
  size_t read(char* out, size_t size);
  // Decompressed bytes read so far.
  uint64_t position() const { return position_; }
  // Moves to decompressed byte `offset`: forward by reading, back by
  // starting again from the file's beginning. Past the end fails.
  void seek(uint64_t offset);

  class Decoder;  // gzip's or Zstandard's, in the .cpp

 private:
  void start();

  std::string path_;
  std::unique_ptr<Decoder> decoder_;
  uint64_t position_ = 0;
};

}  // namespace muonlab::data
