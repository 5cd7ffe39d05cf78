"""A nanoGPT-style PyTorch training loop: the peer `muonlab bench train`
measures itself against.

    /usr/bin/python3 bench/peers/nanogpt_train.py --n-layer 4 --n-head 4 --d-model 128 \
        --vocab-size 50257 --batch 8 --seq-len 128 --optimizer muon --dtype bf16
    python3 bench/peers/nanogpt_train.py --n-layer 12 --n-head 12 --d-model 768 \
        --batch 16 --seq-len 1024 --dtype bf16 --device cuda [--compile]

The model is Andrej Karpathy's nanoGPT GPT-2 (learned positions, LayerNorm
with bias, fused c_attn, tanh GELU MLP of 4d, tied head) and the optimizer
what a PyTorch user would write: Keller Jordan's Muon (muon.py: EMA momentum
with Nesterov, five Newton-Schulz steps in bf16 with (3.4445, -4.7750,
2.0315), the sqrt(max(1, rows/cols)) scale) on the blocks' matrices and
torch.optim.AdamW on the rest, or AdamW on everything. One step is what
`muonlab bench train` times: zero_grad, forward under autocast (bf16) or
not (fp32), loss, backward, clip_grad_norm_(1.0), optimizer step; batches
are random tokens (data loading is not timed on either side).

Prints one JSON object: tokens_per_second (over the median step), the
median step time, the parameter count (tied weights once), the threads used
and the allocator (tcmalloc where `bench train` preloads it, as muonlab's).
"""
import argparse
import ctypes
import json
import math
import statistics
import time

import torch
import torch.nn as nn
import torch.nn.functional as F


class CausalSelfAttention(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if hasattr(F, "scaled_dot_product_attention"):
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        else:  # torch 1.13: the written-out attention nanoGPT falls back to
            att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
            mask = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
            att = F.softmax(att.masked_fill(~mask, float("-inf")), dim=-1)
            y = att @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class Block(nn.Module):
    def __init__(self, d_model, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d_model)
        self.attn = CausalSelfAttention(d_model, n_head)
        self.ln_2 = nn.LayerNorm(d_model)
        self.c_fc = nn.Linear(d_model, 4 * d_model)
        self.mlp_proj = nn.Linear(4 * d_model, d_model)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, d_model):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, d_model)
        self.wpe = nn.Embedding(block_size, d_model)
        self.h = nn.ModuleList([Block(d_model, n_head) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)

    def forward(self, idx, targets):
        pos = torch.arange(idx.size(1), device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.view(-1))


def zeropower_via_newtonschulz5(G, steps=5):
    a, b, c = (3.4445, -4.7750, 2.0315)
    X = G.bfloat16()
    if G.size(-2) > G.size(-1):
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    if G.size(-2) > G.size(-1):
        X = X.mT
    return X


class Muon(torch.optim.Optimizer):
    """Keller Jordan's single-device Muon (muon.py, SingleDeviceMuon)."""

    def __init__(self, params, lr=0.02, weight_decay=0.0, momentum=0.95):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                buf = state["momentum_buffer"]
                buf.lerp_(p.grad, 1 - group["momentum"])
                update = p.grad.lerp(buf, group["momentum"])  # Nesterov
                update = zeropower_via_newtonschulz5(update)
                update *= max(1, p.size(-2) / p.size(-1)) ** 0.5
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update.reshape(p.shape).type_as(p), alpha=-group["lr"])


def make_optimizers(model, name, muon_lr, adamw_lr):
    if name == "adamw":
        return [torch.optim.AdamW(model.parameters(), lr=adamw_lr, betas=(0.9, 0.95), weight_decay=0.0,
                                  **fused_on_gpu(model))]
    matrices = [p for n, p in model.h.named_parameters() if p.ndim == 2]
    matrix_ids = {id(p) for p in matrices}
    rest = [p for p in model.parameters() if id(p) not in matrix_ids]
    return [Muon(matrices, lr=muon_lr),
            torch.optim.AdamW(rest, lr=adamw_lr, betas=(0.9, 0.95), weight_decay=0.0, **fused_on_gpu(model))]


def fused_on_gpu(model):
    """On a GPU a PyTorch user picks the fused AdamW kernel."""
    return {"fused": True} if next(model.parameters()).is_cuda else {}


def allocator():
    """"tcmalloc" where tcmalloc replaced malloc (LD_PRELOAD), else "system"."""
    return "tcmalloc" if hasattr(ctypes.CDLL(None), "tc_malloc") else "system"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--d-model", type=int, default=128)
    parser.add_argument("--vocab-size", type=int, default=50257)
    parser.add_argument("--block-size", type=int, default=0, help="0: --seq-len")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--optimizer", choices=["muon", "adamw"], default="muon")
    parser.add_argument("--dtype", choices=["fp32", "bf16"], default="fp32", help="bf16: autocast, as muonlab's")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps")
    parser.add_argument("--steps", type=int, default=3, help="timed steps (the median is reported)")
    parser.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: torch's default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--compile", action="store_true", help="torch.compile the model (as nanoGPT's --compile)")
    args = parser.parse_args()

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = GPT(args.vocab_size, args.block_size or args.seq_len, args.n_layer, args.n_head, args.d_model).to(device)
    model.train()
    optimizers = make_optimizers(model, args.optimizer, muon_lr=0.02, adamw_lr=0.006)
    forward = torch.compile(model) if args.compile else model
    inputs = torch.randint(args.vocab_size, (args.batch, args.seq_len), device=device)
    targets = torch.randint(args.vocab_size, (args.batch, args.seq_len), device=device)
    optimizer_seconds = []

    def step():
        for opt in optimizers:
            opt.zero_grad(set_to_none=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.dtype == "bf16"):
            loss = forward(inputs, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for opt in optimizers:
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        optimizer_seconds.append(time.perf_counter() - start)
        return loss.item()

    for _ in range(args.warmup):
        step()
    seconds = []
    for _ in range(args.steps):
        start = time.perf_counter()
        loss = step()
        seconds.append(time.perf_counter() - start)
        if not math.isfinite(loss):
            raise SystemExit(f"non-finite loss {loss}")
    median = statistics.median(seconds)
    print(json.dumps({"tokens_per_second": args.batch * args.seq_len / median, "step_seconds": median,
                      "parameters": sum(p.numel() for p in model.parameters()),
                      "optimizer_seconds": statistics.median(optimizer_seconds[args.warmup:]),
                      "device": args.device, "compile": args.compile,
                      "threads": torch.get_num_threads(), "torch": torch.__version__,
                      "allocator": allocator()}))


if __name__ == "__main__":
    main()
