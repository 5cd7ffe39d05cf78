#!/usr/bin/env python3
"""Loads a `muonlab export --hf` folder with Hugging Face transformers and
prints the greedy continuation of a prompt of token ids, space-separated as
`muonlab generate --temperature 0 --prompt-ids` prints it, so the two can be
compared token for token:

    python3 scripts/device/hf_export_check.py HF_DIR 1,2,3 20
"""
import sys

import torch
from transformers import AutoModelForCausalLM


def main(folder: str, prompt: str, new_tokens: int) -> None:
    model = AutoModelForCausalLM.from_pretrained(folder).eval()  # GPT-2 or LLaMA, by config.json
    ids = torch.tensor([[int(t) for t in prompt.split(",")]])
    with torch.no_grad():  # greedy by hand: no generation config, no EOS handling
        for _ in range(new_tokens):
            next_id = model(ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_id], dim=1)
    out = ids
    print(" ".join(str(t) for t in out[0].tolist()))


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
