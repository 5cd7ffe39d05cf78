#!/usr/bin/env python3
"""Writes the reference that tests/optimizers/torch_muon_reference_test.cpp
holds muonlab's Muon against: PyTorch's own torch.optim.Muon, three steps on
a wide, a tall and a square matrix, for the scale rules both implement.

    python3 scripts/device/torch_muon_reference.py OUT.safetensors
    MUONLAB_TORCH_MUON_REFERENCE=OUT.safetensors build/tests/muonlab_tests \
        --gtest_filter='TorchMuonReference.*'

Tensors: w0.I (initial weights), g.S.I (gradient of step S), and
w.RULE.I (weights after three steps); metadata: the hyperparameters.
Needs PyTorch >= 2.9 (torch.optim.Muon) and safetensors.
"""
import sys

import torch
from safetensors.torch import save_file

LR, WEIGHT_DECAY, MOMENTUM, STEPS = 0.02, 0.1, 0.95, 3
SHAPES = [(128, 384), (384, 128), (192, 192)]
RULES = ["original", "match_rms_adamw"]


def main(out_path: str) -> None:
    if not hasattr(torch.optim, "Muon"):
        sys.exit(f"torch {torch.__version__} has no torch.optim.Muon (needs 2.9 or newer)")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    generator = torch.Generator().manual_seed(0)
    initial = [torch.randn(shape, generator=generator) for shape in SHAPES]
    grads = [[torch.randn(shape, generator=generator) for shape in SHAPES] for _ in range(STEPS)]
    tensors = {f"w0.{i}": w for i, w in enumerate(initial)}
    tensors.update({f"g.{s}.{i}": g for s, step in enumerate(grads) for i, g in enumerate(step)})
    for rule in RULES:
        params = [torch.nn.Parameter(w.clone().to(device)) for w in initial]
        optimizer = torch.optim.Muon(params, lr=LR, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM,
                                     nesterov=True, adjust_lr_fn=rule)
        for step in grads:
            for p, g in zip(params, step):
                p.grad = g.to(device)
            optimizer.step()
        tensors.update({f"w.{rule}.{i}": p.detach().cpu().contiguous() for i, p in enumerate(params)})
    metadata = {"torch": torch.__version__, "device": device, "lr": str(LR), "weight_decay": str(WEIGHT_DECAY),
                "momentum": str(MOMENTUM), "steps": str(STEPS), "rules": ",".join(RULES)}
    save_file(tensors, out_path, metadata=metadata)
    print(f"wrote {out_path}: torch {torch.__version__} Muon on {device}, {len(tensors)} tensors")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
