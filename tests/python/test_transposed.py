"""Weights stored [in, out] (Hugging Face GPT-2's Conv1D): param_groups
marks them ``transposed`` and reads their heads as out x in, and Muon then
steps each one by exactly the transpose of the step its nn.Linear twin
takes, with real losses and gradients, for every variant that tells outputs
from inputs (the 'original' shape scale, NorMuon, Group Muon and its block
scale) and those that do not. The nanoGPT twin is the reference: the
layout every other test checks."""
import copy

import pytest
import torch

from muonlab.optim import HeadLayout, MuonWithAuxAdamW, param_groups
from tiny_models import GPT, hugging_face_gpt2, one_step_from, token_batches, train_steps

BLOCK_WEIGHTS = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


def twins():
    torch.manual_seed(0)
    gpt = GPT().double()
    return gpt, hugging_face_gpt2(gpt)


def test_the_twins_compute_the_same_function():
    gpt, hf = twins()
    idx = token_batches(1)[0]
    assert torch.allclose(gpt(idx), hf(idx), atol=1e-12)
    assert hf.transformer.h[0].mlp.c_fc.weight.shape == (32, 128)  # [in, out]


def test_param_groups_marks_conv1d_weights_transposed_and_reads_their_heads():
    gpt, hf = twins()
    _, linear_routing = param_groups(gpt, return_routing=True)
    groups, routing = param_groups(hf, return_routing=True)
    for linear, conv in zip(linear_routing, routing):
        assert conv["name"] == linear["name"]
        in_block = conv["name"].endswith(BLOCK_WEIGHTS)
        assert conv["transposed"] == in_block
        assert linear["transposed"] is False
        assert conv["heads"] == linear["heads"]  # the same heads, read out x in
        if in_block:
            assert "stored [in, out]" in conv["reason"]
    by_name = {r["name"]: r for r in routing}
    assert by_name["transformer.h.0.attn.c_attn.weight"]["heads"] == HeadLayout("qkv", 12, 8, (4, 4, 4))
    assert by_name["transformer.h.0.attn.c_proj.weight"]["heads"] == HeadLayout("o", 4, 8)
    assert by_name["transformer.h.0.mlp.c_proj.weight"]["heads"] is None
    matrices = groups[0]
    assert matrices["transposed"] == [name.endswith(BLOCK_WEIGHTS) for name in matrices["param_names"]]
    assert "transposed" not in param_groups(gpt)[0]  # groups without such weights are as before


VARIANTS = {
    "muon, original scale": {},
    "muon, spectral scale": {"scale_rule": "spectral"},
    "muon2": {"second_moment": "full", "ns_steps": 3},
    "muon2f": {"second_moment": "factored", "ns_steps": 3},
    "normuon": {"neuron_norm": True},
    "group muon g=2, block scale": {"group_size": 2, "block_scale": True},
    "group muon g=1, random": {"group_size": 1, "grouping": "random"},
}


def trained(model, options, steps=3):
    opt = MuonWithAuxAdamW(param_groups(model, lr=0.05, adamw_lr=1e-3, ns_dtype="fp64", **options))
    train_steps(model, opt, token_batches(steps))
    return dict(model.named_parameters()), opt


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_step_is_the_transpose_of_the_linear_twins(variant):
    gpt, hf = twins()
    reference, _ = trained(gpt, VARIANTS[variant])
    stepped, _ = trained(hf, VARIANTS[variant])
    for name, value in stepped.items():
        expected = reference[name].t() if name.endswith(BLOCK_WEIGHTS) else reference[name]
        assert torch.allclose(value, expected, atol=1e-10), f"{variant}: {name}"


def test_without_the_flag_the_steps_differ():
    """What the flag is for: left unmarked, the MLP weights take the other
    matrix's 'original' scale (and so the test above can fail)."""
    gpt, hf = twins()
    reference, _ = trained(gpt, {})
    groups = param_groups(hf, lr=0.05, adamw_lr=1e-3, ns_dtype="fp64")
    del groups[0]["transposed"]
    groups[0]["heads"] = None  # the layouts read the stored axes the other way round too
    train_steps(hf, MuonWithAuxAdamW(groups), token_batches(3))
    c_fc = "transformer.h.0.mlp.c_fc.weight"
    assert not torch.allclose(dict(hf.named_parameters())[c_fc], reference[c_fc].t(), atol=1e-6)


def test_state_dict_keeps_the_flags_and_resumes_alike():
    _, hf = twins()
    _, opt = trained(hf, {"neuron_norm": True}, steps=2)
    saved = copy.deepcopy(opt.state_dict())  # as torch.save would: torch 2.x's load shares the tensors
    assert saved["param_groups"][0]["transposed"] == opt.param_groups[0]["transposed"]
    c_fc = opt.param_groups[0]["param_names"].index("transformer.h.0.mlp.c_fc.weight")
    neuron_state = opt.state[opt.param_groups[0]["params"][c_fc]]["neuron_second_moment"]
    assert neuron_state.shape == (128,)  # one per output neuron: the columns of [32, 128]
    resumed = MuonWithAuxAdamW(param_groups(hf, lr=0.05, adamw_lr=1e-3, ns_dtype="fp64", neuron_norm=True))
    resumed.load_state_dict(saved)
    idx = token_batches(3)[2]
    before = {n: p.detach().clone() for n, p in hf.named_parameters()}
    continued, from_saved = one_step_from(hf, opt, before, idx), one_step_from(hf, resumed, before, idx)
    for n in continued:
        assert torch.equal(from_saved[n], continued[n]), n


