// The evaluation chart's script: one data row per variant in the order
// given, one column per evaluation step across all variants, NaN where a
// variant was not evaluated, and clear failures without data.
#include "muonlab/analysis/evaluation_plot.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace muonlab::analysis {
namespace {

TEST(EvaluationPlot, RowsFollowTheVariantsAndStepsTheUnionOfEvaluations) {
  const std::vector<VariantEvaluations> variants = {
      {"g2", {{50, 2.5}, {100, 2.25}}},
      {"g12", {{50, 2.75}}},
  };
  EvaluationPlotOptions options;
  options.out_dir = "/tmp/charts";
  options.name = "evaluations_0";
  const std::string script = evaluation_plot_script(variants, options);
  EXPECT_CONTAINS(script, "index variant \"step 50\" \"step 100\"\n0 \"g2\" 2.5 2.25\n1 \"g12\" 2.75 NaN\nEOD\n");
  EXPECT_CONTAINS(script, "for [i=3:4] $evaluations using 1:i:xtic(2)");
  EXPECT_CONTAINS(script, "set output '/tmp/charts/evaluations_0.png'");
  EXPECT_CONTAINS(script, "set output '/tmp/charts/evaluations_0.svg'");
}

TEST(EvaluationPlot, NothingToPlotIsNamed) {
  EvaluationPlotOptions options;
  EXPECT_CONTAINS(testing::error_message([&] { evaluation_plot_script({}, options); }), "no variants to plot");
  EXPECT_CONTAINS(testing::error_message([&] { evaluation_plot_script({{"a", {}}, {"b", {}}}, options); }),
                  "no evaluations to plot");
  options.name = "sub/name";
  EXPECT_CONTAINS(testing::error_message([&] { evaluation_plot_script({{"a", {{1, 2.0}}}}, options); }),
                  "must be a file name without a folder");
}

}  // namespace
}  // namespace muonlab::analysis
