// `muonlab report` on a sweep written by hand (index, run folders, metrics),
// so each figure in the Markdown can be checked against a value computed
// here another way: the HellaSwag columns and their paired comparison.
// tests/sweep/sweep_check.sh runs the report on a real sweep.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <map>
#include <numeric>

#include "muonlab/core/read_file.h"
#include "data/data_test_util.h"
#include "muonlab/sweep/sweep_index.h"
#include "muonlab/sweep/sweep_report.h"
#include "muonlab/sweep/sweep_runner.h"
#include "muonlab/training/train_config.h"
#include "test_util.h"

namespace muonlab::sweep {
namespace {

namespace fs = std::filesystem;

// One finished run: its final validation loss and, where it scored
// HellaSwag, its acc_norm at the two evaluations (steps 5 and 10).
struct FakeRun {
  std::string variant;
  int seed = 0;
  double val_loss = 0;
  std::optional<std::pair<double, double>> hellaswag;
  int64_t items = 200;
};

class SweepReportTest : public ::testing::Test {
 protected:
  void write_sweep(const std::vector<FakeRun>& runs) {
    testing::write_bytes(dir_.file("sweep.json"), R"({"name": "hand", "baseline": "adamw"})");
    SweepIndex index(dir_.file("index.sqlite"));
    for (const FakeRun& run : runs) {
      RunRecord record;
      record.id = fmt::format("{}/run.seed={}", run.variant, run.seed);
      record.variant = run.variant;
      record.axes_json = fmt::format(R"({{"run.seed": "{}"}})", run.seed);
      record.status = "done";
      record.outcome.finished = true;
      record.outcome.final_val_loss = run.val_loss;
      record.run_dir = sweep_run_dir(dir_.path(), record.id);
      index.put(record);
      write_run_folder(record.run_dir, run);
    }
  }

  static void write_run_folder(const std::string& run_dir, const FakeRun& run) {
    fs::create_directories(run_dir);
    training::TrainConfig config;
    config.optimizer.name = run.variant;
    config.data.train = "shards/corpus_train_*.bin";  // never read by the report
    testing::write_bytes((fs::path(run_dir) / "config.toml").string(), training::format_train_config(config));
    std::string metrics;
    for (const int step : {5, 10}) {
      metrics += fmt::format(R"({{"step":{},"loss":{},"tokens":{}}})"
                             "\n",
                             step, run.val_loss + 0.5 / step, step * 1024);
      std::string eval = fmt::format(R"({{"step":{},"val_loss":{})", step, run.val_loss + (step == 5 ? 0.25 : 0));
      if (run.hellaswag) {
        eval += fmt::format(R"(,"hellaswag_acc_norm":{},"hellaswag_acc":0.2,"hellaswag_items":{})",
                            step == 5 ? run.hellaswag->first : run.hellaswag->second, run.items);
      }
      metrics += eval + fmt::format(R"(,"tokens":{}}})", step * 1024) + "\n";
    }
    testing::write_bytes((fs::path(run_dir) / "metrics.jsonl").string(), metrics);
  }

  std::string report() {
    SweepReportOptions options;
    options.sweep_dir = dir_.path();
    options.plots = false;
    return read_whole_file(write_sweep_report(options).markdown_path);
  }

