#!/usr/bin/env python3
"""Loads a `muonlab export --hf` folder with Hugging Face transformers, on the
CPU in float32, and checks it against muonlab on a prompt of token ids.

    hf_export_check.py HF_DIR IDS NEW_TOKENS
        prints the greedy continuation, space-separated as
        `muonlab generate --temperature 0 --prompt-ids IDS` prints it;
    hf_export_check.py HF_DIR IDS --losses EVAL_JSON
        compares each position's next-token loss with those of
        `muonlab eval --ids IDS --dtype fp32 --json` (the file EVAL_JSON) and
        exits 1 when one differs by more than 1e-4 (float32 forwards of the
        same weights agree to about 1e-6).
"""
import argparse
import json
import sys

import torch
from transformers import AutoModelForCausalLM

LOSS_TOLERANCE = 1e-4


def greedy_continuation(model, ids: torch.Tensor, new_tokens: int) -> list:
    with torch.no_grad():  # greedy by hand: no generation config, no EOS handling
        for _ in range(new_tokens):
            next_id = model(ids).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, next_id], dim=1)
    return ids[0].tolist()


def per_token_losses(model, ids: torch.Tensor) -> list:
    with torch.no_grad():
        logits = model(ids).logits[0, :-1].float()
    return torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="none").tolist()


def compare_losses(model, ids: torch.Tensor, eval_json: str) -> bool:
    with open(eval_json) as f:
        ours = json.load(f)["token_losses"]
    theirs = per_token_losses(model, ids)
    if len(ours) != len(theirs):
        print(f"FAIL: muonlab scored {len(ours)} positions, transformers {len(theirs)}")
        return False
    worst = max(abs(a - b) for a, b in zip(ours, theirs))
    mean_ours, mean_theirs = sum(ours) / len(ours), sum(theirs) / len(theirs)
    verdict = "PASS" if worst <= LOSS_TOLERANCE else "FAIL"
    print(f"{verdict}: {len(ours)} next-token losses, mean {mean_ours:.6f} (muonlab) vs {mean_theirs:.6f} "
          f"(transformers), largest difference {worst:.2e} (tolerance {LOSS_TOLERANCE:g})")
    return verdict == "PASS"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder")
    parser.add_argument("ids", help="comma-separated token ids")
    parser.add_argument("new_tokens", nargs="?", type=int)
    parser.add_argument("--losses", metavar="EVAL_JSON")
    args = parser.parse_args()
    if (args.new_tokens is None) == (args.losses is None):
        parser.error("give NEW_TOKENS or --losses EVAL_JSON")
    model = AutoModelForCausalLM.from_pretrained(args.folder, torch_dtype=torch.float32).eval()  # by config.json
    ids = torch.tensor([[int(t) for t in args.ids.split(",")]])
    if args.losses:
        sys.exit(0 if compare_losses(model, ids, args.losses) else 1)
    print(" ".join(str(t) for t in greedy_continuation(model, ids, args.new_tokens)))


if __name__ == "__main__":
    main()
