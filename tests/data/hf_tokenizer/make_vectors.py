"""Writes the test tokenizer and its golden ids with Hugging Face's own
`tokenizers` library (the independent reference for muonlab's tokenizer.json
reader):

    python3 tests/data/hf_tokenizer/make_vectors.py   # needs tokenizers (Debian: python3-tokenizers)

tokenizer.json is a byte-level BPE laid out as LLaMA 3's: LLaMA 3's split
pattern before the byte-level mapping, `ignore_merges` (a whole pre-token
found in the vocabulary is taken as one token), special tokens added after
the vocabulary (<|begin_of_text|>, <|end_of_text|>), then a plain added
token (three spaces, as GPT-NeoX adds runs of spaces). It is trained on the
committed excerpts (tests/data/text) to 1,000 ids, and two words are added
to the vocabulary without merges, so only `ignore_merges` can give them.
vectors.json holds each text of TEXTS with the ids `tokenizers` gives it,
and vectors_nfc.json each of NFC_TEXTS with the ids of the same tokenizer
under the normalizer NFC; both from `encode(text, add_special_tokens=False)`:
no BOS added, and a special token written in the text is that token.
"""
import json
import pathlib

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = sorted((HERE.parent / "text").glob("*.txt"))
# LLaMA 3's pattern (Meta's tokenizer.model as transformers converts it).
LLAMA3_PATTERN = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                  r"|\s*[\r\n]+|\s+(?!\S)|\s+")
WHOLE_WORDS = ["ĠIshmael", "Ġwhaling"]  # byte-level spellings: " Ishmael", " whaling"
SPECIAL = ["<|begin_of_text|>", "<|end_of_text|>"]
PLAIN_ADDED = "   "
TEXTS = [
    "Call me Ishmael. Some years ago, never mind how long precisely",
    " whaling whalingwhaling Ishmael's",
    "DON'T YOU'LL I'M we've They'RE",
    "12345 1,234,567.89 3.14159 year 1851",
    "tabs\tand\r\nwindows\r\n\r\nlines\n\n\nend  ",
    "   leading spaces and trailing   ",
    "two  three   four    five     spaces",
    "naïve café Zürich — “quotes” ‘single’ … 東京 😀👍🏽",
    "It ended.\nThe next line.\n\nA new paragraph, (the whale) and \"Call me,\" he said;\n",
    "THE WHALE. CHAPTER 1. Loomings.\n\n  Whenever it is a damp, drizzly November in my soul;",
    "a<|end_of_text|>b",
    "",
    "x",
]


def train():
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(LLAMA3_PATTERN), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=1000, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tokenizer.train([str(path) for path in CORPUS], trainer)
    layout = json.loads(tokenizer.to_str())
    vocab = layout["model"]["vocab"]
    for word in WHOLE_WORDS:
        assert word not in vocab, word
        vocab[word] = len(vocab)
    layout["model"]["ignore_merges"] = True
    tokenizer = Tokenizer.from_str(json.dumps(layout))
    tokenizer.add_special_tokens(SPECIAL)
    # A plain (non-special) added token, as GPT-NeoX's runs of spaces: found
    # in text before the split, whether special tokens are allowed or not.
    tokenizer.add_tokens([AddedToken(PLAIN_ADDED, special=False, normalized=False)])
    return tokenizer


# Texts NFC changes (a decomposed é, Å, Hangul jamo, ﬁ and Ω that NFC leaves or
# composes), for the same tokenizer with the normalizer NFC (Qwen2's and
# GPT-NeoX's): vectors_nfc.json.
NFC_TEXTS = [
    "cafe\u0301 vs caf\u00e9, A\u030angstro\u0308m",
    "\u1100\u1161\u11a8 and \uac01, \ufb01ne \u2126hm \u212b",
    "plain ASCII stays",
]


def write_vectors(tokenizer, texts, name):
    vectors = [{"text": text, "ids": tokenizer.encode(text, add_special_tokens=False).ids} for text in texts]
    lines = ",\n".join(" " + json.dumps(v, ensure_ascii=False) for v in vectors)
    (HERE / name).write_text("[\n" + lines + "\n]\n", encoding="utf-8")
    return vectors


def main():
    tokenizer = train()
    tokenizer.save(str(HERE / "tokenizer.json"), pretty=False)
    vectors = write_vectors(tokenizer, TEXTS, "vectors.json")
    # The whole words come out as the one token only ignore_merges gives.
    vocab = tokenizer.get_vocab()
    for word in WHOLE_WORDS:
        assert any(vocab[word] in v["ids"] for v in vectors), word
    tokenizer.normalizer = normalizers.NFC()
    write_vectors(tokenizer, NFC_TEXTS, "vectors_nfc.json")


if __name__ == "__main__":
    main()
