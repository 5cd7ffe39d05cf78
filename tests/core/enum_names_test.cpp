// parse_enum: a name reads as its value, and a wrong one is refused with
// every accepted name and, for a near typo, the name meant.
#include <gtest/gtest.h>

#include "muonlab/core/enum_names.h"
#include "muonlab/optimizers/muon.h"
#include "muonlab/training/schedule.h"
#include "test_util.h"

namespace muonlab {
namespace {

enum class Colour { kRed, kGreen, kBlue };

const EnumNames<Colour>& colour_names() {
  static const EnumNames<Colour> names{{Colour::kRed, "red"}, {Colour::kGreen, "green"}, {Colour::kBlue, "blue"}};
  return names;
}

std::string parse_error(const std::string& text) {
  return testing::error_message([&] { parse_enum(colour_names(), text, "colour"); });
}

TEST(EnumNames, ParseReadsEveryNameAsItsValue) {
  for (const auto& [value, name] : colour_names()) EXPECT_EQ(parse_enum(colour_names(), name, "colour"), value);
}

TEST(EnumNames, ParseNamesTheValueMeantForANearTypoAndListsTheRest) {
  EXPECT_EQ(parse_error("gren"), "unknown colour 'gren' (did you mean 'green'?): expected red, green or blue");
  EXPECT_EQ(parse_error("purple"), "unknown colour 'purple': expected red, green or blue");
  EXPECT_EQ(parse_error(""), "unknown colour '': expected red, green or blue");
}

// The optimizers' and schedules' own parsers go through it.
TEST(EnumNames, OptionParsersNameTheValueMeant) {
  using testing::error_message;
  EXPECT_CONTAINS(error_message([] { optim::parse_scale_rule("spectal"); }),
                  "unknown Muon scale rule 'spectal' (did you mean 'spectral'?)");
  EXPECT_CONTAINS(error_message([] { training::parse_schedule_kind("cosin"); }),
                  "(did you mean 'cosine'?): expected constant, cosine");
  EXPECT_CONTAINS(error_message([] { optim::parse_ns_dtype("bf61"); }),
                  "unknown Newton-Schulz dtype 'bf61' (did you mean 'bf16'?)");
}

}  // namespace
}  // namespace muonlab
