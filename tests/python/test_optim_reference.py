"""Each Python optimizer's steps equal the C++ optimizer class's steps on the
same weights and gradients, and a float64 reference written with plain torch
(reference_muon.py), for every option the C++ tests cover."""
import pytest
import torch

import muonlab
from muonlab import _C
from muonlab.optim import HeadLayout, Muon, Muon2, Muon2F, MuonWithAuxAdamW, NorMuon
import reference_muon
from reference_muon import COEFFICIENTS, ReferenceAdamW, ReferenceMuon, newton_schulz, optimizer_steps

# Tall, wide and two same-shaped (batched together) matrices.
SHAPES = [(12, 8), (6, 10), (8, 8), (8, 8)]
STEPS = 3

OPTION_SETS = {
    "defaults": {},
    "sum_momentum": {"momentum_kind": "sum", "momentum": 0.9},
    "no_nesterov": {"nesterov": False},
    "sum_no_nesterov": {"momentum_kind": "sum", "nesterov": False},
    "k3": {"ns_steps": 3},
    "k0": {"ns_steps": 0},
    "taylor_k10": {"ns_coefficients": "taylor", "ns_steps": 10},
    "polar_express": {"ns_coefficients": "polar_express", "ns_steps": 5},
    "custom_triples": {"ns_coefficients": [(3.0, -3.2, 1.2), (2.0, -1.5, 0.5)], "ns_steps": 2},
    "ns_eps": {"ns_eps": 1e-3},
    "match_rms_adamw": {"scale_rule": "match_rms_adamw"},
    "spectral": {"scale_rule": "spectral"},
    "no_scale": {"scale_rule": "none"},
    "no_weight_decay": {"weight_decay": 0.0},
    "normalized_momentum": {"orthogonalize": False},
    "muon2": {"second_moment": "full", "ns_steps": 3},
    "muon2_no_bias_correction": {"second_moment": "full", "bias_correction": False, "beta2": 0.9},
    "muon2f": {"second_moment": "factored", "ns_steps": 3},
    "muon2f_eps": {"second_moment": "factored", "second_moment_eps": 1e-3},
    "normuon": {"neuron_norm": True},
    "normuon_beta_eps": {"neuron_norm": True, "neuron_beta2": 0.8, "neuron_eps": 1e-3},
    "muon2_then_normuon": {"second_moment": "full", "ns_steps": 3, "neuron_norm": True},
}


def weights_and_grads(seed=0):
    gen = torch.Generator().manual_seed(seed)
    weights = [torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES] for _ in range(STEPS)]
    return weights, grads


def python_steps(optimizer_class, weights, grads, **options):
    return optimizer_steps(lambda params: optimizer_class(params, **options), weights, grads)


def reference_steps(weights, grads, **options):
    return reference_muon.reference_steps([ReferenceMuon(**options) for _ in weights], weights, grads)


@pytest.mark.parametrize("name", sorted(OPTION_SETS))
def test_muon_equals_cpp_class_and_float64_reference(name):
    options = dict(lr=0.05, ns_dtype="fp64", **OPTION_SETS[name])
    weights, grads = weights_and_grads()
    got, _ = python_steps(Muon, weights, grads, **options)
    cpp = _C._muon_class_steps(dict(Muon.defaults(), **options), weights, grads, [("matrix", None)] * len(weights))
    reference_options = {k: v for k, v in options.items() if k != "ns_dtype"}
    reference_options.setdefault("lr", 0.05)
    expected = reference_steps(weights, grads, **reference_options)
    for g, c, e in zip(got, cpp, expected):
        assert torch.equal(g, c), f"{name}: Python and C++ class differ by {(g - c).abs().max():.3g}"
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12), f"{name}: off the float64 reference by " \
                                                              f"{(g - e).abs().max():.3g}"


@pytest.mark.parametrize("name", ["defaults", "sum_momentum", "no_nesterov", "match_rms_adamw"])
def test_fused_cpu_step_matches_the_general_path_and_the_float64_reference(name):
    # fp32 weights: the fused CPU step (the default) applies; fused=False is
    # the general path. Both within fp32 rounding of the float64 reference.
    options = dict(lr=0.05, ns_dtype="fp32", **OPTION_SETS[name])
    weights, grads = weights_and_grads()
    weights32 = [w.float() for w in weights]
    grads32 = [[g.float() for g in step] for step in grads]
    assert Muon.defaults()["fused"] is True
    fused, _ = python_steps(Muon, weights32, grads32, **options)
    general, _ = python_steps(Muon, weights32, grads32, fused=False, **options)
    expected = reference_steps(weights, grads, **{k: v for k, v in options.items() if k != "ns_dtype"})
    for f, g, e in zip(fused, general, expected):
        assert torch.allclose(f.double(), e, atol=2e-5), f"{name}: fused step off the reference by " \
                                                         f"{(f.double() - e).abs().max():.3g}"
        assert torch.allclose(f, g, atol=2e-5), f"{name}: fused and general paths differ by {(f - g).abs().max():.3g}"


