#include "muonlab/analysis/gnuplot.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <system_error>

#include "muonlab/core/errors.h"
#include "muonlab/core/run_command.h"

namespace muonlab::analysis {

std::string gnuplot_string(const std::string& text) {
  std::string quoted = "'";
  for (char c : text) {
    if (c == '\n' || c == '\r') c = ' ';
    if (c == '\'') quoted += '\'';
    quoted += c;
  }
  return quoted + "'";
}

std::string gnuplot_number(double value) { return std::isfinite(value) ? fmt::format("{}", value) : "NaN"; }

std::string gnuplot_png_terminal_choice() {
  return "# pngcairo draws smoother lines and text; libgd's png where gnuplot lacks cairo.\n"
         "png_terminal = strstrt(GPVAL_TERMINALS, \"pngcairo\") > 0 ? \"pngcairo\" : \"png\"\n";
}

std::array<ImageFormat, 2> png_and_svg(int width, int height) {
  return {ImageFormat{"png", fmt::format("@png_terminal size {},{} noenhanced", width, height)},
          ImageFormat{"svg", fmt::format("svg size {},{} noenhanced background '#ffffff'", width, height)}};
}

void create_plot_folder(const std::string& folder) {
  std::error_code error;
  std::filesystem::create_directories(folder, error);
  if (error) fail("cannot create the plot folder '{}': {}", folder, error.message());
}

std::string run_gnuplot(const std::string& script_path) {
  CommandResult result = run_command({"gnuplot", script_path});
  if (!result.found) fail("gnuplot not found on PATH; scripts/setup installs gnuplot-nox");
  if (result.exit_status != 0) {
    const std::string printed = result.output.substr(0, result.output.find_last_not_of(" \n") + 1);
    fail("gnuplot failed (exit status {}) on '{}':\n{}", result.exit_status, script_path, printed);
  }
  return result.output;
}

}  // namespace muonlab::analysis
