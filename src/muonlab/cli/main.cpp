// muonlab: one executable, git-style subcommands.
#include <nlohmann/json.hpp>

#include <cerrno>
#include <cstring>
#include <exception>
#include <filesystem>
#include <iostream>
#include <set>
#include <string>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/suggest.h"
#include "muonlab/core/allocator_settings.h"
#include "muonlab/core/child_process.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/openmp_wait.h"
#include "muonlab/core/threads.h"
#include "muonlab/core/version.h"

namespace {

int report_error(const std::string& message) {
  std::cerr << "muonlab: error: " << message << "\n";
  return 1;
}

// CLI11's own errors (unknown subcommand or flag, a missing value) exit 1
// like every other error, with the closest known name when one is near;
// --help and --version exit 0 as CLI11 prints them.
int report_parse_error(CLI::App& app, const CLI::ParseError& error, int argc, char** argv) {
  if (error.get_exit_code() == 0) return app.exit(error);
  std::string message = error.what();
  if (const std::string hint = muonlab::cli::suggestion(app, argc, argv); !hint.empty()) message += "; " + hint;
  return report_error(message + " (run with --help for the options)");
}

// Subcommands whose work is OpenMP loops and matmuls (and `version`, which
// reports what they get): they run with muonlab's OpenMP wait
// (core/openmp_wait.h), for the price of starting twice, about 0.4 s.
bool computes(int argc, char** argv) {
  static const std::set<std::string> kComputing{"train", "bench", "sweep", "launch", "align", "version"};
  return argc > 1 && kComputing.count(argv[1]) > 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (computes(argc, argv)) muonlab::restart_with_muonlab_openmp_wait(argv);
  CLI::App app{"muonlab: Muon-family optimizers and transformer pre-training on LibTorch"};
  app.require_subcommand(1);
  // Every option's default in --help, as the value its variable starts with.
  app.option_defaults()->always_capture_default();
  app.set_version_flag("--version", "muonlab " + muonlab::version());
  muonlab::stop_with_parent();  // a child of `sweep` or `launch` ends with it
  muonlab::use_all_cores_unless_told();
  muonlab::keep_freed_memory_for_reuse();  // no fresh pages from the kernel every step (allocator_settings.h)
  muonlab::cli::register_version(app);
  muonlab::cli::register_bench(app);
  muonlab::cli::register_model(app);
  muonlab::cli::register_generate(app);
  muonlab::cli::register_eval(app);
  muonlab::cli::register_data(app);
  muonlab::cli::register_train(app);
  muonlab::cli::register_plot(app);
  muonlab::cli::register_export(app);
  muonlab::cli::register_align(app);
  muonlab::cli::register_sweep(app);
  muonlab::cli::register_report(app);
  muonlab::cli::register_launch(app);
  muonlab::cli::register_completion(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return report_parse_error(app, e, argc, argv);
  } catch (const muonlab::Error& e) {
    return report_error(e.what());
  } catch (const c10::Error& e) {
    return report_error(e.what_without_backtrace());
  } catch (const std::filesystem::filesystem_error& e) {
    return report_error(e.what());  // names the path(s) and the system's reason
  } catch (const nlohmann::json::exception& e) {
    return report_error(std::string("malformed JSON: ") + e.what());
  } catch (const std::exception& e) {
    return report_error(e.what());
  }
  // Output to a full disk or a closed pipe must not pass for success
  // (`muonlab data encode > /dev/full`).
  std::cout.flush();
  if (!std::cout) return report_error(std::string("cannot write to standard output: ") + std::strerror(errno));
  return 0;
}
