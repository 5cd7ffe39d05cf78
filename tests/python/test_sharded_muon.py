"""Muon with a process group: two Gloo ranks with the same (already
averaged) gradients each step half of the matrices and broadcast them; the
weights equal one process's, random grouping included, and each rank keeps
state only for the matrices it owns."""
import os

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from muonlab.optim import HeadLayout, MuonWithAuxAdamW

WORLD = 2
STEPS = 3

if not dist.is_available() or not dist.is_gloo_available():
    pytest.skip("torch.distributed with Gloo is not available", allow_module_level=True)


def make_model():
    gen = torch.Generator().manual_seed(0)
    shapes = [(12, 8), (8, 4), (16, 8), (8, 16), (8, 8), (8, 8)]
    return [torch.nn.Parameter(torch.randn(s, generator=gen, dtype=torch.float64)) for s in shapes]


def make_optimizer(params, process_group=None):
    bias = params[-1]
    groups = [{"params": params[:2], "heads": [HeadLayout("qkv", 6, 2), HeadLayout("o", 2, 2)]},
              {"params": params[2:5]},
              {"params": [bias], "use_muon": False}]
    return MuonWithAuxAdamW(groups, lr=0.05, ns_dtype="fp64", group_size=1, grouping="random",
                            variant="muon2f", process_group=process_group)


def train(params, opt):
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen, dtype=torch.float64)
        opt.step()


def rank_main(rank, init_file, out_dir):
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=WORLD)
    try:
        params = make_model()
        opt = make_optimizer(params, process_group=True)
        train(params, opt)
        owned = [i for i, p in enumerate(params[:5]) if p in opt.state and opt.state[p]]
        torch.save({"weights": [p.detach() for p in params], "owned": owned}, os.path.join(out_dir, f"{rank}.pt"))
    finally:
        dist.destroy_process_group()


def test_two_ranks_equal_one_process(tmp_path):
    mp.spawn(rank_main, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=WORLD, join=True)
    params = make_model()
    train(params, make_optimizer(params))
    results = [torch.load(tmp_path / f"{rank}.pt") for rank in range(WORLD)]
    for result in results:
        for p, q in zip(params, result["weights"]):
            assert torch.equal(p.detach(), q)
    owned = [set(r["owned"]) for r in results]
    assert owned[0] and owned[1] and not owned[0] & owned[1] and owned[0] | owned[1] == set(range(5))
