#include "muonlab/sweep/sweep_status.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <set>

#include "muonlab/core/folder_lock.h"
#include "muonlab/sweep/sweep_runner.h"
#include "muonlab/training/checkpoint.h"
#include "muonlab/training/run_folder.h"

namespace muonlab::sweep {
namespace fs = std::filesystem;

namespace {

std::string duration_text(double seconds) {
  const auto whole = static_cast<int64_t>(std::llround(seconds));
  if (whole < 60) return fmt::format("{} s", whole);
  if (whole < 3600) return fmt::format("{} min {} s", whole / 60, whole % 60);
  return fmt::format("{} h {} min", whole / 3600, whole % 3600 / 60);
}

// "step 120 of 250" (the run's own config.toml gives the planned steps),
// or "step 120" without one, or "" before the first logged step.
std::string progress_text(const std::string& run_dir, const RunOutcome& outcome) {
  if (outcome.steps == 0) return "";
  std::string planned;
  if (fs::exists(fs::path(run_dir) / "config.toml")) {
    try {
      planned = fmt::format(" of {}", training::load_run_config(run_dir).run.steps);
    } catch (const std::exception&) {
      // A config this build cannot read: the progress without the total.
    }
  }
  return fmt::format("step {}{}", outcome.steps, planned);
}

std::string resume_point(const std::string& run_dir) {
  const auto checkpoint = training::newest_checkpoint(run_dir);
  return checkpoint ? fmt::format("resumes from checkpoint {}", fs::path(*checkpoint).filename().string())
                    : "no checkpoint yet: restarts from step 0";
}

std::string joined(const std::vector<std::string>& parts) {
  std::string text;
  for (const auto& part : parts) {
    if (part.empty()) continue;
    if (!text.empty()) text += ", ";
    text += part;
  }
  return text;
}

RunStatus status_of(const std::string& id, const std::string& run_dir, const RunRecord* indexed) {
  RunStatus status{id, "not started", ""};
  if (!fs::exists(run_dir)) return status;
  const RunOutcome outcome = read_run_outcome(run_dir);
  if (outcome.finished) {
    status.state = "done";
    status.detail = joined({outcome.final_val_loss ? fmt::format("val {:.4f}", *outcome.final_val_loss) : "",
                            fmt::format("{} steps", outcome.steps), duration_text(outcome.seconds)});
    return status;
  }
  const std::string progress = progress_text(run_dir, outcome);
  if (const auto pid = folder_lock_holder(run_dir)) {
    status.state = "running";
    status.detail = joined({progress, fmt::format("pid {}", *pid)});
  } else if (indexed != nullptr && indexed->status == "failed") {
    status.state = "failed";
    status.detail = joined({fmt::format("{} attempt(s)", indexed->attempts), progress,
                            fmt::format("log: {}/train.log", run_dir)});
  } else {
    status.state = "stopped";
    status.detail = joined({progress, resume_point(run_dir)});
  }
  return status;
}

}  // namespace

std::vector<RunStatus> sweep_status(const std::vector<SweepRun>& runs, const std::string& sweep_dir) {
  std::map<std::string, RunRecord> indexed;
  const fs::path index_path = fs::path(sweep_dir) / "index.sqlite";
  if (fs::exists(index_path)) {
    for (auto& record : SweepIndex(index_path.string()).all()) indexed.emplace(record.id, std::move(record));
  }
  std::vector<RunStatus> statuses;
  std::set<std::string> listed;
  auto add = [&](const std::string& id) {
    const auto found = indexed.find(id);
    statuses.push_back(status_of(id, sweep_run_dir(sweep_dir, id), found == indexed.end() ? nullptr : &found->second));
    listed.insert(id);
  };
  for (const auto& run : runs) add(run.id);
  for (const auto& [id, record] : indexed) {
    if (listed.count(id) == 0) add(id);
  }
  return statuses;
}

std::string count_states(const std::vector<RunStatus>& statuses) {
  std::vector<std::string> parts;
  for (const char* state : {"done", "running", "stopped", "failed", "not started"}) {
    const auto count = std::count_if(statuses.begin(), statuses.end(),
                                     [&](const RunStatus& status) { return status.state == state; });
    if (count > 0) parts.push_back(fmt::format("{} {}", count, state));
  }
  return joined(parts);
}

}  // namespace muonlab::sweep
