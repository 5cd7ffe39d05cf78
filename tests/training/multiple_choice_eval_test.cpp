// Multiple-choice scoring: each ending's score equals the summed
// per-position losses of its own sequence, computed alone and unpadded by
// per_token_losses; the predictions and counts follow those sums; the
// HellaSwag reader names what is wrong.
#include <gtest/gtest.h>

#include <algorithm>

#include "data/data_test_util.h"
#include "models/model_test_util.h"
#include "muonlab/training/evaluate_loss.h"
#include "muonlab/training/multiple_choice_eval.h"
#include "test_util.h"

namespace muonlab::training {
namespace {

using testing::tiny_config;

// Byte-level ids, so that the model's vocabulary is the byte tokenizer's.
models::Transformer float64_byte_model(const std::string& preset) {
  torch::manual_seed(23);
  models::Transformer model(tiny_config(preset, {"vocab_size=257"}));
  model->to(torch::kFloat64);
  return model;
}

std::vector<int64_t> bytes_of(const std::string& text) { return {text.begin(), text.end()}; }

// The reference: the ending's summed loss from per_token_losses over the
// choice's own row (its last block_size + 1 tokens), unbatched and unpadded.
double reference_ending_loss(models::Transformer& model, const std::string& context, const std::string& ending) {
  std::vector<int64_t> row = context.empty() ? std::vector<int64_t>{256} : bytes_of(context);
  const auto ending_ids = bytes_of(" " + ending);
  row.insert(row.end(), ending_ids.begin(), ending_ids.end());
  const size_t keep = std::min<size_t>(row.size(), model->config().block_size + 1);
  row.erase(row.begin(), row.end() - static_cast<std::ptrdiff_t>(keep));
  const auto losses = per_token_losses(model, row, torch::kCPU, /*bf16=*/false);
  double sum = 0;
  for (size_t i = losses.size() - ending_ids.size(); i < losses.size(); ++i) sum += losses[i];
  return sum;
}

std::vector<MultipleChoiceItem> sample_items() {
  return {
      {"A man is sitting on a roof. He", {"starts pulling up roofing.", "is ripping level tiles off.", "x", ""}, 0, "a"},
      {"", {"begins.", "ends with a longer ending."}, 1, "empty context"},
      // Longer than the tiny models' context of 32: the row keeps its last 33 tokens.
      {"The woman then adds the flour, stirs it in the bowl for a while and finally", {"bakes it.", "sings."}, 1,
       "long"},
  };
}

TEST(MultipleChoice, EachEndingsScoreIsItsOwnSequencesLoss) {
  const auto tokenizer = data::load_tokenizer("byte");
  for (const auto* preset : {"tiny-gpt2", "tiny-llama", "tiny-mla-moe"}) {
    SCOPED_TRACE(preset);
    auto model = float64_byte_model(preset);
    for (const auto& item : sample_items()) {
      SCOPED_TRACE(item.where);
      const ChoiceLosses losses = score_choices(model, *tokenizer, item, torch::kCPU, /*bf16=*/false);
      ASSERT_EQ(losses.sums.size(), item.endings.size());
      for (size_t i = 0; i < item.endings.size(); ++i) {
        EXPECT_EQ(losses.tokens[i], static_cast<int64_t>(item.endings[i].size() + 1)) << "ending " << i;
        EXPECT_NEAR(losses.sums[i], reference_ending_loss(model, item.context, item.endings[i]), 1e-9)
            << "ending " << i;
      }
    }
    EXPECT_TRUE(model->is_training()) << "train mode again after scoring";
  }
}

// Under an expert capacity small enough to drop tokens, padding would
// change what is dropped: each ending still scores as its own sequence.
TEST(MultipleChoice, AMixtureWithACapacityScoresEachEndingAlone) {
  const auto tokenizer = data::load_tokenizer("byte");
  torch::manual_seed(29);
  models::Transformer model(tiny_config("tiny-mla-moe", {"vocab_size=257", "moe.capacity_factor=0.5"}));
  model->to(torch::kFloat64);
  for (const auto& item : sample_items()) {
    SCOPED_TRACE(item.where);
    const ChoiceLosses losses = score_choices(model, *tokenizer, item, torch::kCPU, /*bf16=*/false);
    for (size_t i = 0; i < item.endings.size(); ++i) {
      EXPECT_NEAR(losses.sums[i], reference_ending_loss(model, item.context, item.endings[i]), 1e-9) << i;
    }
  }
}

// acc takes the lowest sum and acc_norm the lowest mean per token: the
// counts are checked against predictions made from the reference sums, with
// labels set so that some items are right by one rule and not the other.
TEST(MultipleChoice, AccuracyCountsFollowTheLowestSumAndTheLowestMean) {
  const auto tokenizer = data::load_tokenizer("byte");
  auto model = float64_byte_model("tiny-llama");
  std::vector<MultipleChoiceItem> items = sample_items();
  int64_t expected = 0, expected_norm = 0;
  for (size_t k = 0; k < items.size(); ++k) {
    auto& item = items[k];
    std::vector<double> sums, means;
    for (const auto& ending : item.endings) {
      sums.push_back(reference_ending_loss(model, item.context, ending));
      means.push_back(sums.back() / static_cast<double>(ending.size() + 1));
    }
    const auto by_sum = std::min_element(sums.begin(), sums.end()) - sums.begin();
    const auto by_mean = std::min_element(means.begin(), means.end()) - means.begin();
    item.label = k == 1 ? (by_sum + 1) % static_cast<int64_t>(sums.size()) : (k == 0 ? by_sum : by_mean);
    expected += item.label == by_sum;
    expected_norm += item.label == by_mean;
  }
  int64_t last_done = 0;
  MultipleChoiceOptions options;
  options.progress = [&](int64_t done, int64_t total) {
    EXPECT_GT(done, last_done);
    last_done = done;
    EXPECT_EQ(total, 3);
  };
  const MultipleChoiceResult result = evaluate_multiple_choice(model, *tokenizer, items, torch::kCPU, options);
  EXPECT_EQ(last_done, 3);
  EXPECT_EQ(result.items, 3);
  EXPECT_EQ(result.correct, expected);
  EXPECT_EQ(result.correct_norm, expected_norm);
  EXPECT_GE(result.correct, 1);
  EXPECT_DOUBLE_EQ(result.accuracy(), expected / 3.0);

  // Two ranks' shares add up to the whole.
  MultipleChoiceResult shares;
  for (int64_t rank = 0; rank < 2; ++rank) {
    MultipleChoiceOptions share;
    share.computes = [rank](int64_t index) { return index % 2 == rank; };
    const auto part = evaluate_multiple_choice(model, *tokenizer, items, torch::kCPU, share);
    EXPECT_EQ(part.items, rank == 0 ? 2 : 1);
    shares.items += part.items;
    shares.correct += part.correct;
    shares.correct_norm += part.correct_norm;
  }
  EXPECT_EQ(shares.items, result.items);
  EXPECT_EQ(shares.correct, result.correct);
  EXPECT_EQ(shares.correct_norm, result.correct_norm);
}

// Items are scored several to a forward, padded to the batch's longest row:
// over batches of several sizes, each item's answers are those of scoring
// it alone (score_choices, checked against the reference above).
TEST(MultipleChoice, ItemsScoredInBatchesAnswerAsEachScoredAlone) {
  const auto tokenizer = data::load_tokenizer("byte");
  auto model = float64_byte_model("tiny-gpt2");
  std::vector<MultipleChoiceItem> items;
  const std::vector<std::string> words = {"the", "cat", "sat", "on", "a", "mat", "and", "then", "slept", "well"};
  for (int k = 0; k < 40; ++k) {  // 2 to 4 endings each: 120 rows, rows of 4 to 33 tokens
    MultipleChoiceItem item;
    for (int w = 0; w < k % 7; ++w) item.context += (w ? " " : "") + words[(k + w) % words.size()];
    for (int e = 0; e < 2 + k % 3; ++e) item.endings.push_back(words[(k * 3 + e) % words.size()] + std::string(e, 'x'));
    item.where = std::to_string(k);
    items.push_back(item);
  }
  int64_t expected = 0;
  for (auto& item : items) {
    const ChoiceLosses alone = score_choices(model, *tokenizer, item, torch::kCPU, /*bf16=*/false);
    item.label = alone.predicted_norm();
    expected += alone.predicted() == item.label;
  }
  const MultipleChoiceResult result = evaluate_multiple_choice(model, *tokenizer, items, torch::kCPU, {});
  EXPECT_EQ(result.items, 40);
  EXPECT_EQ(result.correct_norm, 40);  // every item answers as it did alone
  EXPECT_EQ(result.correct, expected);
  EXPECT_LT(expected, 40);  // the two rules disagree somewhere, so the second count is a check too
}

TEST(MultipleChoice, EndingLongerThanTheContextIsNamed) {
  const auto tokenizer = data::load_tokenizer("byte");
  auto model = float64_byte_model("tiny-gpt2");
  const MultipleChoiceItem item{"ctx", {std::string(40, 'a'), "b"}, 0, "items.jsonl:7"};
  EXPECT_CONTAINS(testing::error_message([&] { score_choices(model, *tokenizer, item, torch::kCPU, false); }),
                  "items.jsonl:7: ending 0 is 41 tokens, longer than the model's context (block_size 32)");
  auto small_vocab = models::Transformer(tiny_config("tiny-gpt2"));  // 64 ids: bytes past 63 do not fit
  const MultipleChoiceItem fits{"ctx", {"a", "b"}, 0, "items.jsonl:8"};
  EXPECT_CONTAINS(testing::error_message([&] { score_choices(small_vocab, *tokenizer, fits, torch::kCPU, false); }),
                  "token id 99 is outside the model's vocabulary [0, 64)");
}

TEST(MultipleChoice, ReadsHellaSwagLinesAndNamesWhatIsWrong) {
  testing::ScratchDir dir;
  const std::string path = dir.file("hellaswag.jsonl");
  testing::write_bytes(path,
                       R"({"ind": 24, "activity_label": "Roof shingle removal", "ctx": "A man is sitting on a roof. he",)"
                       R"( "endings": ["is using wrap.", "is ripping tiles.", "is holding a rubik's cube.", "starts."],)"
                       R"( "source_id": "x", "split": "val", "split_type": "indomain", "label": 3})"
                       "\n\n"
                       R"({"ctx": "Then", "endings": ["a", "b"], "label": "1"})"
                       "\n");
  const auto items = read_multiple_choice_items(path);
  ASSERT_EQ(items.size(), 2u);
  EXPECT_EQ(items[0].context, "A man is sitting on a roof. he");
  EXPECT_EQ(items[0].endings.size(), 4u);
  EXPECT_EQ(items[0].endings[2], "is holding a rubik's cube.");
  EXPECT_EQ(items[0].label, 3);
  EXPECT_EQ(items[1].label, 1);  // Hugging Face's copy writes labels as strings
  EXPECT_EQ(items[1].where, path + ":3");
  const auto first = read_multiple_choice_items(path, 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].label, 3);
  EXPECT_EQ(read_multiple_choice_items(path, 5).size(), 2u);

