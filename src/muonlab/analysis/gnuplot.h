// What every chart muonlab draws with gnuplot shares: quoting text into a
// gnuplot script, numbers gnuplot reads back, the PNG terminal choice, the
// output folder, and running gnuplot on a script with a useful error.
#pragma once

#include <array>
#include <string>

namespace muonlab::analysis {

// A single-quoted gnuplot string: inside one, only a quote is special, and
// doubling it stands for one quote; backslashes are taken literally. Line
// breaks become spaces (a gnuplot string cannot hold one).
std::string gnuplot_string(const std::string& text);

// The shortest exact decimal form; "NaN" (which gnuplot leaves out) for
// infinities and NaN.
std::string gnuplot_number(double value);

// Script lines that set `png_terminal` to pngcairo where gnuplot has it
// (smoother lines and text), else libgd's png; terminals then read
// "@png_terminal size ...".
std::string gnuplot_png_terminal_choice();

// A file format every chart is written in: its extension and the gnuplot
// terminal that writes it.
struct ImageFormat {
  std::string extension;
  std::string terminal;
};

// PNG (the terminal gnuplot_png_terminal_choice picked) and SVG (white
// background), width x height pixels; noenhanced, so names such as "run_a"
// print as they are instead of subscripting the "a".
std::array<ImageFormat, 2> png_and_svg(int width, int height);

// Creates `folder` (and its parents) if missing; fails naming it.
void create_plot_folder(const std::string& folder);

// Runs gnuplot on the script and returns what it printed (warnings) when it
// succeeds. Fails when gnuplot is not on PATH, or with what it printed when
// it fails.
std::string run_gnuplot(const std::string& script_path);

}  // namespace muonlab::analysis
