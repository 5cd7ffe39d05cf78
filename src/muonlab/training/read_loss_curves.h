// The train and validation losses (and HellaSwag accuracy) of a run's
// metrics.jsonl, for plotting.
#pragma once

#include <string>
#include <vector>

#include "muonlab/analysis/loss_curves.h"
#include "muonlab/training/metrics_records.h"

namespace muonlab::training {

// Step records ("loss") give the train curve, evaluation records ("val_loss")
// the validation curve and ("hellaswag_acc_norm") the HellaSwag curve; other
// records are skipped. An evaluation record
// without "tokens" (files from before the trainer wrote it there) takes the
// tokens of the step record of the same step. Fails naming "path:line" for
// a bad line or a loss record with no step or a value that is not a number.
analysis::LossCurves read_loss_curves(const std::string& jsonl_path);

// The same curves from records already read (for readers that take more than
// the curves from one pass over the file); `jsonl_path` names it in errors.
analysis::LossCurves loss_curves_of(const std::vector<MetricsRecord>& records, const std::string& jsonl_path);

}  // namespace muonlab::training
