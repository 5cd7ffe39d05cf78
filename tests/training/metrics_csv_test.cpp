// metrics.jsonl read back: as CSV (exact text), as loss curves for the plot,
// and bad input named by file and line.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "data/data_test_util.h"
#include "muonlab/training/metrics_csv.h"
#include "muonlab/training/metrics_records.h"
#include "muonlab/training/read_loss_curves.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

// The CSV the export writes for `jsonl`.
std::string csv_of(const std::string& jsonl) {
  testing::ScratchDir dir;
  testing::write_bytes(dir.file("metrics.jsonl"), jsonl);
  write_metrics_csv(dir.file("metrics.jsonl"), dir.file("metrics.csv"));
  return testing::read_bytes(dir.file("metrics.csv"));
}

TEST(MetricsCsv, ColumnsAreEveryKeyInFirstSeenOrderWithStepFirst) {
  const std::string jsonl =
      "{\"loss\":3.5,\"step\":1,\"tokens\":1024,\"lr_muon\":0.02}\n"
      "{\"step\":2,\"loss\":3.25,\"tokens\":2048,\"lr_muon\":0.02,\"update_rms_muon\":0.1}\n"
      "{\"step\":2,\"val_loss\":3.4,\"val_tokens\":4096,\"tokens\":2048}\n";
  EXPECT_EQ(csv_of(jsonl),
            "step,loss,tokens,lr_muon,update_rms_muon,val_loss,val_tokens\n"
            "1,3.5,1024,0.02,,,\n"
            "2,3.25,2048,0.02,0.1,,\n"
            "2,,2048,,,3.4,4096\n");
}

TEST(MetricsCsv, QuotesTextAsRfc4180AndWritesBooleansNullsAndArrays) {
  const std::string jsonl =
      R"({"step":1,"note":"a,b","quote":"say \"hi\"","plain":"ok","on":true,"off":false,"nan":null,"load":[1,2]})"
      "\n";
  EXPECT_EQ(csv_of(jsonl),
            "step,note,quote,plain,on,off,nan,load\n"
            "1,\"a,b\",\"say \"\"hi\"\"\",ok,true,false,,\"[1,2]\"\n");
}

TEST(MetricsCsv, NumbersReadBackToTheSameDouble) {
  const double values[] = {0.1, 1.0 / 3.0, 1e-7, 123456789.123456789, 6.02214076e23, -2.5e-300};
  std::string jsonl;
  for (double value : values) jsonl += fmt::format("{{\"step\":1,\"x\":{:.17g}}}\n", value);
  std::istringstream csv(csv_of(jsonl));
  std::string row;
  std::getline(csv, row);
  EXPECT_EQ(row, "step,x");
  for (double value : values) {
    std::getline(csv, row);
    const std::string cell = row.substr(row.find(',') + 1);
    EXPECT_EQ(std::stod(cell), value) << cell;
  }
}

TEST(MetricsCsv, EmptyFileGivesEmptyCsvAndBlankLinesAreSkipped) {
  EXPECT_EQ(csv_of(""), "");
  EXPECT_EQ(csv_of("\n{\"step\":1}\n\n"), "step\n1\n");
}

TEST(MetricsCsv, WritesAtomicallyLeavingOnlyTheCsv) {
  testing::ScratchDir dir;
  testing::write_bytes(dir.file("metrics.jsonl"), "{\"step\":1}\n");
  write_metrics_csv(dir.file("metrics.jsonl"), dir.file("out.csv"));
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"metrics.jsonl", "out.csv"}));
}

TEST(MetricsRecords, LineThatIsNotJsonIsNamedByFileAndLine) {
  testing::ScratchDir dir;
  const std::string path = dir.file("metrics.jsonl");
  testing::write_bytes(path, "{\"step\":1,\"loss\":2}\n\n{\"step\":2,\"loss\":\n");
  std::string message = testing::error_message([&] { read_metrics_records(path); });
  EXPECT_CONTAINS(message, path + ":3: not valid JSON");
  EXPECT_CONTAINS(message, "{\"step\":2,\"loss\":");
  EXPECT_CONTAINS(testing::error_message([&] { write_metrics_csv(path, dir.file("m.csv")); }), path + ":3:");
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.csv")));
}

TEST(MetricsRecords, LastLineCutByACrashIsLeftOut) {
  // Records are written whole with their newline; a last line without one
  // was torn mid-write (crash, full disk) and is dropped, the rest read.
  testing::ScratchDir dir;
  const std::string path = dir.file("metrics.jsonl");
  testing::write_bytes(path, "{\"step\":1,\"loss\":2}\n{\"step\":2,\"loss\":1.5}\n{\"step\":3,\"lo");
  const auto records = read_metrics_records(path);
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records.back().line, 2);
  EXPECT_EQ(read_loss_curves(path).train.size(), 2u);
}

