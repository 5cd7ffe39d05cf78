// A sweep report's finished runs as a CSV table beside its Markdown, for
// analysis of one's own in pandas or a spreadsheet: a row per run with its
// axes as columns of their own and what the report computed for it.
#pragma once

#include <string>
#include <vector>

#include "muonlab/sweep/report_runs.h"

namespace muonlab::sweep {

// Columns: id, variant, lr, one per axis key (in order first seen: run.seed,
// data.batch_size, ...), then val_loss, train_loss, steps, tokens, seconds,
// tokens_to_target, peak_max_logit, final_max_logit, hellaswag_acc_norm,
// hellaswag_items, run_dir. A value a run does not have (no target loss,
// logits not tracked, an axis it does not vary) leaves its cell empty;
// numbers read back as the same double.
std::string runs_csv_text(const std::vector<ReportRun>& runs);

}  // namespace muonlab::sweep
