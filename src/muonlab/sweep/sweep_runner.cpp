#include "muonlab/sweep/sweep_runner.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <map>
#include <ostream>

#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/errors.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/sweep/sweep_index.h"

extern char** environ;

namespace muonlab::sweep {
namespace fs = std::filesystem;
namespace {

std::string this_executable() {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (error) fail("sweep: cannot find this executable (/proc/self/exe): {}", error.message());
  return self.string();
}

// `muonlab train` for `run`, resuming from its newest checkpoint if any.
std::vector<std::string> train_command(const std::string& binary, const SweepSpec& spec, const SweepRun& run,
                                       const std::string& run_dir) {
  std::vector<std::string> argv = {binary, "train", "--config", spec.base, "--sample-tokens", "0"};
  for (const auto& override : run.overrides) {
    argv.push_back("--set");
    argv.push_back(override);
  }
  argv.push_back("--set");
  argv.push_back("run.out_dir=" + run_dir);
  if (training::newest_checkpoint(run_dir)) argv.push_back("--resume");
  return argv;
}

// Starts argv with stdout and stderr appended to `log_path`.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = 0;
  const int code = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (code != 0) fail("sweep: cannot start '{}': {}", argv[0], std::strerror(code));
  return pid;
}

std::string describe_exit(int status) {
  if (WIFEXITED(status)) return fmt::format("exit code {}", WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return fmt::format("killed by signal {}", WTERMSIG(status));
  return "stopped";
}

// What `muonlab report` needs of the spec, next to the runs.
void write_sweep_metadata(const SweepSpec& spec, const std::string& out_dir) {
  nlohmann::ordered_json meta = {{"name", spec.name}, {"spec", spec.path}, {"base", spec.base},
                                 {"baseline", spec.baseline}};
  if (spec.target_loss) meta["target_loss"] = *spec.target_loss;
  write_text_file_atomically((fs::path(out_dir) / "sweep.json").string(), meta.dump(2) + "\n");
}

}  // namespace

std::string sweep_run_dir(const std::string& sweep_dir, const SweepRun& run) {
  return (fs::path(sweep_dir) / "runs" / run.id).string();
}

SweepSummary run_sweep(const SweepSpec& spec, const SweepOptions& options, std::ostream& log) {
  const std::string binary = options.muonlab_binary.empty() ? this_executable() : options.muonlab_binary;
  const int64_t parallel = options.parallel > 0 ? options.parallel : spec.parallel;
  fs::create_directories(fs::path(options.out_dir) / "runs");
  write_sweep_metadata(spec, options.out_dir);
  SweepIndex index((fs::path(options.out_dir) / "index.sqlite").string());
  const std::vector<SweepRun> runs = expand_sweep(spec);

  SweepSummary summary;
  summary.runs = static_cast<int64_t>(runs.size());
  summary.index_path = index.path();
  std::vector<size_t> queue;
  std::map<size_t, int64_t> attempts;
  for (size_t i = 0; i < runs.size(); ++i) {
    const std::string dir = sweep_run_dir(options.out_dir, runs[i]);
    RunRecord record = record_of(runs[i], dir, "pending", 0);
    index.put(record);
    if (record.outcome.finished) {
      ++summary.already_done;
      log << fmt::format("[{}/{}] {}: done before, skipped\n", i + 1, runs.size(), runs[i].id);
    } else {
      queue.push_back(i);
    }
  }
  log.flush();

  std::map<pid_t, size_t> running;
  size_t next = 0;
  auto start_next = [&] {
    const size_t i = queue[next++];
    const SweepRun& run = runs[i];
    const std::string dir = sweep_run_dir(options.out_dir, run);
    fs::create_directories(dir);
    const auto argv = train_command(binary, spec, run, dir);
    ++attempts[i];
    running[spawn(argv, (fs::path(dir) / "train.log").string())] = i;
    log << fmt::format("[{}/{}] {}: started{}{}\n", i + 1, runs.size(), run.id,
                       argv.back() == "--resume" ? " (resuming from its checkpoint)" : "",
                       attempts[i] > 1 ? fmt::format(" (attempt {})", attempts[i]) : "");
    log.flush();
  };
  while (next < queue.size() || !running.empty()) {
    while (next < queue.size() && static_cast<int64_t>(running.size()) < parallel) start_next();
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;
      fail("sweep: waitpid failed: {}", std::strerror(errno));
    }
    auto it = running.find(pid);
    if (it == running.end()) continue;
    const size_t i = it->second;
    running.erase(it);
    const SweepRun& run = runs[i];
    const std::string dir = sweep_run_dir(options.out_dir, run);
    const bool succeeded = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    RunRecord record = record_of(run, dir, succeeded ? "pending" : "failed", attempts[i]);
    if (record.outcome.finished) {
      ++summary.finished;
      log << fmt::format("[{}/{}] {}: done, validation loss {}\n", i + 1, runs.size(), run.id,
                         record.outcome.final_val_loss ? fmt::format("{:.4f}", *record.outcome.final_val_loss)
                                                       : std::string("n/a"));
    } else if (attempts[i] <= spec.retries) {
      log << fmt::format("[{}/{}] {}: failed ({}), retrying; log {}/train.log\n", i + 1, runs.size(), run.id,
                         describe_exit(status), dir);
      queue.push_back(i);
    } else {
      ++summary.failed;
      record.status = "failed";
      log << fmt::format("[{}/{}] {}: FAILED ({}) after {} attempt(s); see {}/train.log\n", i + 1, runs.size(),
                         run.id, describe_exit(status), attempts[i], dir);
    }
    index.put(record);
    log.flush();
  }
  return summary;
}

}  // namespace muonlab::sweep
