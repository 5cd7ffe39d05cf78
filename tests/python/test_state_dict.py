"""state_dict() / load_state_dict() in torch.optim's format: a round trip
through torch.save / torch.load continues bit-exactly (random grouping's
generator included), and a state of another variant or shape is refused
naming the parameter and the buffer, leaving the optimizer as it was."""
import io

import pytest
import torch

from muonlab.optim import HeadLayout, Muon, Muon2, Muon2F, MuonWithAuxAdamW


def make_params(seed=0, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    qkv = torch.nn.Parameter(torch.randn(12, 8, generator=gen).to(dtype))  # 3 x 2 heads of size 2
    out = torch.nn.Parameter(torch.randn(8, 4, generator=gen).to(dtype))  # 2 heads in columns
    conv = torch.nn.Parameter(torch.randn(4, 2, 3, 3, generator=gen).to(dtype))
    bias = torch.nn.Parameter(torch.randn(8, generator=gen).to(dtype))
    return [qkv, out, conv, bias]


def make_optimizer(params, cls=MuonWithAuxAdamW, **options):
    qkv, out, conv, bias = params
    groups = [{"params": [qkv, out], "heads": [HeadLayout("qkv", 6, 2), HeadLayout("o", 2, 2)],
               "param_names": ["attn.qkv", "attn.out"]},
              {"params": [conv], "param_names": ["conv"]}]
    if cls is MuonWithAuxAdamW:
        groups.append({"params": [bias], "use_muon": False, "param_names": ["bias"]})
    options.setdefault("group_size", 1)
    options.setdefault("grouping", "random")
    return cls(groups, lr=0.02, **options)


def train(opt, params, steps, seed):
    gen = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        for p in params:
            p.grad = torch.randn(p.shape, generator=gen).to(p.dtype)
        opt.step()


def saved(obj):
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize("variant", ["muon", "muon2", "muon2f"])
def test_round_trip_continues_bit_exactly(variant):
    params = make_params()
    opt = make_optimizer(params, variant=variant)
    train(opt, params, 2, seed=1)
    checkpoint = saved({"weights": [p.detach().clone() for p in params], "optimizer": opt.state_dict()})
    train(opt, params, 3, seed=2)

    loaded = torch.load(checkpoint)
    resumed_params = [torch.nn.Parameter(w) for w in loaded["weights"]]
    resumed = make_optimizer(resumed_params, variant=variant)
    resumed.load_state_dict(loaded["optimizer"])
    train(resumed, resumed_params, 3, seed=2)
    for p, q in zip(params, resumed_params):
        assert torch.equal(p, q)


def test_random_grouping_generator_is_part_of_the_state():
    params = make_params()
    opt = make_optimizer(params)
    train(opt, params, 2, seed=1)
    state = opt.state_dict()
    weights = [p.detach().clone() for p in params]
    train(opt, params, 1, seed=2)
    # Without the generator's state the next permutations differ.
    other_params = [torch.nn.Parameter(w.clone()) for w in weights]
    other = make_optimizer(other_params)
    state_without = dict(state)
    del state_without["muonlab"]
    other.load_state_dict(state_without)
    train(other, other_params, 1, seed=2)
    assert not torch.equal(other_params[0], params[0])


@pytest.mark.skipif(int(torch.__version__.split(".")[0]) < 2,
                    reason="torch 1.13's weights_only unpickler has no floats: it cannot load any optimizer's "
                           "state_dict (torch.optim.SGD's neither)")
def test_state_loads_with_weights_only():
    params = make_params()
    opt = make_optimizer(params, variant="muon2f")
    train(opt, params, 1, seed=1)
    state = torch.load(saved(opt.state_dict()), weights_only=True)
    make_optimizer(make_params(), variant="muon2f").load_state_dict(state)


def test_second_moments_stay_fp32_for_bf16_parameters():
    params = make_params(dtype=torch.bfloat16)
    opt = make_optimizer(params, variant="muon2")
    train(opt, params, 1, seed=1)
    assert opt.state[params[0]]["second_moment"].dtype == torch.float32
    resumed_params = make_params(dtype=torch.bfloat16)
    resumed = make_optimizer(resumed_params, variant="muon2")
    resumed.load_state_dict(torch.load(saved(opt.state_dict())))
    assert resumed.state[resumed_params[0]]["second_moment"].dtype == torch.float32
    assert resumed.state[resumed_params[0]]["momentum_buffer"].dtype == torch.bfloat16


@pytest.mark.parametrize("saved_variant, loaded_variant, message", [
    ("muon", "muon2", "parameter 'attn.qkv': the state has no buffer 'second_moment', which this optimizer "
                      "(second_moment = 'full') needs"),
    ("muon2", "muon", "parameter 'attn.qkv': the state holds buffer 'second_moment', which this optimizer "
                      "(second_moment = 'none') does not keep"),
    ("muon2", "muon2f", "parameter 'attn.qkv': the state holds buffer 'second_moment', which this optimizer "
                        "(second_moment = 'factored') does not keep"),
    ("muon2f", "muon2", "parameter 'attn.qkv': the state holds buffer 'second_moment_row', which this optimizer "
                        "(second_moment = 'full') does not keep"),
])
def test_another_variants_state_is_refused_and_nothing_changes(saved_variant, loaded_variant, message):
    source_params = make_params()
    source = make_optimizer(source_params, variant=saved_variant)
    train(source, source_params, 1, seed=1)
    params = make_params()
    opt = make_optimizer(params, variant=loaded_variant)
    train(opt, params, 1, seed=3)
    before = {k: v.clone() if torch.is_tensor(v) else v for k, v in opt.state[params[0]].items()}
    with pytest.raises(ValueError) as error:
        opt.load_state_dict(torch.load(saved(source.state_dict())))
    assert message in str(error.value)
    after = opt.state[params[0]]
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) if torch.is_tensor(before[k]) else before[k] == after[k]
               for k in before)
    assert opt.param_groups[0]["second_moment"] == {"muon": "none", "muon2": "full",
                                                    "muon2f": "factored"}[loaded_variant]


def test_other_shapes_and_layouts_are_refused():
    source_params = make_params()
    source = make_optimizer(source_params)
    train(source, source_params, 1, seed=1)
    state = source.state_dict()

    params = make_params()
    params[2] = torch.nn.Parameter(torch.randn(4, 2, 5, 5))
    with pytest.raises(ValueError, match=r"parameter 'conv': state buffer 'momentum_buffer' has shape \[4, 2, 3, 3\], "
                                         r"expected \[4, 2, 5, 5\]"):
        make_optimizer(params).load_state_dict(state)
    with pytest.raises(ValueError, match="the state has 3 parameter groups, this optimizer 2"):
        make_optimizer(make_params(), cls=Muon).load_state_dict(state)


def test_plain_classes_keep_torch_optim_layout():
    params = make_params()[:2]
    for cls, keys in ((Muon, {"step", "momentum_buffer"}), (Muon2, {"step", "momentum_buffer", "second_moment"}),
                      (Muon2F, {"step", "momentum_buffer", "second_moment_row", "second_moment_col"})):
        opt = cls(params, lr=0.01)
        for p in params:
            p.grad = torch.ones_like(p)
        opt.step()
        state = opt.state_dict()
        assert set(state) == {"state", "param_groups", "muonlab"}
        assert set(state["state"]) == {0, 1} and set(state["state"][0]) == keys
        assert state["param_groups"][0]["params"] == [0, 1]
        assert state["state"][1]["momentum_buffer"].shape == (8, 4)
