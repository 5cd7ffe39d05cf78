"""What step() does with a NaN or Inf gradient (``nonfinite``): "ignore"
applies it as torch.optim does; "error" raises naming the parameter and
"skip" skips the step, and under both nothing changes: weights, every
state buffer and random grouping's generator are as before, so the next
finite step continues exactly as an optimizer that never saw the bad one."""
import copy

import pytest
import torch

from muonlab import _C
from muonlab.optim import HeadLayout, Muon, MuonWithAuxAdamW


def make_params(dtype=torch.float32):
    gen = torch.Generator().manual_seed(7)
    qkv = torch.nn.Parameter(torch.randn(12, 8, generator=gen).to(dtype))
    out = torch.nn.Parameter(torch.randn(8, 4, generator=gen).to(dtype))
    bias = torch.nn.Parameter(torch.randn(8, generator=gen).to(dtype))
    return [qkv, out, bias]


def make_optimizer(params, nonfinite, variant="muon2"):
    qkv, out, bias = params
    groups = [{"params": [qkv, out], "heads": [HeadLayout("qkv", 6, 2), HeadLayout("o", 2, 2)],
               "param_names": ["attn.qkv", "attn.out"]},
              {"params": [bias], "use_muon": False, "param_names": ["bias"]}]
    return MuonWithAuxAdamW(groups, lr=0.02, variant=variant, group_size=1, grouping="random",
                            nonfinite=nonfinite)


def gradients(params, seed):
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(p.shape, generator=gen).to(p.dtype) for p in params]


def step(opt, params, grads):
    for p, g in zip(params, grads):
        p.grad = g.clone()
    opt.step()


def snapshot(opt, params):
    return copy.deepcopy({"weights": [p.detach().clone() for p in params], "state": opt.state_dict()})


def assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b)
        for x, y in zip(a, b):
            assert_same(x, y)
    else:
        assert a == b


def poisoned(grads, index, value):
    bad = [g.clone() for g in grads]
    bad[index].view(-1)[-1] = value
    return bad


@pytest.mark.parametrize("policy", ["error", "skip"])
@pytest.mark.parametrize("index, name", [(0, "attn.qkv"), (2, "bias")])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_a_bad_step_changes_nothing_and_the_next_continues_as_if_it_never_came(policy, index, name, value, dtype):
    params, clean_params = make_params(dtype), make_params(dtype)
    opt, clean = make_optimizer(params, policy), make_optimizer(clean_params, policy)
    for seed in (1, 2):
        step(opt, params, gradients(params, seed))
        step(clean, clean_params, gradients(clean_params, seed))
    before = snapshot(opt, params)

    bad = poisoned(gradients(params, 3), index, value)
    if policy == "error":
        with pytest.raises(FloatingPointError, match=f"non-finite gradient .* in parameter '{name}'; no weight"):
            step(opt, params, bad)
        assert opt.skipped_steps == 0
    else:
        step(opt, params, bad)
        assert opt.skipped_steps == 1
    after = snapshot(opt, params)
    after["state"]["muonlab"]["skipped_steps"] = before["state"]["muonlab"]["skipped_steps"]
    assert_same(after, before)

    # Random grouping draws from the generator only in steps that ran, so
    # both now draw the same permutations.
    step(opt, params, gradients(params, 4))
    step(clean, clean_params, gradients(clean_params, 4))
    for p, q in zip(params, clean_params):
        assert torch.equal(p, q)


def test_ignore_applies_the_nan_as_torch_optim_does():
    params = make_params()
    opt = make_optimizer(params, "ignore")
    reference = torch.optim.AdamW([torch.nn.Parameter(params[2].detach().clone())], lr=0.02)
    step(opt, params, poisoned(gradients(params, 1), 2, float("nan")))
    reference.param_groups[0]["params"][0].grad = torch.full((8,), float("nan"))
    reference.step()
    assert params[2].isnan().any() and reference.param_groups[0]["params"][0].isnan().any()
    assert opt.skipped_steps == 0


def test_the_default_is_ignore_and_a_bad_policy_is_named():
    w = torch.nn.Parameter(torch.randn(4, 3))
    assert Muon([w]).nonfinite == "ignore"
    with pytest.raises(ValueError, match="option nonfinite='stop': expected one of 'ignore', 'error', 'skip'"):
        Muon([w], nonfinite="stop")


def test_skipped_steps_survive_a_state_dict_round_trip():
    params = make_params()
    opt = make_optimizer(params, "skip")
    step(opt, params, poisoned(gradients(params, 1), 1, float("-inf")))
    step(opt, params, gradients(params, 2))
    resumed = make_optimizer(make_params(), "skip")
    resumed.load_state_dict(opt.state_dict())
    assert resumed.skipped_steps == 1


def test_first_nonfinite_agrees_with_isfinite_on_every_layout():
    gen = torch.Generator().manual_seed(5)
    tensors = [torch.randn(70000, generator=gen), torch.randn(6, 5, generator=gen).t(),
               torch.randn(9, generator=gen).bfloat16(), torch.randn(3, 3, generator=gen).double(),
               torch.arange(4)]
    assert _C.first_nonfinite(tensors) is None
    assert _C.first_nonfinite([]) is None
    for bad in range(4):
        for value in (float("nan"), float("inf"), float("-inf")):
            copies = [t.clone() for t in tensors]
            copies[bad][(0,) * copies[bad].dim()] = value
            expected = next(i for i, t in enumerate(copies) if not torch.isfinite(t).all())
            assert _C.first_nonfinite(copies) == expected == bad
