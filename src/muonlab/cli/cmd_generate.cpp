// `muonlab generate`: sample tokens from a model with a KV cache, from text
// (through a tokenizer) or from token ids.
#include <fmt/ranges.h>  // fmt::join (in format.h before fmt 11)
#include <iostream>
#include <memory>
#include <optional>

#include "muonlab/cli/commands.h"
#include "muonlab/cli/help_examples.h"
#include "muonlab/cli/list_args.h"
#include "muonlab/cli/model_args.h"
#include "muonlab/cli/number_checks.h"
#include "muonlab/core/errors.h"
#include "muonlab/data/text_stream.h"
#include "muonlab/data/tokenizer.h"
#include "muonlab/models/generate.h"

namespace muonlab::cli {
namespace {

struct GenerateArgs {
  ModelArgs model;
  std::optional<std::string> prompt;  // given, even empty (which is refused by name)
  std::string prompt_ids;
  std::string tokenizer;  // default: the run's data.tokenizer, else gpt2
  models::SamplingOptions sampling;
  bool no_cache = false;
  std::optional<int64_t> stop_id;
  bool stop_at_eot = false;
  int64_t num_samples = 1;
};

// Between samples, as nanoGPT's sample.py separates them.
constexpr const char* kSampleSeparator = "---------------";

// Draws args.num_samples samples of `prompt`, sample i with seed + i (so
// any one of them is drawn alone again by --seed seed + i), each printed by
// `print_sample` as it is drawn.
template <typename PrintSample>
void draw_samples(GenerateArgs& args, PrintSample print_sample) {
  const uint64_t first_seed = args.sampling.seed;
  for (int64_t i = 0; i < args.num_samples; ++i) {
    if (i > 0) std::cout << kSampleSeparator << '\n';
    args.sampling.seed = first_seed + static_cast<uint64_t>(i);
    print_sample();
  }
}

std::vector<int64_t> encode_prompt(const data::Tokenizer& tokenizer, const std::string& prompt, int64_t model_vocab) {
  if (tokenizer.vocab_size() > model_vocab) {
    fail("tokenizer {} has {} ids, more than the model's vocabulary of {}: pick a model with vocab_size >= {}",
         tokenizer.name(), tokenizer.vocab_size(), model_vocab, tokenizer.vocab_size());
  }
  data::TokenIds ids = tokenizer.encode(prompt);
  if (ids.empty()) fail("--prompt is empty: give at least one character");
  return {ids.begin(), ids.end()};
}

// --tokenizer, else the one a training run's model was trained on (or a
// Hugging Face folder's tokenizer.json), else GPT-2's.
std::string prompt_tokenizer(const GenerateArgs& args) {
  if (!args.tokenizer.empty()) return args.tokenizer;
  if (auto run = args.model.run_config()) return run->data.tokenizer;
  if (auto bundled = args.model.bundled_tokenizer()) return *bundled;
  return "gpt2";
}

void run_generate(GenerateArgs& args) {
  auto model = args.model.build();
  args.sampling.use_cache = !args.no_cache;
  if (args.prompt_ids.empty() != args.prompt.has_value()) fail("give either --prompt TEXT or --prompt-ids IDS");
  if (args.stop_id && args.stop_at_eot) fail("give --stop-id ID or --stop-at-eot, not both");
  if (args.stop_at_eot && !args.prompt) fail("--stop-at-eot needs --prompt (a tokenizer's end of text); give --stop-id");
  args.sampling.stop_token = args.stop_id;
  // The sample is printed as it is drawn: the prompt first, then each token.
  if (!args.prompt_ids.empty()) {
    const auto prompt = parse_token_ids(args.prompt_ids, "--prompt-ids");
    models::check_generation(model->config(), prompt, args.sampling);  // before anything is printed
    draw_samples(args, [&] {
      std::cout << fmt::format("{}", fmt::join(prompt, " ")) << std::flush;
      models::generate(model, prompt, args.sampling, [](int64_t id) { std::cout << ' ' << id << std::flush; });
      std::cout << std::endl;
    });
    return;
  }
  auto tokenizer = data::load_tokenizer(prompt_tokenizer(args));
  if (args.stop_at_eot) args.sampling.stop_token = tokenizer->eot_token();
  const auto prompt = encode_prompt(*tokenizer, *args.prompt, model->config().vocab_size);
  models::check_generation(model->config(), prompt, args.sampling);
  draw_samples(args, [&] {
    data::TextStream text(*tokenizer, std::cout);
    for (const int64_t id : prompt) text.add(id);
    models::generate(model, prompt, args.sampling, [&text](int64_t id) { text.add(id); });
    text.finish();
    std::cout << std::endl;
  });
}

}  // namespace

void register_generate(CLI::App& app) {
  auto args = std::make_shared<GenerateArgs>();
  auto* generate = app.add_subcommand(
      "generate", "Sample text or token ids from a model (greedy, temperature, top-k, top-p)");
  add_examples(*generate, {
                    "muonlab generate runs/cpu-small --prompt \"The city\" --max-new-tokens 40 --top-k 50",
                    "muonlab generate --preset tiny-gpt2 --prompt-ids 464,3290 --temperature 0",
                    "muonlab generate runs/cpu-small --prompt \"Once\" --num-samples 3 --top-p 0.9"});
  args->model.add_to(*generate, /*with_model_file=*/true, /*with_device=*/true);
  args->model.add_positional_model(*generate);
  generate->add_option("--prompt", args->prompt, "Prompt text; the sample is printed as text");
  generate->add_option("--prompt-ids", args->prompt_ids, "Prompt as token ids (e.g. 464,3290,318)");
  generate->add_option("--tokenizer", args->tokenizer,
                       "For --prompt: gpt2, byte, a folder, or a tokenizer.json (default: the run's data.tokenizer, else gpt2)");
  generate->add_option("--max-new-tokens", args->sampling.max_new_tokens, "Tokens to add");
  generate->add_option("--temperature", args->sampling.temperature, "0 for greedy");
  generate->add_option("--top-k", args->sampling.top_k, "Keep the k most likely (0: all)");
  generate->add_option("--top-p", args->sampling.top_p, "Nucleus mass to keep (1: all)");
  generate->add_option("--seed", args->sampling.seed, "Sampling seed (of the first sample, with --num-samples)");
  generate->add_option("--num-samples", args->num_samples,
                       "Samples of the prompt, each drawn with the next seed, separated by a line of dashes")
      ->check(kPositiveCount);
  generate->add_flag("--no-cache", args->no_cache, "Recompute the prefix every step");
  generate->add_option("--stop-id", args->stop_id, "Stop once this token id is sampled");
  generate->add_flag("--stop-at-eot", args->stop_at_eot,
                     "With --prompt: stop once the tokenizer's <|endoftext|> is sampled");
  generate->callback([args] { run_generate(*args); });
}

}  // namespace muonlab::cli