TEST(MetricsRecords, JsonThatIsNotAnObjectIsRefused) {
  testing::ScratchDir dir;
  testing::write_bytes(dir.file("metrics.jsonl"), "[1, 2]\n");
  EXPECT_CONTAINS(testing::error_message([&] { read_metrics_records(dir.file("metrics.jsonl")); }),
                  "metrics.jsonl:1: expected a JSON object, got array");
}

TEST(MetricsRecords, MissingFileIsNamed) {
  EXPECT_CONTAINS(testing::error_message([] { read_metrics_records("/nonexistent/run/metrics.jsonl"); }),
                  "cannot read '/nonexistent/run/metrics.jsonl'");
}

analysis::LossCurves curves_of(const std::string& jsonl) {
  testing::ScratchDir dir;
  testing::write_bytes(dir.file("metrics.jsonl"), jsonl);
  return read_loss_curves(dir.file("metrics.jsonl"));
}

TEST(ReadLossCurves, StepRecordsAreTrainAndEvaluationRecordsValidation) {
  analysis::LossCurves curves = curves_of(
      "{\"step\":1,\"loss\":4.5,\"tokens\":100,\"lr_muon\":0.02}\n"
      "{\"step\":2,\"loss\":4.0,\"tokens\":200}\n"
      "{\"step\":2,\"val_loss\":4.2,\"val_tokens\":64,\"tokens\":200}\n"
      "{\"note\":\"neither kind\"}\n");
  ASSERT_EQ(curves.train.size(), 2u);
  EXPECT_EQ(curves.train[1].step, 2);
  EXPECT_EQ(curves.train[1].tokens, 200);
  EXPECT_EQ(curves.train[1].loss, 4.0);
  ASSERT_EQ(curves.validation.size(), 1u);
  EXPECT_EQ(curves.validation[0].step, 2);
  EXPECT_EQ(curves.validation[0].tokens, 200);  // tokens trained, not val_tokens
  EXPECT_EQ(curves.validation[0].loss, 4.2);
}

TEST(ReadLossCurves, EvaluationWithoutTokensTakesThemFromItsStepRecord) {
  analysis::LossCurves curves = curves_of(
      "{\"step\":0,\"val_loss\":5.5,\"val_tokens\":64}\n"
      "{\"step\":5,\"loss\":4.0,\"tokens\":640}\n"
      "{\"step\":5,\"val_loss\":4.4,\"val_tokens\":64}\n"
      "{\"step\":7,\"val_loss\":4.3,\"val_tokens\":64}\n");
  ASSERT_EQ(curves.validation.size(), 3u);
  EXPECT_EQ(curves.validation[0].tokens, 0);    // before training
  EXPECT_EQ(curves.validation[1].tokens, 640);  // from step 5's record
  EXPECT_TRUE(std::isnan(curves.validation[2].tokens));  // no step 7 record
}

// run.hellaswag's evaluations: acc_norm by step and tokens trained, with or
// without a validation loss in the same record (a run may score HellaSwag
// without validation shards).
TEST(ReadLossCurves, HellaSwagAccuracyIsACurveOfItsOwn) {
  analysis::LossCurves curves = curves_of(
      "{\"step\":5,\"loss\":4.0,\"tokens\":640}\n"
      "{\"step\":5,\"val_loss\":4.4,\"hellaswag_acc_norm\":0.25,\"hellaswag_acc\":0.2,\"hellaswag_items\":8,"
      "\"tokens\":640}\n"
      "{\"step\":9,\"hellaswag_acc_norm\":0.375,\"hellaswag_acc\":0.25,\"hellaswag_items\":8}\n");
  ASSERT_EQ(curves.hellaswag.size(), 2u);
  EXPECT_EQ(curves.hellaswag[0].step, 5);
  EXPECT_EQ(curves.hellaswag[0].tokens, 640);
  EXPECT_EQ(curves.hellaswag[0].loss, 0.25);  // acc_norm, not acc
  EXPECT_EQ(curves.hellaswag[1].step, 9);
  EXPECT_EQ(curves.hellaswag[1].loss, 0.375);
  EXPECT_EQ(curves.validation.size(), 1u);  // the record without val_loss adds none
  EXPECT_TRUE(curves_of("{\"step\":1,\"loss\":2}\n").hellaswag.empty());
}

TEST(ReadLossCurves, NullLossIsNaNAndTextLossIsNamed) {
  analysis::LossCurves curves = curves_of("{\"step\":1,\"loss\":null,\"tokens\":8}\n");
  ASSERT_EQ(curves.train.size(), 1u);
  EXPECT_TRUE(std::isnan(curves.train[0].loss));
  EXPECT_CONTAINS(testing::error_message([] { curves_of("{\"step\":1,\"loss\":1}\n{\"step\":2,\"loss\":\"low\"}\n"); }),
                  "metrics.jsonl:2: 'loss' should be a number, got text");
  EXPECT_CONTAINS(testing::error_message([] { curves_of("{\"loss\":1.5}\n"); }),
                  "metrics.jsonl:1: a loss record without a 'step'");
}

}  // namespace
}  // namespace muonlab::training
