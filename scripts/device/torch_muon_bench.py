#!/usr/bin/env python3
"""Times PyTorch's own optimizers on the matrices `muonlab bench optim` uses
(GPT-2 small by default: per block the fused QKV 3d x d, the attention output
d x d, the MLP's 4d x d and d x 4d), so the two can be read side by side:

    python3 scripts/device/torch_muon_bench.py [--layers 12] [--d-model 768]
    build/src/muonlab bench optim --device cuda

Prints the median step time of torch.optim.Muon (NS in bf16, one matrix at a
time, as PyTorch implements it), torch.optim.AdamW (fused) and the ratio.
"""
import argparse
import statistics

import torch


def matrices(layers: int, d: int, device: str):
    torch.manual_seed(0)
    shapes = [(3 * d, d), (d, d), (4 * d, d), (d, 4 * d)] * layers
    params = [torch.nn.Parameter(torch.randn(s, device=device) * 0.02) for s in shapes]
    for p in params:
        p.grad = torch.randn_like(p)
    return params


def median_step_ms(optimizer, warmup: int, reps: int) -> float:
    for _ in range(warmup):
        optimizer.step()
    times = []
    for _ in range(reps):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        optimizer.step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--d-model", type=int, default=768)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--reps", type=int, default=20)
    args = parser.parse_args()
    muon = median_step_ms(torch.optim.Muon(matrices(args.layers, args.d_model, "cuda"), lr=0.02),
                          args.warmup, args.reps)
    adamw = median_step_ms(torch.optim.AdamW(matrices(args.layers, args.d_model, "cuda"), lr=1e-3, fused=True),
                           args.warmup, args.reps)
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name()}: "
          f"{args.layers} layers, d_model {args.d_model}")
    print("| optimizer | ms/step | x AdamW |\n|---|---|---|")
    print(f"| torch.optim.AdamW (fused) | {adamw:.3f} | 1.00 |")
    print(f"| torch.optim.Muon | {muon:.3f} | {muon / adamw:.2f} |")


if __name__ == "__main__":
    main()
