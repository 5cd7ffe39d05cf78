"""muonlab.optim.Muon against PyTorch's own torch.optim.Muon (PyTorch >=
2.9): several steps on random matrices from the same gradients give the same
weights, to the rounding of torch's Newton-Schulz, which always runs in
bf16. Skipped where torch.optim.Muon does not exist.

The options map one to one: lr, weight_decay (decoupled, p *= 1 - lr * wd),
momentum with torch's EMA form (buf.lerp_(grad, 1 - momentum):
momentum_kind="ema") and Nesterov as grad.lerp(buf, momentum), nesterov,
ns_coefficients (one triple), ns_steps, eps (ns_eps), adjust_lr_fn
("original": sqrt(max(1, r/c)); "match_rms_adamw": 0.2 sqrt(max(r, c)))
as scale_rule of the same names; ns_dtype="bf16" as torch's NS.

bf16 rounding grows through the Newton-Schulz steps: with Jordan's
coefficients, whose iteration does not settle, two bf16 runs of five steps
differ by a few percent, while one step keeps them within half a percent.
So the conventions (momentum, Nesterov, decay, lr scale, coefficients, eps)
are held tightly with one step, and torch's defaults (five steps) loosely."""
import pytest
import torch

from muonlab.optim import Muon

pytestmark = pytest.mark.skipif(not hasattr(torch.optim, "Muon"),
                                reason=f"torch.optim.Muon needs PyTorch >= 2.9; this is {torch.__version__}")

# Wide, tall, square, and a second square one (muonlab batches it with the
# first on CUDA).
SHAPES = [(16, 48), (64, 24), (32, 32), (32, 32)]
STEPS = 4
# Relative error of the weight changes. One NS step: bf16 rounding (0.3%
# measured); five: a few percent. A wrong convention (Nesterov left out,
# other coefficients) misses by 20% or more either way.
ONE_STEP_TOLERANCE = 1e-2
FIVE_STEP_TOLERANCE = 0.1

# (torch.optim.Muon options, muonlab options), one NS step each.
OPTION_SETS = {
    "original": ({"adjust_lr_fn": "original"}, {"scale_rule": "original"}),
    "match_rms_adamw": ({"adjust_lr_fn": "match_rms_adamw"}, {"scale_rule": "match_rms_adamw"}),
    "no_nesterov": ({"nesterov": False}, {"nesterov": False}),
    "options": ({"lr": 0.05, "weight_decay": 0.01, "momentum": 0.9, "eps": 1e-6, "ns_coefficients": (3.0, -3.2, 1.2)},
                {"lr": 0.05, "weight_decay": 0.01, "momentum": 0.9, "ns_eps": 1e-6,
                 "ns_coefficients": [(3.0, -3.2, 1.2)]}),
}
# muonlab's options that make torch.optim.Muon's conventions.
AS_TORCH = {"momentum_kind": "ema", "ns_dtype": "bf16"}


def device():
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def weights_and_grads():
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(s, generator=gen) * 0.02 for s in SHAPES]
    grads = [[torch.randn(s, generator=gen) for s in SHAPES] for _ in range(STEPS)]
    return weights, grads


def weight_changes(optimizer_class, weights, grads, **options):
    params = [torch.nn.Parameter(w.to(device(), copy=True)) for w in weights]
    optimizer = optimizer_class(params, **options)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.to(device())
        optimizer.step()
    return [p.detach().cpu().double() - w.double() for p, w in zip(params, weights)]


