#include "muonlab/sweep/sweep_runner.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <algorithm>
#include <map>
#include <set>
#include <ostream>

#include <nlohmann/json.hpp>

#include "muonlab/core/atomic_file.h"
#include "muonlab/core/child_process.h"
#include "muonlab/core/errors.h"
#include "muonlab/core/threads.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/analysis/statistics.h"
#include "muonlab/sweep/lr_bracket.h"
#include "muonlab/sweep/sweep_index.h"


namespace muonlab::sweep {
namespace fs = std::filesystem;
namespace {

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

// Starts argv with stdout and stderr appended to `log_path`, with its share
// of the cores when `parallel` runs share them.
pid_t spawn(const std::vector<std::string>& argv, const std::string& log_path, int64_t parallel) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  const std::vector<std::string> env = with_thread_budget(current_environment(), static_cast<int>(parallel));
  std::vector<char*> envp;
  for (const auto& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int code = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (code != 0) fail("sweep: cannot start '{}': {}", argv[0], std::strerror(code));
  return pid;
}

// What `muonlab report` needs of the spec, next to the runs.
void write_sweep_metadata(const SweepSpec& spec, const std::string& out_dir) {
  nlohmann::ordered_json meta = {{"name", spec.name}, {"spec", spec.path}, {"base", spec.base},
                                 {"baseline", spec.baseline}};
  if (spec.target_loss) meta["target_loss"] = *spec.target_loss;
  write_text_file_atomically((fs::path(out_dir) / "sweep.json").string(), meta.dump(2) + "\n");
}

}  // namespace

std::string sweep_run_dir(const std::string& sweep_dir, const std::string& run_id) {
  return (fs::path(sweep_dir) / "runs" / run_id).string();
}

namespace {

// Runs every run of `runs` not finished yet, `parallel` at once, retrying
// failures; adds to `summary`. `seen` holds the ids handled by an earlier
// round of this call, so they are neither counted nor logged again.
class GridRunner {
 public:
  GridRunner(const SweepSpec& spec, const SweepOptions& options, std::string binary, int64_t parallel,
             SweepIndex& index, SweepSummary& summary, std::ostream& log)
      : spec_(spec), options_(options), binary_(std::move(binary)), parallel_(parallel), index_(index),
        summary_(summary), log_(log) {}

  void run(const std::vector<SweepRun>& runs) {
    runs_ = runs;
    queue_.clear();
    next_ = 0;
    for (size_t i = 0; i < runs_.size(); ++i) {
      const std::string dir = sweep_run_dir(options_.out_dir, runs_[i]);
      const bool new_run = seen_.insert(runs_[i].id).second;
      RunRecord record = record_of(runs_[i], dir, "pending", 0);
      if (new_run) index_.put(record);
      if (!record.outcome.finished) {
        queue_.push_back(i);
        if (new_run) ++summary_.runs;
      } else if (new_run) {
        ++summary_.runs;
        ++summary_.already_done;
        log_ << fmt::format("[{}/{}] {}: done before, skipped\n", i + 1, runs_.size(), runs_[i].id);
      }
    }
    log_.flush();
    // SIGINT or SIGTERM to the sweep alone (as a scheduler sends it) goes on
    // to the running trains, which checkpoint and stop; no new run starts,
    // and the interrupted ones resume when the same command runs again.
    ForwardedSignals signals;
    while ((next_ < queue_.size() && !stopping_) || !running_.empty()) {
      pass_on_signal();  // one that came while no waitpid was blocked
      while (!stopping_ && next_ < queue_.size() && static_cast<int64_t>(running_.size()) < parallel_) start_next();
      wait_for_one();
    }
    if (stopping_)
      fail("sweep: stopped by {}: {} run(s) interrupted at their checkpoints; run the same command again to resume",
           strsignal(stopping_), interrupted_);
  }

 private:
  void start_next() {
    const size_t i = queue_[next_++];
    const SweepRun& run = runs_[i];
    const std::string dir = sweep_run_dir(options_.out_dir, run);
    fs::create_directories(dir);
    const auto argv = train_command(binary_, spec_, run, dir);
    const int64_t attempt = ++attempts_[run.id];
    running_[spawn(argv, (fs::path(dir) / "train.log").string(), parallel_)] = i;
    log_ << fmt::format("[{}/{}] {}: started{}{}\n", i + 1, runs_.size(), run.id,
                        argv.back() == "--resume" ? " (resuming from its checkpoint)" : "",
                        attempt > 1 ? fmt::format(" (attempt {})", attempt) : "");
    log_.flush();
  }

