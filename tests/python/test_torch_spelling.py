"""torch.optim.Muon's keyword arguments given to muonlab.optim.Muon: a script
written for torch's optimizer runs unchanged. Its names (adjust_lr_fn, eps, a
single ns_coefficients triple) take the steps of the float64 reference
written with muonlab's names, in the constructor and in added param groups;
a setting named both ways, and a value torch's optimizer would not take, are
refused by name. Its state dicts load and continue; model.named_parameters()
is taken as torch takes it. (Against torch.optim.Muon itself:
test_torch_muon.py, where PyTorch has it.)"""
import pytest
import torch

from muonlab.optim import Muon, MuonWithAuxAdamW
from reference_muon import ReferenceMuon, assert_equal_to_reference, optimizer_steps, reference_steps

SHAPES = [(12, 8), (6, 10), (8, 8)]
STEPS = 3
TRIPLE = (3.0, -3.2, 1.2)
JORDAN = (3.4445, -4.7750, 2.0315)  # muonlab's "jordan" preset as torch.optim.Muon's default triple

# (torch.optim.Muon's spelling, the same options in muonlab's names).
SPELLINGS = {
    "adjust_lr_fn": ({"adjust_lr_fn": "match_rms_adamw"}, {"scale_rule": "match_rms_adamw"}),
    "adjust_lr_fn_none": ({"adjust_lr_fn": None}, {"scale_rule": "original"}),
    "eps": ({"eps": 1e-2}, {"ns_eps": 1e-2}),
    # One triple, repeated at each of the three steps as torch repeats it.
    "one_triple": ({"ns_coefficients": TRIPLE, "ns_steps": 3}, {"ns_coefficients": [TRIPLE] * 3, "ns_steps": 3}),
    "one_triple_as_list": ({"ns_coefficients": list(TRIPLE), "ns_steps": 1}, {"ns_coefficients": [TRIPLE], "ns_steps": 1}),
    "all_of_torch": ({"lr": 0.05, "weight_decay": 0.01, "momentum": 0.9, "nesterov": False, "eps": 1e-3,
                      "ns_coefficients": TRIPLE, "ns_steps": 2, "adjust_lr_fn": "match_rms_adamw"},
                     {"lr": 0.05, "weight_decay": 0.01, "momentum": 0.9, "nesterov": False, "ns_eps": 1e-3,
                      "ns_coefficients": [TRIPLE] * 2, "ns_steps": 2, "scale_rule": "match_rms_adamw"}),
}


def weights_and_grads():
    gen = torch.Generator().manual_seed(7)
    weights = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES] for _ in range(STEPS)]
    return weights, grads


stepped = optimizer_steps


def reference(weights, grads, **options):
    return reference_steps([ReferenceMuon(**dict({"lr": 0.02}, **options)) for _ in weights], weights, grads)


@pytest.mark.parametrize("name", sorted(SPELLINGS))
def test_torch_spelling_in_the_constructor_takes_the_reference_steps(name):
    theirs, ours = SPELLINGS[name]
    weights, grads = weights_and_grads()
    got, optimizer = stepped(lambda p: Muon(p, **dict({"lr": 0.02, "ns_dtype": "fp64"}, **theirs)), weights, grads)
    assert_equal_to_reference(got, reference(weights, grads, **ours), name)
    group = optimizer.param_groups[0]
    assert not {"adjust_lr_fn", "eps"} & set(group), "torch's names are stored under muonlab's"
    for key, value in ours.items():
        if key == "ns_coefficients":  # stored as given: one triple, repeated when stepping
            assert [tuple(t) for t in group[key]] == [TRIPLE]
        else:
            assert group[key] == value, key


@pytest.mark.parametrize("name", ["adjust_lr_fn", "eps", "one_triple"])
def test_torch_spelling_in_an_added_group_takes_the_reference_steps(name):
    theirs, ours = SPELLINGS[name]
    weights, grads = weights_and_grads()

    def two_groups(params):
        optimizer = Muon(params[:1], lr=0.02, ns_dtype="fp64")
        optimizer.add_param_group(dict({"params": params[1:]}, **theirs))
        return optimizer

    got, _ = stepped(two_groups, weights, grads)
    plain = reference(weights[:1], [g[:1] for g in grads])
    spelled = reference(weights[1:], [g[1:] for g in grads], **ours)
    assert_equal_to_reference(got, plain + spelled, name)


