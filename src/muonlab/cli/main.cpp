// muonlab: one executable, git-style subcommands.
#include <iostream>

#include "muonlab/cli/commands.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/threads.h"

int main(int argc, char** argv) {
  CLI::App app{"muonlab: Muon-family optimizers and transformer pre-training on LibTorch"};
  app.require_subcommand(1);
  muonlab::use_all_cores_unless_told();
  muonlab::cli::register_version(app);
  muonlab::cli::register_bench(app);
  muonlab::cli::register_model(app);
  muonlab::cli::register_generate(app);
  muonlab::cli::register_data(app);
  muonlab::cli::register_train(app);
  muonlab::cli::register_plot(app);
  muonlab::cli::register_export(app);
  muonlab::cli::register_align(app);
  muonlab::cli::register_sweep(app);
  muonlab::cli::register_report(app);
  muonlab::cli::register_launch(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const muonlab::Error& e) {
    std::cerr << "muonlab: error: " << e.what() << "\n";
    return 1;
  } catch (const c10::Error& e) {
    std::cerr << "muonlab: error: " << e.what_without_backtrace() << "\n";
    return 1;
  }
  return 0;
}