def worst_relative_error(changes, reference):
    return max(((c - r).norm() / r.norm()).item() for c, r in zip(changes, reference))


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_one_newton_schulz_step_equals_torch_optim_muon(name):
    torch_options, muonlab_options = OPTION_SETS[name]
    weights, grads = weights_and_grads()
    theirs = weight_changes(torch.optim.Muon, weights, grads, **dict({"lr": 0.02, "ns_steps": 1}, **torch_options))
    ours = weight_changes(Muon, weights, grads, **dict({"lr": 0.02, "ns_steps": 1}, **AS_TORCH, **muonlab_options))
    error = worst_relative_error(ours, theirs)
    assert error < ONE_STEP_TOLERANCE, f"{name}: weight changes off torch.optim.Muon's by {error:.3g} (relative)"


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_torch_keyword_arguments_run_unchanged(name):
    # torch.optim.Muon's keyword arguments verbatim (muonlab reads its names:
    # adjust_lr_fn, eps, one coefficient triple); bf16 NS as torch's.
    torch_options, _ = OPTION_SETS[name]
    options = dict({"lr": 0.02, "ns_steps": 1}, **torch_options)
    weights, grads = weights_and_grads()
    theirs = weight_changes(torch.optim.Muon, weights, grads, **options)
    ours = weight_changes(Muon, weights, grads, ns_dtype="bf16", **options)
    error = worst_relative_error(ours, theirs)
    assert error < ONE_STEP_TOLERANCE, f"{name}: weight changes off torch.optim.Muon's by {error:.3g} (relative)"


def test_torch_positional_arguments_run_unchanged():
    # torch.optim.Muon(params, lr, weight_decay, momentum, nesterov,
    # ns_coefficients, eps, ns_steps, adjust_lr_fn), every one positional.
    positional = (0.05, 0.01, 0.9, True, (3.0, -3.2, 1.2), 1e-6, 1, "match_rms_adamw")
    weights, grads = weights_and_grads()
    theirs = weight_changes(lambda p: torch.optim.Muon(p, *positional), weights, grads)
    ours = weight_changes(lambda p: Muon(p, *positional, ns_dtype="bf16"), weights, grads)
    error = worst_relative_error(ours, theirs)
    assert error < ONE_STEP_TOLERANCE, f"weight changes off torch.optim.Muon's by {error:.3g} (relative)"


def test_a_torch_optim_muon_state_dict_continues_in_muonlab():
    # Two steps of torch.optim.Muon, its state_dict loaded into muonlab's
    # Muon, two more steps there: torch's four steps.
    options = {"lr": 0.02, "ns_steps": 1}
    weights, grads = weights_and_grads()
    theirs = weight_changes(torch.optim.Muon, weights, grads, **options)
    params = [torch.nn.Parameter(w.to(device(), copy=True)) for w in weights]
    first = torch.optim.Muon(params, **options)
    for step_grads in grads[:2]:
        for p, g in zip(params, step_grads):
            p.grad = g.to(device())
        first.step()
    second = Muon(params, ns_dtype="bf16", **options)
    second.load_state_dict(first.state_dict())
    for step_grads in grads[2:]:
        for p, g in zip(params, step_grads):
            p.grad = g.to(device())
        second.step()
    ours = [p.detach().cpu().double() - w.double() for p, w in zip(params, weights)]
    error = worst_relative_error(ours, theirs)
    assert error < ONE_STEP_TOLERANCE, f"weight changes off torch.optim.Muon's by {error:.3g} (relative)"


def test_defaults_equal_torch_optim_muon():
    # Both optimizers' defaults: lr 1e-3, weight decay 0.1, momentum 0.95,
    # Nesterov, five steps of Jordan's coefficients, eps 1e-7, "original".
    weights, grads = weights_and_grads()
    theirs = weight_changes(torch.optim.Muon, weights, grads)
    ours = weight_changes(Muon, weights, grads, **AS_TORCH)
    error = worst_relative_error(ours, theirs)
    assert error < FIVE_STEP_TOLERANCE, f"weight changes off torch.optim.Muon's by {error:.3g} (relative)"


def test_the_tolerance_tells_conventions_apart():
    weights, grads = weights_and_grads()
    theirs = weight_changes(torch.optim.Muon, weights, grads, lr=0.02, ns_steps=1)
    for wrong in ({"nesterov": False}, {"ns_coefficients": "taylor"}, {"scale_rule": "match_rms_adamw"}):
        ours = weight_changes(Muon, weights, grads, lr=0.02, ns_steps=1, **AS_TORCH, **wrong)
        assert worst_relative_error(ours, theirs) > 10 * ONE_STEP_TOLERANCE, wrong
