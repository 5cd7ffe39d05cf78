#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (committed; rerun to regenerate)."""
import pathlib
import struct

here = pathlib.Path(__file__).resolve().parent
MAGIC, VERSION = 20240520, 1
WIDE_MAGIC, WIDE_VERSION = 20240801, 7  # uint32 tokens


def header(count, magic=MAGIC, version=VERSION):
    return struct.pack("<3i", magic, version, count) + bytes(1024 - 12)


def tokens(*ids):
    return struct.pack(f"<{len(ids)}H", *ids)


def wide_tokens(*ids):
    return struct.pack(f"<{len(ids)}I", *ids)


shards = {
    "valid-0-tokens": header(0),
    "valid-3-tokens": header(3) + tokens(50256, 15496, 11),
    "wrong-magic": header(3, magic=20240521) + tokens(1, 2, 3),
    "wrong-version": header(3, version=2) + tokens(1, 2, 3),
    "negative-count": header(-1),
    "count-exceeds-file": header(4) + tokens(1, 2, 3),
    "odd-trailing-byte": header(3) + tokens(1, 2, 3) + b"\x00",
    "truncated-header": header(0)[:700],
    "magic-only": struct.pack("<i", MAGIC),
    "uint32-valid-3-tokens": header(3, WIDE_MAGIC, WIDE_VERSION) + wide_tokens(128000, 70000, 11),
    "uint32-uint16-version": header(3, WIDE_MAGIC, VERSION) + wide_tokens(1, 2, 3),
    "uint32-count-read-as-uint16": header(3, WIDE_MAGIC, WIDE_VERSION) + tokens(1, 2, 3),
}
texts = {
    "english.txt": "The quick brown fox jumps over the lazy dog. It's 3:45pm, isn't it? We'll see.\n",
    "endoftext.txt": "First document.<|endoftext|>Second one<|endoftext|><|endoftext|>third <|endof",
    "utf8.txt": "naïve café, Größe, 東京タワー, Ελληνικά, 😀👍🏽 and ١٢٣ ½\u00a0no-break\u2003em-space",
    "invalid-utf8.txt": b"ok \xff\xfe bad \xc3( lone \x80 cont \xed\xa0\x80 surrogate \xf4\x90\x80\x80 big \xe2\x82",
    "whitespace.txt": "a" + " " * 300 + "b\n\n\n\t\t\t  \r\n" + "\n" * 100 + " " * 50 + "end   ",
    "contractions.txt": "I'm you're he's we've they'd she'll 'S 'T 123456 x1y2 $$$ ---- ...!!!",
}

for name, data in shards.items():
    path = here / "corpus" / "shard_header" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
for name, data in texts.items():
    path = here / "corpus" / "tokenizer" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data if isinstance(data, bytes) else data.encode())
