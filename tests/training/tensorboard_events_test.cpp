// The TensorBoard writer's pieces: CRC-32C against its published check
// value, TFRecord's masking written out by hand, and a folder that cannot
// be created named. (The files themselves are read back by an independent
// reader in tests/training/tensorboard_check.sh.)
#include <gtest/gtest.h>

#include "muonlab/training/tensorboard_events.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

TEST(TensorBoardEvents, Crc32cMatchesItsCheckValueAndMasksAsTFRecordDoes) {
  EXPECT_EQ(crc32c("123456789"), 0xE3069283u);  // the CRC-32C catalogue's check value
  EXPECT_EQ(crc32c(""), 0u);
  const uint32_t crc = 0xE3069283u;
  EXPECT_EQ(masked_crc32c("123456789"), static_cast<uint32_t>(((crc >> 15) | (crc << 17)) + 0xa282ead8u));
}

TEST(TensorBoardEvents, AFolderThatCannotBeCreatedIsNamed) {
  EXPECT_CONTAINS(testing::error_message([] { TensorBoardEvents("/proc/muonlab-no/tb", std::nullopt); }),
                  "cannot create the TensorBoard folder '/proc/muonlab-no/tb'");
}

}  // namespace
}  // namespace muonlab::training
