// Links muonlab::muonlab. The installed GPT-2 tokenizer gives OpenAI's ids,
// and a tiny GPT-2 trained a few steps with Muon + AdamW on one repeated
// batch lowers its loss.
#include <torch/torch.h>

#include <cstdio>

#include "muonlab/data/tokenizer.h"
#include "muonlab/models/model_config.h"
#include "muonlab/models/transformer.h"
#include "muonlab/optimizers/hybrid.h"

namespace {

bool tokenizer_gives_gpt2_ids() {
  const auto tokenizer = muonlab::data::load_tokenizer(MUONLAB_GPT2_DIR);
  const auto ids = tokenizer->encode("Hello world");
  const bool ok = ids == muonlab::data::TokenIds{15496, 995};
  std::printf("library_consumer: \"Hello world\" -> %zu ids%s\n", ids.size(), ok ? ", GPT-2's" : ", WRONG");
  return ok;
}

bool training_lowers_loss() {
  torch::manual_seed(0);
  muonlab::models::Transformer model(muonlab::models::model_preset("tiny-gpt2"));
  muonlab::optim::MuonWithAuxAdamW optimizer(model->tagged_parameters(), muonlab::optim::MuonOptions(0.02),
                                             muonlab::optim::AdamWOptions(3e-3));
  const auto tokens = torch::randint(model->config().vocab_size, {4, 17});
  const auto inputs = tokens.slice(1, 0, -1), targets = tokens.slice(1, 1);
  double first = 0, last = 0;
  for (int step = 0; step < 10; ++step) {
    optimizer.zero_grad();
    auto loss = muonlab::models::training_loss(model->forward(inputs), targets);
    loss.backward();
    optimizer.step();
    (step == 0 ? first : last) = loss.item<double>();
  }
  std::printf("library_consumer: loss %.3f -> %.3f\n", first, last);
  return last < first;
}

}  // namespace

int main() {
  const bool tokenizer_ok = tokenizer_gives_gpt2_ids();
  const bool training_ok = training_lowers_loss();
  return tokenizer_ok && training_ok ? 0 : 1;
}
