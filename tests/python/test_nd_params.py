"""Parameters of more than two dimensions against per-matrix references: a
conv kernel steps as its out x (in*kh*kw) matrix, a stack of expert weights
[E, r, c] as E matrices, each with its own momentum, second moment and scale."""
import pytest
import torch

from muonlab.optim import Muon, MuonWithAuxAdamW
from reference_muon import ReferenceMuon

STEPS = 3


def gradients(shape, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(STEPS)]


@pytest.mark.parametrize("second_moment", ["none", "full", "factored"])
def test_conv_kernel_is_its_flattened_matrix(second_moment):
    kernel = torch.randn(8, 3, 3, 3, dtype=torch.float64)
    grads = gradients(kernel.shape, 1)
    p = torch.nn.Parameter(kernel.clone())
    opt = Muon([p], lr=0.05, ns_dtype="fp64", second_moment=second_moment)
    ref = ReferenceMuon(lr=0.05, second_moment=second_moment)
    expected = kernel.reshape(8, 27)
    for g in grads:
        p.grad = g.clone()
        opt.step()
        expected = ref.step(expected, g.reshape(8, 27))
    assert torch.allclose(p.detach().reshape(8, 27), expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("second_moment", ["none", "full", "factored"])
def test_expert_stack_is_its_matrices(second_moment):
    experts = torch.randn(4, 6, 10, dtype=torch.float64)
    grads = gradients(experts.shape, 2)
    p = torch.nn.Parameter(experts.clone())
    opt = Muon([p], lr=0.05, ns_dtype="fp64", second_moment=second_moment, nd_params="batch",
               scale_rule="match_rms_adamw")
    refs = [ReferenceMuon(lr=0.05, second_moment=second_moment, scale_rule="match_rms_adamw") for _ in range(4)]
    expected = list(experts.unbind(0))
    for g in grads:
        p.grad = g.clone()
        opt.step()
        expected = [ref.step(w, ge) for ref, w, ge in zip(refs, expected, g.unbind(0))]
    assert torch.allclose(p.detach(), torch.stack(expected), rtol=1e-10, atol=1e-12)
    if second_moment == "factored":
        assert opt.state[p]["second_moment_row"].shape == (4, 6)
        assert opt.state[p]["second_moment_col"].shape == (4, 10)


def test_three_dimensional_tensors_need_a_reading():
    with pytest.raises(ValueError, match=r"parameter 'conv1d' has shape \[8, 4, 3\]: a 3-D tensor may be a Conv1d"):
        Muon([{"params": [torch.nn.Parameter(torch.randn(8, 4, 3))], "param_names": ["conv1d"]}])
    with pytest.raises(ValueError, match="nd_params = \"refuse\" takes 2-D matrices only"):
        Muon([torch.nn.Parameter(torch.randn(8, 3, 3, 3))], nd_params="refuse")
    Muon([torch.nn.Parameter(torch.randn(8, 4, 3))], nd_params="flatten")
    # The expert role batches under nd_params="auto".
    stack = torch.nn.Parameter(torch.randn(2, 4, 4))
    MuonWithAuxAdamW([{"params": [stack], "role": "expert"}])


def test_a_conv_network_trains():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 8, 3),
                              torch.nn.Flatten(), torch.nn.Linear(8 * 6 * 6, 4))
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 4, (16,))
    kernels = [m.weight for m in net if isinstance(m, torch.nn.Conv2d)]
    rest = [p for p in net.parameters() if all(p is not k for k in kernels)]
    opt = MuonWithAuxAdamW([{"params": kernels}, {"params": rest, "use_muon": False}], lr=0.02, adamw_lr=3e-3)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
