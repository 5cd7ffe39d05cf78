#include "muonlab/sweep/sweep_index.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "muonlab/core/errors.h"

namespace muonlab::sweep {
namespace fs = std::filesystem;

RunOutcome read_run_outcome(const std::string& run_dir) {
  RunOutcome outcome;
  // archived.json: finished, its weights left out by scripts/archive-sweep.
  outcome.finished = fs::exists(fs::path(run_dir) / "model.safetensors") ||
                     fs::exists(fs::path(run_dir) / "archived.json");
  std::ifstream metrics(fs::path(run_dir) / "metrics.jsonl");
  for (std::string line; std::getline(metrics, line);) {
    nlohmann::json record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) continue;  // a line cut by a crash
    if (record.contains("val_loss")) outcome.final_val_loss = record["val_loss"].get<double>();
    if (record.contains("loss") && !record.contains("skipped")) {
      outcome.final_train_loss = record["loss"].get<double>();
      outcome.steps = record.value("step", int64_t{0});
      outcome.tokens = record.value("tokens", int64_t{0});
      outcome.seconds = record.value("elapsed_s", 0.0);
    }
  }
  return outcome;
}

RunRecord record_of(const SweepRun& run, const std::string& run_dir, const std::string& status_if_unfinished,
                    int64_t attempts) {
  RunRecord record;
  record.id = run.id;
  record.variant = run.variant;
  record.lr = run.lr;
  nlohmann::ordered_json axes = nlohmann::ordered_json::object();
  for (const auto& [key, value] : run.axis_values) axes[key] = value;
  record.axes_json = axes.dump();
  record.outcome = read_run_outcome(run_dir);
  record.status = record.outcome.finished ? "done" : status_if_unfinished;
  record.attempts = attempts;
  record.run_dir = run_dir;
  return record;
}

namespace {

// A prepared statement, finalized on scope exit.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql, const std::string& path) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &statement_, nullptr) != SQLITE_OK) {
      fail("sweep index '{}': {}", path, sqlite3_errmsg(db));
    }
  }
  ~Statement() { sqlite3_finalize(statement_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() { return statement_; }

 private:
  sqlite3* db_;
  sqlite3_stmt* statement_ = nullptr;
};

void bind_text(sqlite3_stmt* s, int i, const std::string& text) {
  sqlite3_bind_text(s, i, text.c_str(), -1, SQLITE_TRANSIENT);
}
void bind_optional(sqlite3_stmt* s, int i, const std::optional<double>& value) {
  if (value) {
    sqlite3_bind_double(s, i, *value);
  } else {
    sqlite3_bind_null(s, i);
  }
}
std::string column_text(sqlite3_stmt* s, int i) {
  const auto* text = sqlite3_column_text(s, i);
  return text == nullptr ? std::string() : reinterpret_cast<const char*>(text);
}
std::optional<double> column_optional(sqlite3_stmt* s, int i) {
  if (sqlite3_column_type(s, i) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_double(s, i);
}

}  // namespace

SweepIndex::SweepIndex(const std::string& path) : path_(path) {
  if (sqlite3_open(path.c_str(), &db_) != SQLITE_OK) {
    const std::string message = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    fail("sweep index '{}': cannot open: {}", path, message);
  }
  sqlite3_busy_timeout(db_, 5000);
  try {
    exec("CREATE TABLE IF NOT EXISTS runs ("
         " id TEXT PRIMARY KEY, variant TEXT NOT NULL, lr TEXT, axes TEXT NOT NULL,"
         " status TEXT NOT NULL, attempts INTEGER NOT NULL,"
         " final_val_loss REAL, final_train_loss REAL, steps INTEGER, tokens INTEGER, seconds REAL,"
         " run_dir TEXT NOT NULL)");
  } catch (...) {
    sqlite3_close(db_);
    throw;
  }
}

SweepIndex::~SweepIndex() { sqlite3_close(db_); }

void SweepIndex::exec(const std::string& sql) const {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    const std::string text = message ? message : "unknown error";
    sqlite3_free(message);
    fail("sweep index '{}': {}", path_, text);
  }
}

void SweepIndex::put(const RunRecord& r) {
  Statement s(db_,
              "INSERT OR REPLACE INTO runs (id, variant, lr, axes, status, attempts, final_val_loss, "
              "final_train_loss, steps, tokens, seconds, run_dir) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, "
              "?11, ?12)",
              path_);
  bind_text(s.get(), 1, r.id);
  bind_text(s.get(), 2, r.variant);
  bind_text(s.get(), 3, r.lr);
  bind_text(s.get(), 4, r.axes_json);
  bind_text(s.get(), 5, r.status);
  sqlite3_bind_int64(s.get(), 6, r.attempts);
  bind_optional(s.get(), 7, r.outcome.final_val_loss);
  bind_optional(s.get(), 8, r.outcome.final_train_loss);
  sqlite3_bind_int64(s.get(), 9, r.outcome.steps);
  sqlite3_bind_int64(s.get(), 10, r.outcome.tokens);
  sqlite3_bind_double(s.get(), 11, r.outcome.seconds);
  bind_text(s.get(), 12, r.run_dir);
  if (sqlite3_step(s.get()) != SQLITE_DONE) fail("sweep index '{}': {}", path_, sqlite3_errmsg(db_));
}

std::vector<RunRecord> SweepIndex::all() const {
  Statement s(db_,
              "SELECT id, variant, lr, axes, status, attempts, final_val_loss, final_train_loss, steps, tokens, "
              "seconds, run_dir FROM runs ORDER BY id",
              path_);
  std::vector<RunRecord> records;
  int code;
  while ((code = sqlite3_step(s.get())) == SQLITE_ROW) {
    RunRecord r;
    r.id = column_text(s.get(), 0);
    r.variant = column_text(s.get(), 1);
    r.lr = column_text(s.get(), 2);
    r.axes_json = column_text(s.get(), 3);
    r.status = column_text(s.get(), 4);
    r.attempts = sqlite3_column_int64(s.get(), 5);
    r.outcome.final_val_loss = column_optional(s.get(), 6);
    r.outcome.final_train_loss = column_optional(s.get(), 7);
    r.outcome.steps = sqlite3_column_int64(s.get(), 8);
    r.outcome.tokens = sqlite3_column_int64(s.get(), 9);
    r.outcome.seconds = sqlite3_column_double(s.get(), 10);
    r.run_dir = column_text(s.get(), 11);
    r.outcome.finished = r.status == "done";
    records.push_back(std::move(r));
  }
  if (code != SQLITE_DONE) fail("sweep index '{}': {}", path_, sqlite3_errmsg(db_));
  return records;
}

RunAxes axes_of(const RunRecord& record) {
  RunAxes axes;
  std::vector<std::string> others;
  const auto values = nlohmann::ordered_json::parse(record.axes_json);
  for (const auto& [key, value] : values.items()) {
    if (key == kSeedAxis) {
      axes.seed = value.get<std::string>();
    } else {
      others.push_back(key + "=" + value.get<std::string>());
    }
  }
  axes.condition = fmt::format("{}", fmt::join(others, ", "));
  return axes;
}

}  // namespace muonlab::sweep
