"""MuonWithAuxAdamW under DistributedDataParallel: two Gloo ranks, each
training a tiny nanoGPT on half of every global batch, reach the weights of
one process trained on the whole batches (DDP averages the gradients, so the
step is the same up to the order of floating-point sums)."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from muonlab.optim import MuonWithAuxAdamW, param_groups
from tiny_models import GPT, language_model_loss

WORLD = 2
STEPS = 3
GLOBAL_BATCH = 8
SEQ = 16  # tokens per row: 15 inputs and their next tokens

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with Gloo is not available", allow_module_level=True)


def make_model():
    # No biases: the key projection's bias has a zero gradient in exact
    # arithmetic (softmax ignores a constant added to a row of scores), so
    # its computed gradient is rounding noise, which differs between one
    # process and two, and AdamW's first steps (g / (|g| + eps)) blow that
    # noise up to the size of the learning rate.
    torch.manual_seed(0)
    return GPT(vocab_size=64, block_size=SEQ, n_layer=2, n_head=4, n_embd=32, bias=False)


def make_optimizer(model):
    # Group Muon (2 heads a block) on the attention weights, whole-matrix
    # Muon on the MLP, AdamW on embeddings, norms and biases. NS in fp32:
    # the comparison is to reduction-order rounding, which bf16 (auto's
    # choice on CPUs with bf16 instructions) would magnify past it.
    groups = param_groups(model, lr=0.05, adamw_lr=1e-2, group_size=2, ns_dtype="fp32")
    return MuonWithAuxAdamW(groups)


def global_batches():
    gen = torch.Generator().manual_seed(1)
    return [torch.randint(0, 64, (GLOBAL_BATCH, SEQ), generator=gen) for _ in range(STEPS)]


def train(model, optimizer, batches):
    for idx in batches:
        loss = language_model_loss(model, idx)  # the mean over this process's rows
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def rank_main(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        torch.set_num_threads(1)
        model = make_model()
        ddp = DistributedDataParallel(model)
        half = GLOBAL_BATCH // WORLD
        batches = [idx[rank * half:(rank + 1) * half] for idx in global_batches()]
        train(ddp, make_optimizer(model), batches)
        torch.save({name: p.detach() for name, p in model.named_parameters()}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_equal_one_process_with_the_global_batch(tmp_path):
    mp.spawn(rank_main, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    model = make_model()
    initial = {name: p.detach().clone() for name, p in model.named_parameters()}
    train(model, make_optimizer(model), global_batches())
    expected = {name: p.detach() for name, p in model.named_parameters()}
    for rank in range(WORLD):
        got = torch.load(tmp_path / f"{rank}.pt")
        assert got.keys() == expected.keys()
        for name, weight in expected.items():
            assert torch.allclose(got[name], weight, rtol=1e-4, atol=1e-5), \
                f"rank {rank}, {name}: off one process's weights by {(got[name] - weight).abs().max():.3g}"
    for name, weight in expected.items():
        assert not torch.equal(weight, initial[name]), f"{name} did not move: the comparison would prove nothing"
