// Each subcommand registers itself on the root CLI11 app.
#pragma once

#include <CLI/CLI.hpp>

namespace muonlab::cli {

void register_version(CLI::App& app);
void register_bench(CLI::App& app);
void register_model(CLI::App& app);
void register_generate(CLI::App& app);
void register_eval(CLI::App& app);
void register_data(CLI::App& app);
void register_train(CLI::App& app);
void register_plot(CLI::App& app);
void register_export(CLI::App& app);
void register_align(CLI::App& app);
void register_sweep(CLI::App& app);
void register_report(CLI::App& app);
void register_launch(CLI::App& app);
void register_completion(CLI::App& app);  // last: it completes every command registered before it

}  // namespace muonlab::cli