@pytest.mark.parametrize("name", sorted(COEFFICIENTS))
def test_ns_schedule_reports_the_presets_the_reference_writes_out(name):
    assert muonlab.ns_schedule(name) == COEFFICIENTS[name]


def test_ns_schedule_names_an_unknown_preset():
    with pytest.raises(ValueError, match="'jordon'"):
        muonlab.ns_schedule("jordon")


def test_gram_ns_method_takes_the_standard_steps():
    # Gram Newton-Schulz on matrices it saves FLOPs on (wide and tall, 5x),
    # and a square one that keeps the standard form: in float64 the steps are
    # the plain-torch reference's.
    gen = torch.Generator().manual_seed(3)
    shapes = [(8, 40), (40, 8), (8, 8)]
    weights = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes] for _ in range(STEPS)]
    assert Muon.defaults()["ns_method"] == "standard"
    assert Muon.defaults()["gram_restart"] == 2
    got, _ = python_steps(Muon, weights, grads, lr=0.05, ns_dtype="fp64", ns_method="gram", gram_restart=2)
    expected = reference_steps(weights, grads, lr=0.05)
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12), f"off the float64 reference by {(g - e).abs().max():.3g}"


def test_muon2_and_muon2f_classes_are_their_defaults():
    weights, grads = weights_and_grads(1)
    for cls, second_moment in ((Muon2, "full"), (Muon2F, "factored")):
        assert cls.defaults()["second_moment"] == second_moment and cls.defaults()["ns_steps"] == 3
        got, opt = python_steps(cls, weights, grads, lr=0.02, ns_dtype="fp64")
        expected = reference_steps(weights, grads, lr=0.02, second_moment=second_moment, ns_steps=3)
        for g, e in zip(got, expected):
            assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)
        state = opt.state[opt.param_groups[0]["params"][0]]
        assert state["step"] == STEPS
        keys = {"full": {"second_moment"}, "factored": {"second_moment_row", "second_moment_col"}}[second_moment]
        assert set(state) == {"step", "momentum_buffer"} | keys


def test_normuon_class_is_its_defaults():
    weights, grads = weights_and_grads(1)
    assert NorMuon.defaults()["neuron_norm"] and NorMuon.defaults()["ns_steps"] == 5
    got, opt = python_steps(NorMuon, weights, grads, lr=0.02, ns_dtype="fp64")
    expected = reference_steps(weights, grads, lr=0.02, neuron_norm=True)
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12)
    state = opt.state[opt.param_groups[0]["params"][0]]
    assert set(state) == {"step", "momentum_buffer", "neuron_second_moment"}
    assert state["neuron_second_moment"].shape == (SHAPES[0][0],)


def test_per_group_options():
    weights, grads = weights_and_grads(2)
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    opt = Muon([{"params": params[:2], "lr": 0.1, "scale_rule": "spectral"},
                {"params": params[2:], "momentum_kind": "sum", "ns_steps": 3}], lr=0.03, ns_dtype="fp64")
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.step()
    first = reference_steps(weights[:2], [g[:2] for g in grads], lr=0.1, scale_rule="spectral")
    second = reference_steps(weights[2:], [g[2:] for g in grads], lr=0.03, momentum_kind="sum", ns_steps=3)
    for p, e in zip(params, first + second):
        assert torch.allclose(p.detach(), e, rtol=1e-10, atol=1e-12)


def test_lr_scheduler_changes_the_step():
    weights, grads = weights_and_grads(3)
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    opt = Muon(params, lr=0.1, ns_dtype="fp64")
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 0.5 ** step)
    refs = [ReferenceMuon(lr=0.1) for _ in weights]
    expected = [w.clone() for w in weights]
    for t, step_grads in enumerate(grads):
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        opt.step()
        for ref in refs:
            ref.lr = 0.1 * 0.5 ** t
        expected = [ref.step(w, g) for ref, w, g in zip(refs, expected, step_grads)]
        sched.step()
    for p, e in zip(params, expected):
        assert torch.allclose(p.detach(), e, rtol=1e-10, atol=1e-12)


