// TensorBoard event files beside metrics.jsonl (run.tensorboard = true):
// the format TensorBoard, and the W&B and MLflow importers that read it,
// take without a converter. One file per process start,
// "events.out.tfevents.<seconds>.<host>.<pid>", in TFRecord framing
// (length, masked CRC-32C of the length, an Event protobuf, masked CRC-32C
// of the data), each Event holding one metrics record's scalars at its
// step. Written by hand in protobuf's wire format: three message types do
// not justify a protobuf dependency.
#pragma once

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace muonlab::training {

// CRC-32C (Castagnoli) of `bytes`, and TFRecord's masking of it.
uint32_t crc32c(const std::string& bytes);
uint32_t masked_crc32c(const std::string& bytes);

class TensorBoardEvents {
 public:
  // Creates `folder` and a new event file in it that starts with the
  // format's version record; `resumed_at` (a resumed run's first step) adds
  // a session start at that step, on which TensorBoard drops what older
  // files logged after it (the steps the resumed run will log again).
  TensorBoardEvents(const std::string& folder, std::optional<int64_t> resumed_at);
  ~TensorBoardEvents();
  TensorBoardEvents(TensorBoardEvents&& other) noexcept
      : path_(std::move(other.path_)), file_(std::exchange(other.file_, nullptr)) {}
  TensorBoardEvents& operator=(TensorBoardEvents&&) = delete;
  TensorBoardEvents(const TensorBoardEvents&) = delete;
  TensorBoardEvents& operator=(const TensorBoardEvents&) = delete;

  // One event at `step` with a scalar per (tag, value); flushed, and a
  // failed write (a full disk) fails naming the file.
  void write_scalars(int64_t step, const std::vector<std::pair<std::string, double>>& scalars);

  const std::string& path() const { return path_; }

 private:
  void write_event(const std::string& event);

  std::string path_;
  FILE* file_ = nullptr;
};

}  // namespace muonlab::training