  auto error_for = [&](const std::string& line) {
    testing::write_bytes(path, R"({"ctx": "ok", "endings": ["a", "b"], "label": 0})" "\n" + line + "\n");
    return testing::error_message([&] { read_multiple_choice_items(path); });
  };
  EXPECT_CONTAINS(error_for(R"({"endings": ["a", "b"], "label": 0})"), path + ":2: expected a string \"ctx\"");
  EXPECT_CONTAINS(error_for(R"({"ctx": "c", "endings": ["a"], "label": 0})"),
                  ":2: expected \"endings\", an array of two or more strings");
  EXPECT_CONTAINS(error_for(R"({"ctx": "c", "endings": ["a", 5], "label": 0})"), "\"endings\" holds 5");
  EXPECT_CONTAINS(error_for(R"({"ctx": "c", "endings": ["a", "b"], "label": 2})"),
                  ":2: \"label\" is 2, expected the right ending's index, 0 to 1");
  EXPECT_CONTAINS(error_for(R"({"ctx": "c", "endings": ["a", "b"], "label": "one"})"), "\"label\" is \"one\"");
  EXPECT_CONTAINS(error_for(R"({"ctx": "c", "endings": ["a", "b"], "label": ""})"),
                  ":2: \"label\" is \"\", expected the right ending's index, 0 to 1 (HellaSwag's test split has no "
                  "answers: score its validation split)");
  EXPECT_EQ(error_for(R"({"ctx": "c", "endings": ["a", "b"], "label": "one"})").find("test split"), std::string::npos);
  EXPECT_CONTAINS(error_for(R"({"ctx": "c", "endings": ["a", "b"]})"), ":2: no \"label\"");
  EXPECT_CONTAINS(error_for("{not json"), ":2: not JSON");
  testing::write_bytes(path, "\n");
  EXPECT_CONTAINS(testing::error_message([&] { read_multiple_choice_items(path); }), "holds no items");
  EXPECT_CONTAINS(testing::error_message([&] { read_multiple_choice_items(dir.file("missing.jsonl")); }),
                  "cannot open");
}

// Hugging Face's Parquet copy of HellaSwag (endings a list of strings,
// labels strings, other columns beside), written by the Arrow Rust writer
// (tests/data/parquet/make_files.mjs) with the same items as the JSON Lines
// file beside it: both give the same items, and errors name the row.
TEST(MultipleChoice, ReadsHuggingFacesParquetCopyAsItsJsonLines) {
  const std::string parquet = testing::test_data("parquet/hellaswag.parquet");
  const auto from_parquet = read_multiple_choice_items(parquet);
  const auto from_lines = read_multiple_choice_items(testing::test_data("parquet/hellaswag.jsonl"));
  ASSERT_EQ(from_parquet.size(), 12u);
  ASSERT_EQ(from_parquet.size(), from_lines.size());
  for (size_t i = 0; i < from_lines.size(); ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(from_parquet[i].context, from_lines[i].context);
    EXPECT_EQ(from_parquet[i].endings, from_lines[i].endings);
    EXPECT_EQ(from_parquet[i].label, from_lines[i].label);
  }
  EXPECT_EQ(from_parquet[3].context, "");  // an empty context, as written
  EXPECT_EQ(from_parquet[5].where, parquet + ", row 5");
  EXPECT_EQ(read_multiple_choice_items(parquet, 4).size(), 4u);
  // A Parquet file of other columns is named with the columns expected.
  const std::string documents = testing::test_data("parquet/snappy_dictionary_v1.parquet");
  EXPECT_CONTAINS(testing::error_message([&] { read_multiple_choice_items(documents); }),
                  "has no column 'ctx' (its columns: id, text, url); expected HellaSwag's columns ctx, endings and "
                  "label");
}

}  // namespace
}  // namespace muonlab::training