def test_muon_with_aux_adamw_steps_both_kinds():
    weights, grads = weights_and_grads(4)
    vector = torch.randn(8, dtype=torch.float64)
    vector_grads = [torch.randn(8, dtype=torch.float64) for _ in range(STEPS)]
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    bias = torch.nn.Parameter(vector.clone())
    opt = MuonWithAuxAdamW([{"params": params, "use_muon": True},
                            {"params": [bias], "use_muon": False, "weight_decay": 0.0}],
                           lr=0.04, adamw_lr=3e-3, ns_dtype="fp64")
    for t in range(STEPS):
        for p, g in zip(params, grads[t]):
            p.grad = g.clone()
        bias.grad = vector_grads[t].clone()
        opt.step()
    for p, e in zip(params, reference_steps(weights, grads, lr=0.04)):
        assert torch.allclose(p.detach(), e, rtol=1e-10, atol=1e-12)
    ref = ReferenceAdamW(lr=3e-3, weight_decay=0.0)
    expected = vector.clone()
    for g in vector_grads:
        expected = ref.step(expected, g)
    cpp = _C._adamw_class_steps(dict(_C.adamw_defaults(), lr=3e-3, weight_decay=0.0), [vector],
                                [[g] for g in vector_grads])[0]
    assert torch.equal(bias.detach(), cpp)
    assert torch.allclose(bias.detach(), expected, rtol=1e-12, atol=1e-14)
    assert opt.state[bias]["step"] == STEPS and set(opt.state[bias]) == {"step", "exp_avg", "exp_avg_sq"}


def test_parameters_without_gradient_are_left_alone():
    weights, grads = weights_and_grads(5)
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    opt = Muon(params, lr=0.05)
    params[0].grad = grads[0][0].clone()
    opt.step()
    assert not torch.equal(params[0].detach(), weights[0])
    for p, w in zip(params[1:], weights[1:]):
        assert torch.equal(p.detach(), w) and p not in opt.state


def test_closure_loss_is_returned():
    p = torch.nn.Parameter(torch.randn(4, 4))
    opt = Muon([p])

    def closure():
        opt.zero_grad()
        loss = (p ** 2).sum()
        loss.backward()
        return loss

    assert torch.is_tensor(opt.step(closure)) and p.grad is not None


@pytest.mark.parametrize("options, message", [
    ({"scale_rule": "rms"}, "option scale_rule='rms': expected 'original', 'match_rms_adamw', 'spectral' or 'none'"),
    ({"momentum_kind": "adam"}, "option momentum_kind='adam': expected 'sum' or 'ema'"),
    ({"ns_coefficients": "newton"}, "option ns_coefficients='newton': expected 'jordan', 'taylor', "
                                    "'polar_express' or a list of (a, b, c) triples"),
    ({"ns_coefficients": [(1.0, 2.0)]}, "option ns_coefficients=[(1.0, 2.0)]"),
    ({"ns_coefficients": [(float("nan"), 1.0, 1.0)]}, "hold the triple (nan, 1, 1): expected finite numbers"),
    ({"ns_dtype": "fp16"}, "option ns_dtype='fp16' (did you mean 'bf16'?): expected 'auto', 'bf16', 'fp32' or 'fp64'"),
    ({"ns_method": "fast"}, "option ns_method='fast': expected 'standard' or 'gram'"),
    ({"gram_restart": 0}, "gram_restart = 0: expected steps between restarts >= 1"),
    ({"grouping": "blocks"}, "option grouping='blocks': expected 'contiguous', 'strided' or 'random'"),
    ({"grouping": "stided"},
     "option grouping='stided' (did you mean 'strided'?): expected 'contiguous', 'strided' or 'random'"),
    ({"scale_rule": "spectal"}, "option scale_rule='spectal' (did you mean 'spectral'?): expected 'original'"),
    ({"ns_coefficients": "polar_expres"}, "option ns_coefficients='polar_expres' (did you mean 'polar_express'?)"),
    ({"grouped": ["q", "x"]}, "option grouped=['q', 'x']: expected a list of 'q', 'k', 'v', 'o', 'mla_up'"),
    ({"nd_params": "stack"}, "option nd_params='stack': expected 'auto', 'flatten', 'batch' or 'refuse'"),
    ({"ns_steps": 2.5}, "option ns_steps=2.5: expected an integer"),
    ({"nesterov": 1}, "option nesterov=1: expected True or False"),
    ({"momentum": 1.5}, "Muon momentum = 1.5: expected a number in [0, 1)"),
    ({"lr": -1.0}, "Muon lr = -1: expected a finite number >= 0"),
    ({"lr": float("inf")}, "Muon lr = inf: expected a finite number >= 0"),
    ({"weight_decay": float("inf")}, "Muon weight_decay = inf: expected a finite number >= 0"),
    ({"second_moment": "diag"}, "option second_moment='diag'"),
    ({"beta2": 1.0}, "beta2 = 1: expected a number in [0, 1)"),
    ({"nesterof": True},
     "unknown Muon option 'nesterof' (did you mean 'nesterov'?): expected one of lr, momentum, nesterov"),
    ({"frobnicate": True}, "unknown Muon option 'frobnicate': expected one of lr, momentum, nesterov"),
])
def test_bad_options_raise_value_error_naming_them(options, message):
    with pytest.raises(ValueError) as error:
        Muon([torch.nn.Parameter(torch.randn(4, 4))], **options)
    assert message in str(error.value)


