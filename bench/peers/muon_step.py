"""The optimizer steps a PyTorch user would run instead of muonlab's: the
peers `muonlab bench optim` measures itself against.

    /usr/bin/python3 bench/peers/muon_step.py --layers 4 --d-model 768 --threads 2
    python3 bench/peers/muon_step.py --layers 12 --device cuda

On GPT-2's matrices (per block: the fused QKV 3d x d, the attention output
d x d, the MLP's 4d x d and d x 4d), with fixed random gradients, as `bench
optim` builds them, times the median step of

- Keller Jordan's Muon (muon.py's SingleDeviceMuon, from nanogpt_train.py
  beside this file): one matrix at a time, Newton-Schulz in bf16;
- torch.optim.Muon, where this torch has it (2.9 and later): one matrix at
  a time, Newton-Schulz in bf16;
- torch.optim.AdamW: fused on a GPU (as a PyTorch user picks it there),
  torch's default (foreach where it has it) on the CPU.

Muon at lr 0.02 without weight decay, AdamW at torch's defaults. Prints one
JSON object: each step's median seconds (null for a torch without
torch.optim.Muon), which AdamW ran, the parameter count, threads, torch's
version and the allocator (tcmalloc where `bench optim` preloads it, as
muonlab's).
"""
import argparse
import json
import statistics
import time

import torch

from nanogpt_train import Muon as KellerJordanMuon, allocator


def matrices(layers, d, device):
    torch.manual_seed(0)
    params = []
    for _ in range(layers):
        for shape in [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)]:
            p = torch.nn.Parameter(torch.randn(shape, device=device) * 0.02)
            p.grad = torch.randn(shape, device=device)
            params.append(p)
    return params


def median_step_seconds(optimizer, device, warmup, reps):
    def synchronize():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        optimizer.step()
    times = []
    for _ in range(reps):
        synchronize()
        start = time.perf_counter()
        optimizer.step()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps")
    parser.add_argument("--reps", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    def timed(make_optimizer):
        return median_step_seconds(make_optimizer(matrices(args.layers, args.d_model, device)), device,
                                   args.warmup, args.reps)

    keller_jordan = timed(lambda params: KellerJordanMuon(params, lr=0.02))
    torch_muon = None
    if hasattr(torch.optim, "Muon"):
        torch_muon = timed(lambda params: torch.optim.Muon(params, lr=0.02, weight_decay=0.0))
    adamw_kind = "fused" if device.type == "cuda" else "default"
    adamw = timed(lambda params: torch.optim.AdamW(params, **({"fused": True} if adamw_kind == "fused" else {})))
    print(json.dumps({"keller_jordan_muon_seconds": keller_jordan, "torch_muon_seconds": torch_muon,
                      "torch_adamw_seconds": adamw, "adamw": adamw_kind,
                      "parameters": 12 * args.d_model ** 2 * args.layers,  # (3 + 1 + 4 + 4) d^2 a block
                      "device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "allocator": allocator()}))


if __name__ == "__main__":
    main()
