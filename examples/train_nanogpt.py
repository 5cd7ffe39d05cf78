"""Trains a small nanoGPT-style model on llm.c token shards with muonlab's
Muon (or Group Muon) from Python, or with torch.optim.AdamW for comparison.

    py=$(scripts/install-python | tail -1)
    "$py" examples/train_nanogpt.py --optimizer group-muon

The shards are the ones `scripts/main` writes (data/shards/*_train_*.bin and
*_val_*.bin): 256 little-endian int32 of header (magic 20240520, version 1,
token count), then the tokens as little-endian uint16.
"""
import argparse
import ctypes
import glob
import math
import os
import sys
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

import muonlab

SHARD_MAGIC = 20240520
SHARD_VERSION = 1
SHARD_HEADER_INTS = 256


# -- data -------------------------------------------------------------------


def read_shard(path):
    """The tokens of one llm.c shard, as a read-only uint16 memmap."""
    header = np.fromfile(path, dtype="<i4", count=SHARD_HEADER_INTS)
    if header.size < SHARD_HEADER_INTS:
        raise ValueError(f"{path}: {header.size * 4} bytes, shorter than the {SHARD_HEADER_INTS * 4}-byte shard header")
    if header[0] != SHARD_MAGIC:
        raise ValueError(f"{path}: magic {header[0]}, expected {SHARD_MAGIC}: not an llm.c token shard")
    if header[1] != SHARD_VERSION:
        raise ValueError(f"{path}: shard version {header[1]}, expected {SHARD_VERSION} (uint16 tokens)")
    count = int(header[2])
    expected_bytes = SHARD_HEADER_INTS * 4 + 2 * count
    if count < 0 or os.path.getsize(path) != expected_bytes:
        raise ValueError(f"{path}: header says {count} tokens ({expected_bytes} bytes), the file has "
                         f"{os.path.getsize(path)} bytes")
    return np.memmap(path, dtype="<u2", mode="r", offset=SHARD_HEADER_INTS * 4, shape=(count,))


def load_split(data_dir, split):
    """All tokens of the shards *_{split}_*.bin in data_dir, concatenated
    (the bundled corpus is a few million tokens: it fits in memory)."""
    paths = sorted(glob.glob(os.path.join(data_dir, f"*_{split}_*.bin")))
    if not paths:
        sys.exit(f"no {split} shards (*_{split}_*.bin) in {data_dir}: run scripts/main, or from the repository root "
                 f"after scripts/build and scripts/fetch-data:\n"
                 f"  build/src/muonlab data prepare data/corpus --out {data_dir} --name corpus --force")
    return np.concatenate([read_shard(path) for path in paths]).astype(np.int64)


def random_batch(tokens, batch, seq, rng):
    """B x T inputs and their next tokens, from random offsets."""
    starts = rng.integers(0, len(tokens) - seq - 1, size=batch)
    rows = np.stack([tokens[s:s + seq + 1] for s in starts])
    rows = torch.from_numpy(rows)
    return rows[:, :-1], rows[:, 1:]


def fixed_batches(tokens, batch, seq, count):
    """`count` batches at evenly spaced offsets: the same every evaluation,
    so val losses are comparable across steps and optimizers."""
    starts = np.linspace(0, len(tokens) - seq - 1, num=batch * count).astype(np.int64)
    rows = torch.from_numpy(np.stack([tokens[s:s + seq + 1] for s in starts]))
    return [(rows[i:i + batch, :-1], rows[i:i + batch, 1:]) for i in range(0, len(rows), batch)]


# -- model ------------------------------------------------------------------