@pytest.mark.parametrize("flags", ["yes", [True], [True, 1]])
def test_bad_transposed_values_are_refused(flags):
    weights = [torch.nn.Parameter(torch.randn(4, 6)), torch.nn.Parameter(torch.randn(6, 4))]
    with pytest.raises(ValueError, match="transposed"):
        MuonWithAuxAdamW([{"params": weights, "transposed": flags}])


def test_a_flattened_kernel_cannot_be_transposed():
    kernel = torch.nn.Parameter(torch.randn(4, 2, 3))
    with pytest.raises(ValueError, match="stored transposed"):
        MuonWithAuxAdamW([{"params": [kernel], "transposed": True, "nd_params": "flatten"}])


def test_hugging_face_gpt2_steps_as_its_nanogpt_twin():
    """The real thing where transformers is installed (GPU machines):
    GPT2LMHeadModel's weights and gradients, copied into the nanoGPT twin
    (transposing its Conv1D weights), take the same steps, heads and NorMuon
    included."""
    transformers = pytest.importorskip("transformers")
    config = transformers.GPT2Config(vocab_size=64, n_positions=16, n_embd=32, n_layer=2, n_head=4)
    torch.manual_seed(0)
    hf = transformers.GPT2LMHeadModel(config).double()
    gpt = GPT().double()
    hf_params = dict(hf.named_parameters())
    assert sorted(hf_params) == sorted(dict(gpt.named_parameters()))
    idx = token_batches(1)[0]
    logits = hf(idx[:, :-1]).logits
    torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1)).backward()
    with torch.no_grad():
        for name, p in gpt.named_parameters():
            block = name.endswith(BLOCK_WEIGHTS)
            p.copy_(hf_params[name].t() if block else hf_params[name])
            p.grad = (hf_params[name].grad.t() if block else hf_params[name].grad).clone()
    options = dict(lr=0.05, adamw_lr=1e-3, ns_dtype="fp64", group_size=2, neuron_norm=True)
    _, routing = param_groups(hf, return_routing=True, **options)
    c_attn = next(r for r in routing if r["name"] == "transformer.h.0.attn.c_attn.weight")
    assert c_attn["transposed"] and c_attn["heads"] == HeadLayout("qkv", 12, 8, (4, 4, 4))
    for model in (hf, gpt):
        opt = MuonWithAuxAdamW(param_groups(model, **options))
        for _ in range(2):  # the same gradients twice: the second step reads the state
            opt.step()
    for name, p in gpt.named_parameters():
        expected = p.t() if name.endswith(BLOCK_WEIGHTS) else p
        assert torch.allclose(hf_params[name], expected, atol=1e-10), name


class StackedExperts(torch.nn.Module):
    """Experts stored [E, in, out] and applied as x @ W (as some Hugging
    Face MoE models store them), and their [E, out, in] twin."""

    def __init__(self, weight, stored_in_out):
        super().__init__()
        self.stored_in_out = stored_in_out
        self.w = torch.nn.Parameter(weight.transpose(-2, -1).clone() if stored_in_out else weight.clone())

    def forward(self, x):  # x [E, T, in]
        return x @ self.w if self.stored_in_out else x @ self.w.transpose(-2, -1)


def test_param_groups_transposed_patterns_mark_stacks_too():
    torch.manual_seed(2)
    weight = torch.randn(3, 16, 8, dtype=torch.float64)  # [E, out, in]
    x = torch.randn(3, 5, 8, dtype=torch.float64)
    results = []
    for stored_in_out in (False, True):
        model = torch.nn.Module()
        model.experts = StackedExperts(weight, stored_in_out)
        options = dict(lr=0.05, ns_dtype="fp64", neuron_norm=True)
        groups, routing = param_groups(model, return_routing=True, transposed=["experts.w"] * stored_in_out,
                                       **options)
        assert routing[0]["transposed"] == stored_in_out and groups[0]["nd_params"] == "batch"
        opt = MuonWithAuxAdamW(groups)
        for _ in range(2):
            opt.zero_grad()
            model.experts(x).square().sum().backward()
            opt.step()
        w = model.experts.w.detach()
        results.append(w.transpose(-2, -1) if stored_in_out else w)
    assert torch.allclose(results[1], results[0], atol=1e-10)


def test_param_groups_transposed_patterns_are_checked():
    gpt, _ = twins()
    with pytest.raises(ValueError, match="transposed: 'nothing.*' matches no Muon matrix"):
        param_groups(gpt, transposed="nothing.*")
    model = torch.nn.Module()
    model.conv = torch.nn.Conv2d(2, 4, 3)
    with pytest.raises(ValueError, match="cannot be stored transposed"):
        param_groups(model, transposed="conv.weight")
