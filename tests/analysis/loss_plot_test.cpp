// The gnuplot script of `muonlab plot`, checked as text (no gnuplot needed):
// every run's label and points, colours shared by a run's two curves, both
// axes and both formats. tests/analysis/plot_check.sh runs gnuplot on it.
#include <gtest/gtest.h>

#include <limits>

#include "muonlab/analysis/loss_plot.h"
#include "test_util.h"

namespace muonlab::analysis {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<RunCurves> two_runs() {
  RunCurves a{"run_a", {}};
  a.curves.train = {{1, 1024, 4.5}, {2, 2048, 4.25}};
  a.curves.validation = {{2, 2048, 4.375}};
  RunCurves b{"it's b", {}};
  b.curves.train = {{1, 512, 4.75}, {2, kNaN, 4.5}};
  return {a, b};
}

LossPlotOptions options_in(const std::string& out_dir) {
  LossPlotOptions options;
  options.out_dir = out_dir;
  return options;
}

TEST(LossPlot, MeanCurvesOverSeedsGetABandOfOneStd) {
  // A sweep report's mean curve carries the seeds' std: a fourth column and
  // a filled band from loss - std to loss + std under the line; curves
  // without a spread keep three columns and no band.
  std::vector<RunCurves> runs = two_runs();
  runs[0].curves.train = {{1, 1024, 4.5, 0.25}, {2, 2048, 4.25, 0.125}};
  const std::string script = loss_plot_script(runs, options_in("/tmp/charts"));
  EXPECT_CONTAINS(script, "$train_1 << EOD\n1 1024 4.5 0.25\n2 2048 4.25 0.125\nEOD\n");
  EXPECT_CONTAINS(script, "$train_1 using 1:($3-$4):($3+$4) with filledcurves fillcolor rgb '#1f77b4'");
  EXPECT_CONTAINS(script, "noborder notitle");
  EXPECT_CONTAINS(script, "$train_2 << EOD\n1 512 4.75\n2 NaN 4.5\nEOD\n");
  EXPECT_EQ(script.find("$train_2 using 1:($3-$4)"), std::string::npos);
}

TEST(LossPlot, ScriptHoldsEveryRunsLabelAndPoints) {
  const std::string script = loss_plot_script(two_runs(), options_in("/tmp/charts"));
  EXPECT_CONTAINS(script, "$train_1 << EOD\n1 1024 4.5\n2 2048 4.25\nEOD\n");
  EXPECT_CONTAINS(script, "$validation_1 << EOD\n2 2048 4.375\nEOD\n");
  EXPECT_CONTAINS(script, "$train_2 << EOD\n1 512 4.75\n2 NaN 4.5\nEOD\n");
  EXPECT_EQ(script.find("$validation_2"), std::string::npos);  // run b has no evaluation
  // One legend entry per run (on its train line), and one per line style.
  EXPECT_CONTAINS(script, "$train_1 using 1:3 with lines linecolor rgb '#1f77b4' linewidth 2 title 'run_a'");
  EXPECT_CONTAINS(script, "pointsize 1.2 notitle");
  EXPECT_CONTAINS(script, "title 'it''s b'");  // a quote doubled inside a gnuplot string
  EXPECT_CONTAINS(script, "title 'validation'");
  EXPECT_CONTAINS(script, "set key outside right");
  EXPECT_CONTAINS(script, "noenhanced");              // so "run_a" is not typeset as run subscript a
}

TEST(LossPlot, ARunsTrainAndValidationCurvesShareItsColour) {
  const std::string script = loss_plot_script(two_runs(), options_in("/tmp/charts"));
  EXPECT_CONTAINS(script, "$train_1 using 1:3 with lines linecolor rgb '#1f77b4'");
  EXPECT_CONTAINS(script, "$validation_1 using 1:3 with linespoints linecolor rgb '#1f77b4'");
  EXPECT_CONTAINS(script, "$train_2 using 1:3 with lines linecolor rgb '#ff7f0e'");
}

TEST(LossPlot, DrawsByStepAndByTokensAsPngAndSvg) {
  const std::string script = loss_plot_script(two_runs(), options_in("/tmp/charts"));
  EXPECT_CONTAINS(script, "set xlabel 'step'");
  EXPECT_CONTAINS(script, "set xlabel 'tokens trained'");
  EXPECT_CONTAINS(script, "$train_1 using 2:3 with lines");
  EXPECT_CONTAINS(script, "set terminal @png_terminal");
  EXPECT_CONTAINS(script, "set terminal svg");
  for (const std::string& figure : loss_plot_files(options_in("/tmp/charts")).figures) {
    EXPECT_CONTAINS(script, "set output '" + figure + "'");
  }
}

TEST(LossPlot, FilesAreNamedAfterTheAxisAndFormat) {
  LossPlotOptions options = options_in("/tmp/charts/");
  options.name = "muon";
  LossPlotFiles files = loss_plot_files(options);
  EXPECT_EQ(files.script, "/tmp/charts/muon.gp");
  EXPECT_EQ(files.figures, (std::vector<std::string>{"/tmp/charts/muon_vs_steps.png", "/tmp/charts/muon_vs_steps.svg",
                                                      "/tmp/charts/muon_vs_tokens.png",
                                                      "/tmp/charts/muon_vs_tokens.svg"}));
  options.name = "sub/muon";
  EXPECT_CONTAINS(testing::error_message([&] { loss_plot_files(options); }), "plot name 'sub/muon'");
}

TEST(LossPlot, LogScaleOnlyWhenLossesSpanAFactorOfTen) {
  EXPECT_EQ(loss_plot_script(two_runs(), options_in("/tmp")).find("set logscale y"), std::string::npos);
  std::vector<RunCurves> runs = two_runs();
  runs[0].curves.train.push_back({3, 3072, 0.4});
  EXPECT_CONTAINS(loss_plot_script(runs, options_in("/tmp")), "set logscale y");
}

TEST(LossPlot, LogScaleAsAskedAndTitleWhenGiven) {
  LossPlotOptions options = options_in("/tmp");
  options.log_y = LogScale::kOn;
  options.title = "Muon vs AdamW";
  const std::string script = loss_plot_script(two_runs(), options);
  EXPECT_CONTAINS(script, "set logscale y");
  EXPECT_CONTAINS(script, "set title 'Muon vs AdamW'");
  std::vector<RunCurves> runs = two_runs();
  runs[0].curves.train.push_back({3, 3072, 0.4});
  options.log_y = LogScale::kOff;
  EXPECT_EQ(loss_plot_script(runs, options).find("set logscale y"), std::string::npos);
}

// The y range starts below the lowest loss and ends above the highest after
// the first 5% of steps: the initial 10.0 at step 1 of 100 is left above it.
TEST(LossPlot, YRangeLeavesOutTheFirstStepsSteepFall) {
  RunCurves run{"a", {}};
  run.curves.train = {{1, 1, 10.0}, {50, 50, 3.0}, {100, 100, 2.0}};
  const std::string script = loss_plot_script({run}, options_in("/tmp"));
  EXPECT_CONTAINS(script, "set yrange [1.95:3.05]");  // 2 and 3, less and plus 5% of the span
}

// A window of 3: each point the mean of itself and its neighbours (two at
// the ends); NaN losses are left out of the mean.
TEST(LossPlot, SmoothingIsACentredMovingAverageOfTrainLoss) {
  RunCurves run{"a", {}};
  run.curves.train = {{1, 1, 3.0}, {2, 2, 6.0}, {3, 3, kNaN}, {4, 4, 2.0}};
  run.curves.validation = {{4, 4, 7.0}};
  LossPlotOptions options = options_in("/tmp");
  options.smooth = 3;
  const std::string script = loss_plot_script({run}, options);
  EXPECT_CONTAINS(script, "$train_1 << EOD\n1 1 4.5\n2 2 4.5\n3 3 4\n4 4 2\nEOD\n");
  EXPECT_CONTAINS(script, "$validation_1 << EOD\n4 4 7\nEOD\n");
  options.smooth = 0;
  EXPECT_CONTAINS(testing::error_message([&] { loss_plot_script({run}, options); }), "smoothing window 0");
}

// Runs that scored HellaSwag get a third chart, its acc_norm by tokens
// trained in each run's colour, on a linear axis of its own (the loss
// charts' log scale and y range reset); runs that did not, get none.
TEST(LossPlot, HellaSwagAccuracyGetsAChartOfItsOwn) {
  std::vector<RunCurves> runs = two_runs();
  runs[0].curves.train.push_back({3, 3072, 0.4});  // losses span 10x: a log scale before the HellaSwag chart
  runs[1].curves.hellaswag = {{1, 512, 0.25, 0.02}, {2, 1024, 0.3, 0.01}};
  const LossPlotOptions options = options_in("/tmp/charts");
  const std::string script = loss_plot_script(runs, options);
  EXPECT_CONTAINS(script, "$hellaswag_2 << EOD\n1 512 0.25 0.02\n2 1024 0.3 0.01\nEOD\n");
  EXPECT_EQ(script.find("$hellaswag_1"), std::string::npos);
  const size_t chart = script.find("set ylabel 'HellaSwag acc_norm");
  ASSERT_NE(chart, std::string::npos);
  EXPECT_LT(script.find("set logscale y"), chart);
  EXPECT_CONTAINS(script.substr(chart - 40), "unset logscale y\nset autoscale y\n");
  EXPECT_CONTAINS(script, "$hellaswag_2 using 2:($3-$4):($3+$4) with filledcurves fillcolor rgb '#ff7f0e'");
  EXPECT_CONTAINS(script, "$hellaswag_2 using 2:3 with linespoints linecolor rgb '#ff7f0e' linewidth 2 pointtype 7 "
                          "pointsize 1.2 title 'it''s b'");
  const std::vector<std::string> figures = hellaswag_plot_figures(options);
  EXPECT_EQ(figures, (std::vector<std::string>{"/tmp/charts/loss_hellaswag_vs_tokens.png",
                                                "/tmp/charts/loss_hellaswag_vs_tokens.svg"}));
  for (const std::string& figure : figures) EXPECT_CONTAINS(script, "set output '" + figure + "'");
  EXPECT_EQ(loss_plot_script(two_runs(), options).find("$hellaswag"), std::string::npos);
}

TEST(LossPlot, RefusesARunWithNothingToDraw) {
  std::vector<RunCurves> runs = two_runs();
  runs.push_back({"fresh", {}});
  EXPECT_CONTAINS(testing::error_message([&] { loss_plot_script(runs, options_in("/tmp")); }),
                  "run 'fresh' has no train or validation loss to plot yet");
  EXPECT_CONTAINS(testing::error_message([] { loss_plot_script({}, options_in("/tmp")); }), "no runs to plot");
}

}  // namespace
}  // namespace muonlab::analysis