def causal_attention(q, k, v):
    """Causal softmax attention of q, k, v [B, H, T, D]; PyTorch 2.x's fused
    kernel where there is one (1.13 has none)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    future = torch.ones(T, T, dtype=torch.bool, device=q.device).triu(1)
    return scores.masked_fill(future, float("-inf")).softmax(dim=-1) @ v


class CausalSelfAttention(nn.Module):
    # nanoGPT's names (c_attn: fused q, k, v; c_proj) and head count, which
    # param_groups reads to cut the weights per head for Group Muon.
    def __init__(self, dim, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = nn.Linear(dim, 3 * dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        return self.c_proj(causal_attention(q, k, v).transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim, bias=False)
        self.c_proj = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, dim, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, n_head)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, dim):
        super().__init__()
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(vocab_size, dim),
            wpe=nn.Embedding(block_size, dim),
            h=nn.ModuleList([Block(dim, n_head) for _ in range(n_layer)]),
            ln_f=nn.LayerNorm(dim),
        ))
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        self.lm_head.weight = self.transformer.wte.weight  # tied, as GPT-2
        self.apply(self._init_weights)

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)

    def forward(self, idx, targets):
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)
        for block in self.transformer.h:
            x = block(x)
        logits = self.lm_head(self.transformer.ln_f(x))
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# -- training ---------------------------------------------------------------


def keep_freed_memory():
    """Has glibc keep freed blocks for reuse instead of returning them to the
    kernel. By default it maps every block over its threshold (up to 32 MB)
    afresh and unmaps it when freed, so each step page-faults its big
    tensors (the logits, 8 x 64 x 50304 floats, and their gradients) back
    in: on the 2-core CPU this was most of the step time. No-op without
    glibc."""
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3  # mallopt's parameter numbers (malloc.h)
    libc.mallopt(m_mmap_threshold, 1 << 30)
    libc.mallopt(m_trim_threshold, 1 << 30)



def make_optimizer(model, args):
    if args.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=args.adamw_lr, betas=(0.9, 0.95), weight_decay=0.0)
    # Muon for the hidden matrices; AdamW for embeddings (the tied head) and
    # LayerNorm gains. group-muon orthogonalizes each block of group_size
    # heads of c_attn / c_proj on its own.
    group_size = args.group_size if args.optimizer == "group-muon" else 0
    groups = muonlab.optim.param_groups(model, lr=args.lr, adamw_lr=args.adamw_lr, adamw_weight_decay=0.0)
    return muonlab.optim.MuonWithAuxAdamW(groups, group_size=group_size)


def attention_weights(model):
    """(parameter, HeadLayout, transposed) of every weight param_groups
    finds heads in: c_attn (fused q, k, v) and attn.c_proj."""
    _, routing = muonlab.optim.param_groups(model, return_routing=True)
    parameters = dict(model.named_parameters())
    return [(parameters[r["name"]], r["heads"], r["transposed"]) for r in routing if r["heads"] is not None]


def one_step_terms(attention, group_size):
    """Group Muon's whitening gain and norm cost against whole-matrix Muon
    on this step's gradients (Newton-Schulz, as the optimizer applies it),
    summed over the attention weights."""
    total = {"gain": 0.0, "cost": 0.0}
    for param, heads, transposed in attention:
        terms = muonlab.one_step_diagnostics(param.grad, heads, group_size, transposed=transposed)["ns"]
        total = {key: total[key] + terms[key] for key in total}
    return total


def lr_factor(step, steps, warmup):
    """Linear warm-up, constant, then a linear decay to zero over the last
    30% of the steps."""
    decay_start = int(0.7 * steps)
    if step < warmup:
        return (step + 1) / warmup
    if step < decay_start:
        return 1.0
    return max(0.0, (steps - step) / (steps - decay_start))


@torch.no_grad()
def evaluate(model, batches):
    model.eval()
    loss = sum(model(x, y).item() for x, y in batches) / len(batches)
    model.train()
    return loss


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizer", choices=("muon", "group-muon", "adamw"), default="muon")
    parser.add_argument("--data", default="data/shards", help="folder of *_train_*.bin / *_val_*.bin shards")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--lr", type=float, default=0.02, help="Muon's learning rate")
    parser.add_argument("--adamw-lr", type=float, default=0.006,
                        help="AdamW's: embeddings and gains under Muon, everything with --optimizer adamw")
    parser.add_argument("--group-size", type=int, default=2, help="heads per block for --optimizer group-muon")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-every", type=int, default=50, help="steps between val losses (0: only before and after training)")
    parser.add_argument("--eval-batches", type=int, default=8)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--one-step-every", type=int, default=0,
                        help="steps between one-step diagnostics of Group Muon at --group-size against Muon on the "
                             "attention gradients (whitening gain, norm cost; 0: never)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads (default: every core this process may use; Debian's torch starts "
                             "with one)")
    return parser.parse_args()


def main():
    args = parse_args()
    keep_freed_memory()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    train_tokens = load_split(args.data, "train")
    val_tokens = load_split(args.data, "val")
    # The vocabulary the shards use, rounded up to a multiple of 64.
    vocab_size = (int(max(train_tokens.max(), val_tokens.max())) + 64) // 64 * 64
    val_batches = fixed_batches(val_tokens, args.batch, args.seq, args.eval_batches)
    model = GPT(vocab_size, args.seq, args.layers, args.heads, args.dim)
    optimizer = make_optimizer(model, args)
    warmup = max(1, args.steps // 20)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, args.steps, warmup))
    print(f"{args.optimizer}: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, vocab "
          f"{vocab_size}, {len(train_tokens):,} train / {len(val_tokens):,} val tokens, torch "
          f"{torch.__version__}, {torch.get_num_threads()} threads")
    print(f"step {0:4d}  val loss {evaluate(model, val_batches):.4f}")
    attention = attention_weights(model) if args.one_step_every else []
    start = time.perf_counter()
    window = []  # train losses since the last line: their mean is steadier than one batch's
    for step in range(1, args.steps + 1):
        x, y = random_batch(train_tokens, args.batch, args.seq, rng)
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if args.one_step_every and step % args.one_step_every == 0:
            terms = one_step_terms(attention, args.group_size)
            print(f"step {step:4d}  one step, g = {args.group_size} against whole matrices: whitening gain "
                  f"{terms['gain']:.4f}, norm cost {terms['cost']:.4f}")
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        window.append(loss.item())
        if step % args.log_every == 0 or step == args.steps:
            print(f"step {step:4d}  train loss {sum(window) / len(window):.4f}  {time.perf_counter() - start:6.1f} s")
            window = []
        if args.eval_every and step % args.eval_every == 0 and step != args.steps:
            print(f"step {step:4d}  val loss {evaluate(model, val_batches):.4f}")
    print(f"final val loss {evaluate(model, val_batches):.4f} after {args.steps} steps, "
          f"{time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
