// A Hugging Face tokenizer.json of a byte-level BPE (GPT-2's and LLaMA 3's
// layouts, and others built the same way): the model's vocabulary
// and merges, its split pattern, ignore_merges, and the added tokens. What
// muonlab cannot reproduce exactly is refused by name: another model type,
// byte fallback, subword prefixes or suffixes, BPE dropout, a
// pre-tokenizer other than byte-level (optionally after one Split by a
// regex), a byte-level step that adds a prefix space, a normalizer other
// than NFC (which needs ICU in the build: unicode_nfc.h).
//
// The document separator `data prepare` writes before each document (the
// tokenizer's eot_token) is <|endoftext|> where the tokenizer has it, else
// <|begin_of_text|> (llm.c's LLaMA 3 shards begin each document with it),
// else <|end_of_text|>.
#pragma once

#include <memory>
#include <string>

#include "muonlab/data/gpt2_tokenizer.h"

namespace muonlab::data {

std::unique_ptr<Gpt2Tokenizer> load_tokenizer_json(const std::string& path);

}  // namespace muonlab::data