def test_the_reference_tells_the_spellings_apart():
    # Each torch option, if dropped rather than renamed, moves the weights.
    weights, grads = weights_and_grads()
    for name in ("adjust_lr_fn", "eps", "one_triple"):
        _, ours = SPELLINGS[name]
        ignored, _ = stepped(lambda p: Muon(p, lr=0.02, ns_dtype="fp64", ns_steps=ours.get("ns_steps", 5)),
                             weights, grads)
        expected = reference(weights, grads, **ours)
        assert max((i - e).abs().max().item() for i, e in zip(ignored, expected)) > 1e-6, name


def test_a_setting_named_both_ways_is_refused():
    params = [torch.nn.Parameter(torch.zeros(4, 4))]
    with pytest.raises(ValueError, match="'adjust_lr_fn'.*'scale_rule'"):
        Muon(params, adjust_lr_fn="original", scale_rule="spectral")
    optimizer = Muon(params)
    with pytest.raises(ValueError, match="'eps'.*'ns_eps'"):
        optimizer.add_param_group({"params": [torch.nn.Parameter(torch.zeros(4, 4))], "eps": 1e-3, "ns_eps": 1e-3})


def test_a_value_torch_would_not_take_is_named():
    params = [torch.nn.Parameter(torch.zeros(4, 4))]
    with pytest.raises(ValueError, match="adjust_lr_fn='spectral'.*scale_rule"):
        Muon(params, adjust_lr_fn="spectral")
    with pytest.raises(ValueError, match="ns_coefficients"):
        Muon(params, ns_coefficients=(3.0, -3.2))  # neither one triple nor a list of them


def test_adamw_groups_keep_their_own_eps():
    # In MuonWithAuxAdamW an AdamW group's eps is AdamW's, not Newton-Schulz's.
    muon_param, adamw_param = torch.nn.Parameter(torch.zeros(4, 4)), torch.nn.Parameter(torch.zeros(4))
    optimizer = MuonWithAuxAdamW([{"params": [muon_param], "eps": 1e-4},
                                  {"params": [adamw_param], "use_muon": False, "eps": 1e-6}])
    muon_group, adamw_group = optimizer.param_groups
    assert muon_group["ns_eps"] == 1e-4 and "eps" not in muon_group
    assert adamw_group["eps"] == 1e-6


def torch_muon_state_dict(optimizer):
    """This optimizer's state as torch.optim.Muon (PyTorch 2.9) writes its
    own: a momentum buffer per parameter and no step count, and the group
    options under torch's names, with Jordan's coefficients as one triple."""
    group = optimizer.param_groups[0]
    saved = optimizer.state_dict()
    return {"state": {key: {"momentum_buffer": buffers["momentum_buffer"]} for key, buffers in saved["state"].items()},
            "param_groups": [{"lr": group["lr"], "weight_decay": group["weight_decay"], "momentum": group["momentum"],
                              "nesterov": group["nesterov"], "ns_coefficients": JORDAN, "eps": 1e-7,
                              "ns_steps": group["ns_steps"], "adjust_lr_fn": None,
                              "params": saved["param_groups"][0]["params"]}]}



