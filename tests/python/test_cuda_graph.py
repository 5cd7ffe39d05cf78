"""Muon(cuda_graph=True): on the CPU the option changes nothing; on a GPU
(skipped without one, or without CUDA graphs in the extension) the replayed
steps give the eager steps' weights while an LR scheduler changes the lr,
and zero_grad() keeps the graphed groups' gradients where the graph reads
them."""
import pytest
import torch

from muonlab import _C
from muonlab.optim import Muon


def matrices(device):
    generator = torch.Generator().manual_seed(0)
    return [torch.nn.Parameter(torch.randn(shape, generator=generator).to(device))
            for shape in [(96, 32), (32, 32), (128, 32)]]


def run(params, steps, **options):
    opt = Muon(params, lr=0.02, weight_decay=0.1, **options)
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 / (1 + step))
    generator = torch.Generator().manual_seed(1)
    for _ in range(steps):
        opt.zero_grad()
        for p in params:
            grad = torch.randn(p.shape, generator=generator).to(p.device)
            if p.grad is None:
                p.grad = grad
            else:
                p.grad.copy_(grad)
        opt.step()
        schedule.step()
    return opt


def test_cuda_graph_is_off_by_default_and_a_no_op_on_the_cpu():
    assert Muon.defaults()["cuda_graph"] is False
    eager, graphed = matrices("cpu"), matrices("cpu")
    run(eager, 3)
    opt = run(graphed, 3, cuda_graph=True)
    for a, b in zip(eager, graphed):
        assert torch.equal(a, b)
    assert (opt._step_graph.eager_steps, opt._step_graph.captures, opt._step_graph.replays) == (0, 0, 0)


def test_zero_grad_keeps_only_gpu_gradients_of_graphed_groups():
    cpu = matrices("cpu")
    opt = Muon(cpu, cuda_graph=True)
    for p in cpu:
        p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=True)
    assert all(p.grad is None for p in cpu)
    for p in cpu:
        p.grad = torch.ones_like(p)
    opt.zero_grad(set_to_none=False)
    assert all(torch.equal(p.grad, torch.zeros_like(p)) for p in cpu)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_zero_grad_zeroes_graphed_gpu_gradients_in_place():
    gpu = matrices("cuda")
    opt = Muon(gpu, cuda_graph=True)
    for p in gpu:
        p.grad = torch.ones_like(p)
    before = [p.grad.data_ptr() for p in gpu]
    opt.zero_grad(set_to_none=True)
    assert [p.grad.data_ptr() for p in gpu] == before
    assert all(p.grad.abs().sum().item() == 0 for p in gpu)


def test_cuda_graph_must_be_a_bool():
    with pytest.raises(ValueError, match="cuda_graph"):
        Muon(matrices("cpu"), cuda_graph="yes")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.skipif(not _C.cuda_graphs_built(), reason="the extension was built without CUDA graphs")
def test_replayed_steps_are_the_eager_steps_on_the_gpu():
    eager, graphed = matrices("cuda"), matrices("cuda")
    run(eager, 6)
    opt = run(graphed, 6, cuda_graph=True)
    graph = opt._step_graph
    assert (graph.eager_steps, graph.captures, graph.replays) == (1, 1, 5)
    for a, b in zip(eager, graphed):
        assert (a - b).abs().max().item() < 1e-6
