// A sweep: a base training config, the optimizer variants to compare (each
// with its own settings and its own small learning-rate grid, because a
// comparison at one shared lr is unfair), and axes whose every combination
// runs for every variant (seeds, batch sizes, group sizes, ...).
//
//   [sweep]
//   name = "adamw-vs-muon"
//   base = "../configs/tiny-cpu.toml"   # relative to the spec file
//   baseline = "adamw"                  # the variant the report tests against
//   parallel = 2                        # runs at once
//   retries = 1                         # a failed run is retried this often
//   target_loss = 5.0                   # optional: tokens to reach it
//   lr_extensions = 2                   # optional: grow an lr grid whose best
//                                       # is at an edge, up to 2 lrs per variant
//   set = ["run.steps=2000"]            # optional: overrides for every run
//
//   [axes]                              # any config key, a list of values
//   "run.seed" = [1, 2, 3]
//   # Keys that move together (equal tokens per run at every batch size):
//   # one axis, one point per inner list, a value for each key in order.
//   "data.batch_size, run.steps" = [[4, 800], [8, 400], [16, 200]]
//
//   [[variant]]
//   name = "adamw"
//   set = ["optimizer.name=adamw"]      # --set overrides of the base config
//   lr = [1e-3, 3e-3]                   # optimizer.lr grid (optional)
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace muonlab::sweep {

struct SweepVariant {
  std::string name;
  std::vector<std::string> overrides;  // "key=value"
  std::vector<std::string> lrs;        // optimizer.lr values as written; empty: the config's
  int64_t extensions = 0;              // lrs the runner added beyond the grid's edges
};

// An axis sets one config key, or several keys together (a linked axis,
// written "key1, key2" in the spec); each point has one value per key.
struct SweepAxis {
  std::vector<std::string> keys;                 // config keys, e.g. {"run.seed"}
  std::vector<std::vector<std::string>> points;  // per point, a --set value for each key
};

struct SweepSpec {
  std::string path;  // the spec file
  std::string name;
  std::string base;  // the base config, resolved against the spec's folder
  std::string baseline;
  int64_t parallel = 1;
  int64_t retries = 1;
  std::optional<double> target_loss;
  // How many lrs the runner may add beyond a grid's edge per variant (one
  // geometric step each, lr_bracket.h) while the best lr sits at an edge.
  int64_t lr_extensions = 0;
  std::vector<std::string> common_overrides;  // [sweep] set: before each variant's own
  std::vector<SweepAxis> axes;
  std::vector<SweepVariant> variants;
};

// One run of the grid: its variant, lr and axis values, and every override
// applied to the base config ([sweep] set, the variant's, lr, then axes).
struct SweepRun {
  std::string id;       // "variant/lr=0.02,run.seed=1": also its folder under runs/
  std::string variant;
  std::string lr;       // empty when the variant has no lr grid
  std::vector<std::pair<std::string, std::string>> axis_values;
  std::vector<std::string> overrides;
};

// Reads and checks a spec: unknown sections or keys, a missing base or
// variant, an axis or variant with no values (an empty grid), duplicate
// variant names and a baseline that is not a variant all fail naming the
// file and the key. Every run's overrides are applied to the base config, so
// an unknown axis or a bad value fails here, naming the run, not hours later.
// extra_overrides (the command line's --set) follow [sweep] set: a study
// moved to another device keeps its spec, e.g. {"run.device=\"cuda\""}.
SweepSpec load_sweep_spec(const std::string& path, const std::vector<std::string>& extra_overrides = {});

// Every run of the grid: variants in spec order, then lr, then the axes in
// spec order (the last varies fastest).
std::vector<SweepRun> expand_sweep(const SweepSpec& spec);

}  // namespace muonlab::sweep