def test_a_torch_muon_state_dict_continues_where_it_stopped():
    weights, grads = weights_and_grads()
    grads = grads + grads[:1]  # four steps: two before the save, two after

    def make(params):
        return Muon(params, lr=0.02, ns_dtype="fp64")

    straight, _ = stepped(make, weights, grads)

    first, before = stepped(make, weights, grads[:2])
    resumed = [torch.nn.Parameter(w.clone()) for w in first]
    optimizer = make(resumed)
    optimizer.load_state_dict(torch_muon_state_dict(before))
    group = optimizer.param_groups[0]
    assert group["scale_rule"] == "original" and group["ns_eps"] == 1e-7 and group["ns_dtype"] == "fp64"
    assert [tuple(t) for t in group["ns_coefficients"]] == [JORDAN]
    assert all(optimizer.state[p]["step"] == 0 for p in resumed), "torch keeps no step count"
    for step_grads in grads[2:]:
        for p, g in zip(resumed, step_grads):
            p.grad = g.clone()
        optimizer.step()
    for r, s in zip(resumed, straight):
        assert torch.allclose(r.detach(), s, rtol=1e-10, atol=1e-12), f"off the uninterrupted run by {(r - s).abs().max():.3g}"

    # An optimizer made with the summed momentum reads torch's buffers as the
    # EMAs they are.
    summing = Muon([torch.nn.Parameter(w.clone()) for w in first], lr=0.02, ns_dtype="fp64", momentum_kind="sum")
    summing.load_state_dict(torch_muon_state_dict(before))
    assert summing.param_groups[0]["momentum_kind"] == "ema"

    # Without the momentum buffers the same two steps end elsewhere.
    fresh, _ = stepped(make, first, grads[2:])
    assert max((f - s).abs().max().item() for f, s in zip(fresh, straight)) > 1e-6


def test_torch_positional_order_takes_the_reference_steps():
    # torch.optim.Muon(params, lr, weight_decay, momentum, nesterov,
    # ns_coefficients, eps, ns_steps, adjust_lr_fn): the same steps as
    # those options given by name.
    theirs, ours = SPELLINGS["all_of_torch"]
    positional = [theirs[name] for name in ("lr", "weight_decay", "momentum", "nesterov", "ns_coefficients", "eps",
                                            "ns_steps", "adjust_lr_fn")]
    weights, grads = weights_and_grads()
    got, _ = stepped(lambda p: Muon(p, *positional, ns_dtype="fp64"), weights, grads)
    assert_equal_to_reference(got, reference(weights, grads, **ours), "positional")
    # Two arguments only: lr and weight_decay, as torch reads them.
    got, optimizer = stepped(lambda p: Muon(p, 0.05, 0.01, ns_dtype="fp64"), weights, grads)
    assert optimizer.param_groups[0]["weight_decay"] == 0.01
    assert_equal_to_reference(got, reference(weights, grads, lr=0.05, weight_decay=0.01), "lr, weight_decay")


def test_torch_positional_misuse_is_refused():
    params = [torch.nn.Parameter(torch.zeros(4, 4))]
    with pytest.raises(TypeError, match="got multiple values for argument 'weight_decay'"):
        Muon(params, 0.02, 0.1, weight_decay=0.2)
    with pytest.raises(TypeError, match=r"takes at most 9 positional arguments .* got 10"):
        Muon(params, 0.02, 0.1, 0.95, True, JORDAN, 1e-7, 5, None, "extra")


def test_named_parameters_are_taken_as_torch_takes_them():
    # model.named_parameters(), as torch's optimizers take it from PyTorch
    # 2.6: the same steps as model.parameters(), and the names in messages.
    def model():
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Linear(6, 8, bias=False), torch.nn.Linear(8, 4, bias=False))

    def two_steps(net, params):
        optimizer = Muon(params, lr=0.02, ns_dtype="fp32", nonfinite="error")
        for _ in range(2):
            net.zero_grad()
            net(torch.ones(3, 6)).square().sum().backward()
            optimizer.step()
        return optimizer

    plain, named = model(), model()
    two_steps(plain, plain.parameters())
    optimizer = two_steps(named, named.named_parameters())
    assert optimizer.param_groups[0]["param_names"] == ["0.weight", "1.weight"]
    for p, q in zip(plain.parameters(), named.parameters()):
        assert torch.equal(p, q)
    named[1].weight.grad[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="'1.weight'"):
        optimizer.step()

    weight = torch.nn.Parameter(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="mixes"):
        Muon([("w", weight), torch.nn.Parameter(torch.zeros(4, 4))])
    with pytest.raises(ValueError, match="param_names"):
        Muon([{"params": [("w", weight)], "param_names": ["w"]}])