def test_the_extensions_own_check_names_the_nearest_option():
    message = r"unknown Muon option 'ns_step' \(did you mean 'ns_steps'\?\): expected one of lr"
    with pytest.raises(ValueError, match=message):
        _C.check_muon_options({"ns_step": 3})
    with pytest.raises(ValueError, match=r"unknown AdamW option 'frobnicate': expected one of lr"):
        _C.check_adamw_options({"frobnicate": 3})


def test_bad_group_options_raise_too():
    p, q = torch.nn.Parameter(torch.randn(4, 4)), torch.nn.Parameter(torch.randn(4, 4))
    with pytest.raises(ValueError, match="option scale_rule='x'"):
        Muon([{"params": [p]}, {"params": [q], "scale_rule": "x"}])
    with pytest.raises(ValueError, match="unknown AdamW option 'momentum'"):
        MuonWithAuxAdamW([{"params": [p], "use_muon": False, "momentum": 0.9}])
    with pytest.raises(ValueError, match="takes Muon groups only"):
        Muon([{"params": [p], "use_muon": False}])
    with pytest.raises(ValueError, match="Muon takes matrices"):
        Muon([torch.nn.Parameter(torch.randn(4))])


def test_parameters_that_cannot_be_stepped_are_refused_by_name():
    # A complex parameter would be cast to real and lose its imaginary part.
    w = torch.nn.Parameter(torch.randn(4, 4, dtype=torch.complex64))
    with pytest.raises(ValueError, match=r"'param_groups\[0\]\['params'\]\[0\]' is complex64: Muon steps real tensors"):
        Muon([w])
    with pytest.raises(ValueError, match="is complex64: AdamW steps real tensors; view a complex one as pairs of reals"):
        MuonWithAuxAdamW([{"params": [torch.nn.Parameter(torch.randn(4, 4)), ], "use_muon": True},
                          {"params": [torch.nn.Parameter(torch.randn(4, dtype=torch.complex64))], "use_muon": False}])
    with pytest.raises(ValueError, match="is int64: Muon steps floating-point tensors"):
        Muon([torch.ones(4, 4, dtype=torch.int64)])
    # As pairs of reals, the complex parameter steps.
    real_view = torch.nn.Parameter(torch.view_as_real(torch.randn(4, dtype=torch.complex64)))
    MuonWithAuxAdamW([{"params": [real_view], "use_muon": False}])


def test_group_sizes_that_cannot_cut_the_heads_are_refused_before_any_step():
    # A failure inside step() would come after the parameters stepped before
    # this one had changed.
    plain = torch.nn.Parameter(torch.randn(16, 16))
    qkv = torch.nn.Parameter(torch.randn(48, 16))
    with pytest.raises(ValueError, match="head group size 3 does not divide segment 0 of the head layout, which has 4"):
        Muon([{"params": [plain]}, {"params": [qkv], "heads": HeadLayout("qkv", 12, 4), "group_size": 3}])
    Muon([{"params": [plain]}, {"params": [qkv], "heads": HeadLayout("qkv", 12, 4), "group_size": 2}])


def test_functions():
    G = torch.randn(6, 10, dtype=torch.float64)
    assert torch.allclose(muonlab.newton_schulz(G, 5, "jordan", "fp64"), newton_schulz(G, 5), atol=1e-12)
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)
    assert torch.allclose(muonlab.polar_factor(G), U @ Vh, atol=1e-12)
    curve = muonlab.alignment(G, 5, "taylor", "fp64")
    assert curve.shape == (6,)
    polar = U @ Vh
    for k in range(6):
        X = newton_schulz(G, k, "taylor")
        cosine = (X * polar).sum() / (X.norm() * polar.norm())
        assert abs(curve[k].item() - cosine.item()) < 1e-10
    assert curve[-1] > curve[0]
    with pytest.raises(ValueError, match="ns_dtype='half'"):
        muonlab.newton_schulz(G, 5, "jordan", "half")
