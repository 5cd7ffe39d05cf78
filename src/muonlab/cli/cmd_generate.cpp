// `muonlab generate`: sample tokens from a model with a KV cache.
#include <iostream>
#include <memory>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/list_args.h"
#include "muonlab/cli/model_args.h"
#include "muonlab/core/errors.h"
#include "muonlab/models/generate.h"

namespace muonlab::cli {

void register_generate(CLI::App& app) {
  struct Args {
    ModelArgs model;
    std::string prompt_ids;
    models::SamplingOptions sampling;
    bool no_cache = false;
  };
  auto args = std::make_shared<Args>();
  auto* generate = app.add_subcommand(
      "generate", "Sample token ids from a model (greedy, temperature, top-k, top-p)");
  args->model.add_to(*generate, /*with_model_file=*/true, /*with_device=*/true);
  generate->add_option("--prompt-ids", args->prompt_ids, "Prompt as comma-separated token ids")
      ->required();
  generate->add_option("--max-new-tokens", args->sampling.max_new_tokens, "Tokens to add");
  generate->add_option("--temperature", args->sampling.temperature, "0 for greedy");
  generate->add_option("--top-k", args->sampling.top_k, "Keep the k most likely (0: all)");
  generate->add_option("--top-p", args->sampling.top_p, "Nucleus mass to keep (1: all)");
  generate->add_option("--seed", args->sampling.seed, "Sampling seed");
  generate->add_flag("--no-cache", args->no_cache, "Recompute the prefix every step");
  generate->callback([args] {
    auto model = args->model.build();
    args->sampling.use_cache = !args->no_cache;
    const auto prompt = parse_token_ids(args->prompt_ids, "--prompt-ids");
    const auto tokens = models::generate(model, prompt, args->sampling);
    std::cout << fmt::format("{}", fmt::join(tokens, " ")) << std::endl;
  });
}

}  // namespace muonlab::cli