  testing::ScratchDir dir_;
};

std::vector<FakeRun> scored_runs() {
  return {{"adamw", 1, 4.0, {{0.20, 0.26}}}, {"adamw", 2, 4.1, {{0.21, 0.27}}}, {"adamw", 3, 4.2, {{0.22, 0.25}}},
          {"muon", 1, 3.9, {{0.23, 0.29}}},  {"muon", 2, 3.95, {{0.24, 0.28}}}, {"muon", 3, 4.1, {{0.25, 0.30}}}};
}

// Mean, sample std and the paired t of muon - adamw, the last evaluation's
// acc_norm, computed here from the definitions.
struct Expected {
  double mean_difference, t;
};
Expected paired(const std::vector<double>& a, const std::vector<double>& b) {
  std::vector<double> d(a.size());
  for (size_t i = 0; i < a.size(); ++i) d[i] = a[i] - b[i];
  const double n = static_cast<double>(d.size());
  const double mean = std::accumulate(d.begin(), d.end(), 0.0) / n;
  double squares = 0;
  for (const double x : d) squares += (x - mean) * (x - mean);
  return {mean, mean / (std::sqrt(squares / (n - 1)) / std::sqrt(n))};
}

TEST_F(SweepReportTest, HellaSwagOfTheLastEvaluationIsComparedSeedBySeed) {
  write_sweep(scored_runs());
  const std::string md = report();
  // Every lr: the last evaluation's acc_norm (not the first's), mean ± std.
  EXPECT_CONTAINS(md, "| val loss | HellaSwag acc_norm |");
  EXPECT_CONTAINS(md, "| - | adamw | 0.001 (config) | 3 | 4.1000 ± 0.1000 | 0.2600 ± 0.0100 |");
  EXPECT_CONTAINS(md, "| - | muon | 0.001 (config) | 3 | 3.9833 ± 0.1041 | 0.2900 ± 0.0100 |");
  // Against the baseline, seed by seed: differences +0.03, +0.01, +0.05.
  const Expected expected = paired({0.29, 0.28, 0.30}, {0.26, 0.27, 0.25});
  EXPECT_NEAR(expected.mean_difference, 0.03, 1e-12);
  EXPECT_CONTAINS(md, "| adamw | 3 | 200 | 0.2600 ± 0.0100 | - | baseline | - |");
  EXPECT_CONTAINS(md, fmt::format("| muon | 3 | 200 | 0.2900 ± 0.0100 | {:+.4f} [", expected.mean_difference));
  EXPECT_CONTAINS(md, fmt::format("| t = {:.2f}, p = ", expected.t));
  // The loss comparison keeps its own t (differences -0.1, -0.15, -0.1).
  EXPECT_CONTAINS(md, fmt::format("t = {:.2f}, p = ", paired({3.9, 3.95, 4.1}, {4.0, 4.1, 4.2}).t));
  // How far 200 items are from the whole set: the binomial error at p = 0.5.
  EXPECT_CONTAINS(md, fmt::format("a binomial standard error of up to {:.3f} (", std::sqrt(0.5 * 0.5 / 200)));
  EXPECT_EQ(md.find("not comparable"), std::string::npos);
}

TEST_F(SweepReportTest, NoHellaSwagColumnsWhereNoRunScoredIt) {
  std::vector<FakeRun> runs = scored_runs();
  for (FakeRun& run : runs) run.hellaswag.reset();
  write_sweep(runs);
  const std::string md = report();
  EXPECT_EQ(md.find("HellaSwag"), std::string::npos);
  EXPECT_CONTAINS(md, "| - | muon | 0.001 (config) | 3 | 3.9833 ± 0.1041 |\n");
}

TEST_F(SweepReportTest, AVariantThatDidNotScoreHellaSwagIsMarkedNotCompared) {
  std::vector<FakeRun> runs = scored_runs();
  for (FakeRun& run : runs) {
    if (run.variant == "adamw") run.hellaswag.reset();
  }
  write_sweep(runs);
  const std::string md = report();
  EXPECT_CONTAINS(md, "| - | adamw | 0.001 (config) | 3 | 4.1000 ± 0.1000 | - |");
  EXPECT_CONTAINS(md, "| muon | 3 | 200 | 0.2900 ± 0.0100 | - | - | - |");
  EXPECT_EQ(md.find("| adamw | 3 | 200 |"), std::string::npos);
}

// Accuracies on few items can differ by the same amount in every pair:
// the t-test's p = 0 would overclaim, so none is given (nor corrected).
TEST_F(SweepReportTest, PairsThatAllDifferAlikeGetNoPValue) {
  std::vector<FakeRun> runs = scored_runs();
  runs[3].hellaswag->second = 0.28, runs[4].hellaswag->second = 0.29, runs[5].hellaswag->second = 0.27;
  write_sweep(runs);
  const std::string md = report();
  EXPECT_CONTAINS(md, "| muon | 3 | 200 | 0.2800 ± 0.0100 | +0.0200 [+0.0200, +0.0200] | n/a (every one of 3 pairs "
                      "differs by the same amount) | - |");
}

TEST_F(SweepReportTest, DifferentItemCountsAreFlagged) {
  std::vector<FakeRun> runs = scored_runs();
  runs[3].items = 500;  // one muon seed scored more items
  write_sweep(runs);
  const std::string md = report();
  EXPECT_CONTAINS(md, "**Runs scored different numbers of items (200, 500): their accuracies are not comparable.**");
  EXPECT_CONTAINS(md, "| muon | 3 | 200 / 500 | 0.2900 ± 0.0100 |");
}

// The CSV's rows by id, each a map from column to cell (no cell here is
// quoted).
std::map<std::string, std::map<std::string, std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> lines;
  for (size_t start = 0; start < text.size();) {
    const size_t end = text.find('\n', start);
    std::vector<std::string> cells;
    const std::string line = text.substr(start, end - start);
    for (size_t from = 0;;) {
      const size_t comma = line.find(',', from);
      cells.push_back(line.substr(from, comma - from));
      if (comma == std::string::npos) break;
      from = comma + 1;
    }
    lines.push_back(cells);
    start = end + 1;
  }
  std::map<std::string, std::map<std::string, std::string>> rows;
  for (size_t i = 1; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].size(), lines[0].size()) << "row " << i;
    for (size_t j = 0; j < lines[0].size(); ++j) rows[lines[i][0]][lines[0][j]] = lines[i][j];
  }
  return rows;
}