  void wait_for_one() {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno != EINTR) fail("sweep: waitpid failed: {}", std::strerror(errno));
      pass_on_signal();
      return;
    }
    auto it = running_.find(pid);
    if (it == running_.end()) return;
    const size_t i = it->second;
    running_.erase(it);
    const SweepRun& run = runs_[i];
    const int64_t attempt = attempts_[run.id];
    const std::string dir = sweep_run_dir(options_.out_dir, run);
    const bool succeeded = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    RunRecord record = record_of(run, dir, succeeded ? "pending" : "failed", attempt);
    if (record.outcome.finished) {
      ++summary_.finished;
      log_ << fmt::format("[{}/{}] {}: done, validation loss {}\n", i + 1, runs_.size(), run.id,
                          record.outcome.final_val_loss ? fmt::format("{:.4f}", *record.outcome.final_val_loss)
                                                        : std::string("n/a"));
    } else if (stopping_) {
      ++interrupted_;
      record.status = "pending";
      log_ << fmt::format("[{}/{}] {}: interrupted ({}); it resumes from its checkpoint next time\n", i + 1,
                          runs_.size(), run.id, describe_exit(status));
    } else if (attempt <= spec_.retries) {
      log_ << fmt::format("[{}/{}] {}: failed ({}), retrying; log {}/train.log\n", i + 1, runs_.size(), run.id,
                          describe_exit(status), dir);
      queue_.push_back(i);
    } else {
      ++summary_.failed;
      record.status = "failed";
      log_ << fmt::format("[{}/{}] {}: FAILED ({}) after {} attempt(s); see {}/train.log\n", i + 1, runs_.size(),
                          run.id, describe_exit(status), attempt, dir);
    }
    index_.put(record);
    log_.flush();
  }

  // The first SIGINT or SIGTERM received, passed on to every running train.
  void pass_on_signal() {
    const int signal = ForwardedSignals::received();
    if (signal == 0 || stopping_) return;
    stopping_ = signal;
    log_ << fmt::format("sweep: {}: passed on to the {} running train(s); no new run starts\n", strsignal(signal),
                        running_.size());
    log_.flush();
    for (const auto& [pid, index] : running_) ::kill(pid, signal);
  }

  const SweepSpec& spec_;
  const SweepOptions& options_;
  std::string binary_;
  int64_t parallel_;
  SweepIndex& index_;
  SweepSummary& summary_;
  std::ostream& log_;
  std::vector<SweepRun> runs_;
  std::vector<size_t> queue_;
  size_t next_ = 0;
  std::map<pid_t, size_t> running_;
  std::map<std::string, int64_t> attempts_;
  std::set<std::string> seen_;
  int stopping_ = 0;  // the signal that stops the sweep, or 0
  int64_t interrupted_ = 0;
};

// Adds to each variant's lr grid the lr one step beyond an edge where, in
// some condition, the finished runs' mean loss is lowest; at most
// `spec.lr_extensions` lrs per variant in all. Returns whether any was
// added. Deterministic in the finished runs, so a resumed sweep grows its
// grids the same way.
bool extend_lr_grids(SweepSpec& spec, const std::vector<RunRecord>& records, std::ostream& log) {
  bool extended = false;
  for (SweepVariant& variant : spec.variants) {
    if (variant.lrs.size() < 2 || variant.extensions >= spec.lr_extensions) continue;
    // condition -> lr -> losses
    std::map<std::string, std::map<double, std::vector<double>>> losses;
    for (const auto& record : records) {
      if (record.variant != variant.name || record.lr.empty() || !record.outcome.final_val_loss) continue;
      if (std::find(variant.lrs.begin(), variant.lrs.end(), record.lr) == variant.lrs.end()) continue;
      losses[axes_of(record).condition][parse_lr(record.lr)].push_back(*record.outcome.final_val_loss);
    }
    std::set<std::string> added;
    for (const auto& [condition, by_lr] : losses) {
      if (by_lr.size() != variant.lrs.size()) continue;  // part of the grid failed: nothing to bracket
      std::map<double, double> means;
      for (const auto& [lr, values] : by_lr) means[lr] = analysis::summarize(values).mean;
      if (const auto beyond = lr_beyond_edge(means)) {
        if (std::find(variant.lrs.begin(), variant.lrs.end(), *beyond) == variant.lrs.end()) added.insert(*beyond);
      }
    }
    for (const auto& lr : added) {
      if (variant.extensions >= spec.lr_extensions) break;
      log << fmt::format("{}: best lr at an edge of the grid, adding lr {}\n", variant.name, lr);
      variant.lrs.push_back(lr);
      ++variant.extensions;
      extended = true;
    }
  }
  log.flush();
  return extended;
}

}  // namespace

SweepSummary run_sweep(const SweepSpec& spec_as_written, const SweepOptions& options, std::ostream& log) {
  const std::string binary = options.muonlab_binary.empty() ? this_executable("sweep") : options.muonlab_binary;
  // The trains stop (at a checkpoint) if the sweep dies, even by SIGKILL.
  adopt_children_started_from_here();
  SweepSpec spec = spec_as_written;  // its lr grids grow when a best lr sits at an edge
  const int64_t parallel = options.parallel > 0 ? options.parallel : spec.parallel;
  fs::create_directories(fs::path(options.out_dir) / "runs");
  write_sweep_metadata(spec, options.out_dir);
  SweepIndex index((fs::path(options.out_dir) / "index.sqlite").string());
  SweepSummary summary;
  summary.index_path = index.path();
  GridRunner grid(spec, options, binary, parallel, index, summary, log);
  do {
    grid.run(expand_sweep(spec));
  } while (extend_lr_grids(spec, index.all(), log));
  return summary;
}

}  // namespace muonlab::sweep
