"""A fused QKV weight whose parts are interleaved (GPT-NeoX's, BLOOM's and
Falcon's query_key_value): param_groups reads its head layout with the
interleave, and every Group Muon variant steps it exactly as it steps the
nanoGPT twin whose c_attn holds the same rows in the usual order [q; k; v].
The twin is the reference: the layout every other test checks."""
import copy

import pytest
import torch

from muonlab.optim import HeadLayout, MuonWithAuxAdamW, param_groups
from tiny_models import GPT, gpt_neox_style, one_step_from, per_head_qkv_order, token_batches, train_steps

N_HEAD, HEAD_DIM = 4, 8
ORDER = per_head_qkv_order(N_HEAD, HEAD_DIM)
RENAMED = {"attn.query_key_value": "attn.c_attn", "attn.dense": "attn.c_proj"}


def twins():
    torch.manual_seed(0)
    gpt = GPT().double()
    return gpt, gpt_neox_style(gpt)


def nanogpt_name(name):
    for neox, nano in RENAMED.items():
        name = name.replace(neox, nano)
    return name


def test_the_twins_compute_the_same_function():
    gpt, neox = twins()
    idx = token_batches(1)[0]
    assert torch.allclose(gpt(idx), neox(idx), atol=1e-12)


def test_param_groups_reads_query_key_value_interleaved_and_dense_as_the_output():
    _, neox = twins()
    _, routing = param_groups(neox, return_routing=True)
    by_name = {r["name"]: r for r in routing}
    qkv = by_name["transformer.h.0.attn.query_key_value.weight"]
    assert qkv["heads"] == HeadLayout("qkv", 12, HEAD_DIM, (4, 4, 4), interleave=4)
    assert "interleaved in 4 units" in qkv["reason"]
    assert by_name["transformer.h.0.attn.dense.weight"]["heads"] == HeadLayout("o", 4, HEAD_DIM)
    # Head h's rows are where the twin's c_attn rows of the same head went.
    standard = HeadLayout("qkv", 12, HEAD_DIM, (4, 4, 4))
    for (begin, end), (twin_begin, twin_end) in zip(qkv["heads"].head_ranges(), standard.head_ranges()):
        assert ORDER[begin:end].tolist() == list(range(twin_begin, twin_end))


VARIANTS = {
    "group muon g=2": {"group_size": 2},
    "group muon g=1, strided": {"group_size": 1, "grouping": "strided"},
    "group muon g=2, random": {"group_size": 2, "grouping": "random"},
    "group muon g=2, q only, block scale": {"group_size": 2, "grouped": ["q", "o"], "block_scale": True},
    "group muon g=2, muon2f": {"group_size": 2, "second_moment": "factored", "ns_steps": 3},
    "muon (whole matrix)": {},
}


def trained(model, options, steps=3, groups=None):
    opt = MuonWithAuxAdamW(groups or param_groups(model, lr=0.05, adamw_lr=1e-3, ns_dtype="fp64", **options))
    train_steps(model, opt, token_batches(steps))
    return dict(model.named_parameters()), opt


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_each_step_is_the_twins_step_with_the_rows_reordered(variant):
    gpt, neox = twins()
    reference, _ = trained(gpt, VARIANTS[variant])
    stepped, _ = trained(neox, VARIANTS[variant])
    for name, value in stepped.items():
        expected = reference[nanogpt_name(name)]
        if name.endswith("query_key_value.weight") or name.endswith("query_key_value.bias"):
            expected = expected[ORDER]
        assert torch.allclose(value, expected, atol=1e-10), f"{variant}: {name}"


def test_without_the_interleave_the_steps_differ():
    """What the interleave is for: read as [q; k; v], Group Muon's blocks mix
    rows of different heads and parts (and so the test above can fail)."""
    gpt, neox = twins()
    reference, _ = trained(gpt, {"group_size": 2})
    groups = param_groups(neox, lr=0.05, adamw_lr=1e-3, ns_dtype="fp64", group_size=2,
                          heads={"*.query_key_value.weight": HeadLayout("qkv", 12, HEAD_DIM)})
    stepped, _ = trained(neox, {}, groups=groups)
    name = "transformer.h.0.attn.query_key_value.weight"
    assert not torch.allclose(stepped[name], reference[nanogpt_name(name)][ORDER], atol=1e-6)


def test_state_dict_keeps_the_interleave_and_resumes_alike():
    _, neox = twins()
    options = dict(group_size=2, grouping="random")
    _, opt = trained(neox, options, steps=2)
    saved = copy.deepcopy(opt.state_dict())
    qkv = opt.param_groups[0]["param_names"].index("transformer.h.0.attn.query_key_value.weight")
    assert saved["param_groups"][0]["heads"][qkv] == ("qkv", 12, HEAD_DIM, (4, 4, 4), 4)
    resumed = MuonWithAuxAdamW(param_groups(neox, lr=0.05, adamw_lr=1e-3, ns_dtype="fp64", **options))
    resumed.load_state_dict(saved)
    idx = token_batches(3)[2]
    before = {n: p.detach().clone() for n, p in neox.named_parameters()}
    continued, from_saved = one_step_from(neox, opt, before, idx), one_step_from(neox, resumed, before, idx)
    for n in continued:
        assert torch.equal(from_saved[n], continued[n]), n


class UnknownAttention(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.num_heads = N_HEAD
        self.query_key_value = torch.nn.Linear(32, 96)
        self.dense = torch.nn.Linear(32, 32)


def test_query_key_value_of_an_unknown_module_is_left_whole():
    model = torch.nn.Module()
    model.attention = UnknownAttention()
    _, routing = param_groups(model, return_routing=True, group_size=2)
    qkv = next(r for r in routing if r["name"] == "attention.query_key_value.weight")
    assert qkv["heads"] is None and "UnknownAttention, whose order of q, k and v rows is not known" in qkv["reason"]


@pytest.mark.parametrize("layout, message", [
    (("qkv", 8, 4, (4, 2, 2), 4), "4 must divide segments=(4, 2, 2)"),
    (("q", 4, 4, None, 2), "only a fused 'qkv' weight interleaves"),
    (("qkv", 12, 4, None, 0), "interleave=0: expected an integer > 0"),
])
def test_bad_interleaves_are_refused(layout, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        HeadLayout.from_value(layout)


def test_the_extension_refuses_a_layout_that_does_not_divide():
    from muonlab import _C
    with pytest.raises(ValueError, match="interleave 4 does not divide its segment of 2 heads"):
        _C.head_ranges((8, 4, "rows", [4, 2, 2], 4))