TEST_F(SweepReportTest, RunsCsvHoldsEveryFinishedRunWithItsAxesAndFigures) {
  write_sweep(scored_runs());
  SweepReportOptions options;
  options.sweep_dir = dir_.path();
  options.plots = false;
  options.target_loss = 4.1;
  options.out = dir_.file("out/ablations.md");
  const SweepReportResult result = write_sweep_report(options);
  EXPECT_EQ(result.csv_path, dir_.file("out/ablations-runs.csv"));
  EXPECT_CONTAINS(read_whole_file(result.markdown_path), "a row each, with its axes and the figures above: "
                                                         "`ablations-runs.csv`");
  const std::string text = read_whole_file(result.csv_path);
  EXPECT_EQ(text.substr(0, text.find('\n')),
            "id,variant,lr,run.seed,val_loss,train_loss,steps,tokens,seconds,tokens_to_target,peak_max_logit,"
            "final_max_logit,hellaswag_acc_norm,hellaswag_items,run_dir");
  const auto rows = csv_rows(text);
  ASSERT_EQ(rows.size(), scored_runs().size());
  for (const FakeRun& run : scored_runs()) {
    const std::string id = fmt::format("{}/run.seed={}", run.variant, run.seed);
    ASSERT_EQ(rows.count(id), 1u) << id;
    const auto& row = rows.at(id);
    EXPECT_EQ(row.at("variant"), run.variant);
    EXPECT_EQ(row.at("run.seed"), std::to_string(run.seed));
    EXPECT_EQ(std::stod(row.at("val_loss")), run.val_loss) << id;  // read back exactly
    EXPECT_EQ(std::stod(row.at("hellaswag_acc_norm")), run.hellaswag->second) << id;  // the last evaluation's
    EXPECT_EQ(row.at("hellaswag_items"), "200");
    EXPECT_EQ(row.at("peak_max_logit"), "") << "no run tracked logits";
    EXPECT_EQ(row.at("run_dir"), sweep_run_dir(dir_.path(), id));
    // Validation losses val + 0.25 at 5,120 tokens and val at 10,240: the
    // target 4.1 is crossed at 5,120 (1 + (val + 0.25 - 4.1) / 0.25), when
    // the run gets there at all.
    const double start = run.val_loss + 0.25;
    if (run.val_loss <= 4.1) {
      EXPECT_NEAR(std::stod(row.at("tokens_to_target")), 5120 * (1 + (start - 4.1) / 0.25), 1e-6) << id;
    } else {
      EXPECT_EQ(row.at("tokens_to_target"), "") << id;
    }
  }
}

}  // namespace
}  // namespace muonlab::sweep
