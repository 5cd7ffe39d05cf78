// `muonlab generate`: sample tokens from a model with a KV cache.
#include <iostream>
#include <memory>
#include <sstream>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/model_args.h"
#include "muonlab/core/errors.h"
#include "muonlab/models/generate.h"

namespace muonlab::cli {

namespace {

std::vector<int64_t> parse_token_ids(const std::string& text) {
  std::vector<int64_t> ids;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    try {
      size_t used = 0;
      ids.push_back(std::stoll(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      fail("--prompt-ids: '{}' is not an integer token id (expected e.g. 464,3290,318)", item);
    }
  }
  return ids;
}

}  // namespace

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
    const auto prompt = parse_token_ids(args->prompt_ids);
    const auto tokens = models::generate(model, prompt, args->sampling);
    std::cout << fmt::format("{}", fmt::join(tokens, " ")) << std::endl;
  });
}

}  // namespace muonlab::cli
