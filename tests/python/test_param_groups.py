"""param_groups(model): the routing and head layouts it infers for tiny
nanoGPT and LLaMA (GQA) models, that those layouts are the heads the forward
pass uses (a head symmetry of the model moves Group Muon's blocks with it),
and Group Muon through its groups against a float64 block-by-block
reference written here with plain torch."""
import copy
import math

import pytest
import torch
from torch import nn

from muonlab.optim import HeadLayout, MuonWithAuxAdamW, param_groups
from tiny_models import GPT, LlamaForCausalLM, language_model_loss

LAYERS = (0, 1)
H, H_KV, D = 4, 2, 8  # both tiny models: 4 query heads of 8 (d_model 32); LLaMA: 2 key/value heads


def gpt(**config):
    torch.manual_seed(0)
    return GPT(**config).double()


def llama():
    torch.manual_seed(0)
    return LlamaForCausalLM().double()


def tokens(vocab=64, batch=2, length=9):
    return torch.randint(0, vocab, (batch, length), generator=torch.Generator().manual_seed(1))


def gpt_expected():
    """(Muon parameter names, head layouts) of the tiny GPT."""
    muon = {f"transformer.h.{l}.{m}.weight" for l in LAYERS for m in ("attn.c_attn", "attn.c_proj", "mlp.c_fc",
                                                                         "mlp.c_proj")}
    layouts = {}
    for l in LAYERS:
        layouts[f"transformer.h.{l}.attn.c_attn.weight"] = HeadLayout("qkv", 3 * H, D, segments=(H, H, H))
        layouts[f"transformer.h.{l}.attn.c_proj.weight"] = HeadLayout("o", H, D)
    return muon, layouts


def llama_expected():
    """(Muon parameter names, head layouts) of the tiny LLaMA."""
    prefix = "model.layers.{}."
    muon = {(prefix + m + ".weight").format(l) for l in LAYERS
            for m in ("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                      "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")}
    layouts = {}
    for l in LAYERS:
        attn = prefix.format(l) + "self_attn."
        layouts[attn + "q_proj.weight"] = HeadLayout("q", H, D)
        layouts[attn + "k_proj.weight"] = HeadLayout("k", H_KV, D)
        layouts[attn + "v_proj.weight"] = HeadLayout("v", H_KV, D)
        layouts[attn + "o_proj.weight"] = HeadLayout("o", H, D)
    return muon, layouts


MODELS = {"gpt": (gpt, gpt_expected), "llama": (llama, llama_expected)}


# -- routing ----------------------------------------------------------------


@pytest.mark.parametrize("which", MODELS)
def test_routing_and_layouts(which):
    make, expected = MODELS[which]
    model = make()
    muon, layouts = expected()
    groups, routing = param_groups(model, return_routing=True)
    assert [r["name"] for r in routing] == [name for name, _ in model.named_parameters()]
    for r in routing:
        assert r["optimizer"] == ("muon" if r["name"] in muon else "adamw"), r
        assert r["heads"] == layouts.get(r["name"]), r
        assert r["shape"] == tuple(dict(model.named_parameters())[r["name"]].shape)
    muon_group, adamw_group = groups
    assert muon_group["use_muon"] and not adamw_group["use_muon"]
    assert set(muon_group["param_names"]) == muon
    assert muon_group["heads"] == [layouts.get(name) for name in muon_group["param_names"]]
    assert all(p is dict(model.named_parameters())[n] for p, n in zip(muon_group["params"], muon_group["param_names"]))
    assert len(adamw_group["params"]) + len(muon_group["params"]) == len(list(model.parameters()))


def test_gpt_reasons_tied_head_and_mlp_c_proj():
    model = gpt()
    _, routing = param_groups(model, return_routing=True)
    reasons = {r["name"]: r["reason"] for r in routing}
    assert reasons["transformer.wte.weight"] == "embedding (tied: lm_head.weight)"
    assert "lm_head.weight" not in reasons  # tied: listed once
    assert reasons["transformer.h.0.ln_1.weight"] == "norm gain"
    assert reasons["transformer.h.0.attn.c_attn.bias"] == "bias"
    assert reasons["transformer.h.0.mlp.c_proj.weight"] == "hidden matrix"
    assert reasons["transformer.h.0.attn.c_proj.weight"].startswith("attention o projection: 4 heads x 8")


def test_options_go_to_their_groups(capsys):
    muon_group, adamw_group = param_groups(llama(), lr=0.02, weight_decay=0.05, adamw_lr=3e-4,
                                           adamw_weight_decay=0.0, group_size=2, grouping="strided", verbose=True)
    assert (muon_group["lr"], muon_group["weight_decay"], muon_group["group_size"], muon_group["grouping"]) == \
        (0.02, 0.05, 2, "strided")
    assert (adamw_group["lr"], adamw_group["weight_decay"]) == (3e-4, 0.0)
    assert "group_size" not in adamw_group
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(list(llama().parameters()))
    k_proj = next(line for line in lines if line.startswith("model.layers.0.self_attn.k_proj.weight"))
    assert k_proj.split()[1:3] == ["16x32", "muon"] and "2 heads x 8 along the rows" in k_proj
    assert any(line.startswith("lm_head.weight") and "adamw" in line and "output head" in line for line in lines)


def test_overrides_and_head_counts():
    model = gpt()
    name = "transformer.h.1.attn.c_attn.weight"
    groups, routing = param_groups(model, return_routing=True, heads={name: None, "*.attn.c_proj.weight":
                                                                     HeadLayout("o", 2, 16)})
    heads = {r["name"]: r["heads"] for r in routing}
    assert heads[name] is None
    assert heads["transformer.h.0.attn.c_attn.weight"] == HeadLayout("qkv", 12, 8, (4, 4, 4))
    assert heads["transformer.h.0.attn.c_proj.weight"] == HeadLayout("o", 2, 16)
    # n_head= comes before the module's attributes.
    _, routing = param_groups(model, n_head=2, return_routing=True)
    assert {r["name"]: r["heads"] for r in routing}[name] == HeadLayout("qkv", 6, 16, (2, 2, 2))
    # A dict config (Hugging Face's to_dict()) is read too.
    plain = nn.Module()
    plain.attn = nn.Module()
    plain.attn.q_proj = nn.Linear(8, 8, bias=False)
    plain.config = {"num_attention_heads": 2}
    _, routing = param_groups(plain, return_routing=True)
    assert routing[0]["heads"] == HeadLayout("q", 2, 4)


class Conv1D(nn.Module):
    """transformers' Conv1D: y = x @ weight + bias, weight [in, out]."""

    def __init__(self, nx, nf):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.02)
        self.bias = nn.Parameter(torch.zeros(nf))


class Experts(nn.Module):
    def __init__(self):
        super().__init__()
        self.w1 = nn.Parameter(torch.randn(4, 16, 8) * 0.1)


class Zoo(nn.Module):
    """One of each kind that param_groups routes by more than its shape."""

    def __init__(self):
        super().__init__()
        self.attn = nn.Module()  # Hugging Face GPT-2's attention: Conv1D weights
        self.attn.c_attn = Conv1D(8, 24)
        self.attn.c_proj = Conv1D(8, 8)
        self.moe = nn.Module()
        self.moe.gate = nn.Linear(8, 4, bias=False)
        self.moe.experts = Experts()
        self.moe.shared_router = nn.Linear(8, 4, bias=False)
        self.mlp = nn.Module()
        self.mlp.gate_proj = nn.Linear(8, 16, bias=False)
        self.conv1d = nn.Conv1d(4, 8, 3)
        self.conv2d = nn.Conv2d(4, 8, 3)
        self.encoder = nn.TransformerEncoderLayer(d_model=8, nhead=2, dim_feedforward=16)
        self.frozen = nn.Linear(8, 8)
        self.frozen.requires_grad_(False)
        self.temperature = nn.Parameter(torch.ones(()))


def test_routing_of_other_kinds():
    model = Zoo()
    with pytest.warns(UserWarning, match="no head count found"):
        groups, routing = param_groups(model, return_routing=True, group_size=1, exclude=["mlp.*"])
    by_name = {r["name"]: r for r in routing}
    adamw = {"moe.gate.weight": "MoE router", "moe.shared_router.weight": "MoE router",
             "mlp.gate_proj.weight": "exclude='mlp.*'", "temperature": "vector or scalar",
             "encoder.norm1.weight": "norm gain", "conv1d.bias": "bias", "attn.c_attn.bias": "bias"}
    for name, reason in adamw.items():
        assert (by_name[name]["optimizer"], by_name[name]["reason"]) == ("adamw", reason)
    for name in ("frozen.weight", "frozen.bias"):
        assert by_name[name]["optimizer"] is None and "does not require grad" in by_name[name]["reason"]
    for name in ("attn.c_attn.weight", "attn.c_proj.weight"):  # Conv1D [in, out], no head count: left whole
        assert by_name[name]["optimizer"] == "muon" and by_name[name]["heads"] is None
        assert by_name[name]["transposed"] and "Conv1D" in by_name[name]["reason"]
    assert by_name["encoder.self_attn.in_proj_weight"]["heads"] == HeadLayout("qkv", 6, 4, (2, 2, 2))
    assert by_name["encoder.self_attn.out_proj.weight"]["heads"] == HeadLayout("o", 2, 4)
    matrices, experts, kernels, rest = groups
    assert "conv2d.weight" in matrices["param_names"] and "encoder.linear1.weight" in matrices["param_names"]
    assert (experts["param_names"], experts["nd_params"]) == (["moe.experts.w1"], "batch")
    assert (kernels["param_names"], kernels["nd_params"]) == (["conv1d.weight"], "flatten")
    assert not rest["use_muon"] and "frozen.weight" not in rest["param_names"]
    # The optimizer takes every group, and steps them.
    opt = MuonWithAuxAdamW(groups, lr=0.02)
    for p in model.parameters():
        if p.requires_grad:
            p.grad = torch.randn_like(p)
    before = model.moe.experts.w1.detach().clone()
    opt.step()
    assert not torch.equal(before, model.moe.experts.w1)


def test_unknown_head_count_leaves_the_weight_whole():
    model = nn.Module()
    model.self_attn = nn.Module()
    model.self_attn.q_proj = nn.Linear(8, 8, bias=False)
    _, routing = param_groups(model, return_routing=True)
    assert routing[0]["heads"] is None and "head count unknown" in routing[0]["reason"]
    with pytest.warns(UserWarning, match="self_attn.q_proj.weight"):
        param_groups(model, group_size=2)


def _routes(model):
    _, routing = param_groups(model, return_routing=True)
    return {r["name"]: (r["optimizer"], r["reason"]) for r in routing}


def test_an_untied_output_layer_of_any_name_goes_to_adamw():
    # nn.Sequential numbers its layers and PyTorch's word_language_model
    # calls its head decoder: the last matrix, as wide as the vocabulary.
    vocab, width = 100, 32
    lm = nn.Sequential(nn.Embedding(vocab, width), nn.Linear(width, vocab), nn.GELU(), nn.Linear(vocab, width),
                       nn.GELU(), nn.Linear(width, vocab))
    routes = _routes(lm)
    assert routes["5.weight"] == ("adamw", "output head (last matrix, 100 outputs: the token embedding's vocabulary)")
    # A hidden matrix as wide as the vocabulary is not the last one: Muon.
    assert routes["1.weight"] == ("muon", "hidden matrix")
    assert routes["3.weight"] == ("muon", "hidden matrix")
    # A position embedding does not stand for the vocabulary, even with more
    # rows than it (a character model's); nor does GPT-2 medium's 1024-row
    # wpe beside its 1024-wide body.
    body = nn.Module()
    body.wte, body.wpe = nn.Embedding(vocab, width), nn.Embedding(2 * vocab, width)
    body.out = nn.Linear(width, 2 * vocab)
    assert _routes(body)["out.weight"] == ("muon", "hidden matrix")
    body.out = nn.Linear(width, vocab)
    assert _routes(body)["out.weight"][0] == "adamw"
    medium = nn.Module()  # GPT2Model-like: no head, a body as wide as wpe has rows
    medium.wte, medium.wpe = nn.Embedding(vocab, width), nn.Embedding(width, width)
    medium.c_proj = nn.Linear(4 * width, width)
    assert _routes(medium)["c_proj.weight"] == ("muon", "hidden matrix")
    # Without an embedding nothing is read as a vocabulary.
    assert _routes(nn.Sequential(nn.Linear(8, 16), nn.Linear(16, 8)))["1.weight"] == ("muon", "hidden matrix")


def test_a_classifier_head_goes_to_adamw():
    class Classifier(nn.Module):
        def __init__(self, head_name):
            super().__init__()
            self.body = nn.Sequential(nn.Linear(16, 32), nn.GELU(), nn.Linear(32, 32))
            setattr(self, head_name, nn.Linear(32, 10))

    assert _routes(Classifier("head"))["head.weight"] == ("adamw", "output head")  # by its whole name, as before
    for head_name in ("classifier", "score", "fc"):
        routes = _routes(Classifier(head_name))
        assert routes[f"{head_name}.weight"] == ("adamw", f"classifier head (last matrix, module '{head_name}')")
        assert routes["body.2.weight"] == ("muon", "hidden matrix")
    # Only the last matrix: a hidden layer named fc inside the body stays on Muon.
    model = Classifier("classifier")
    model.body.fc = nn.Linear(32, 32)
    assert _routes(model)["body.fc.weight"] == ("muon", "hidden matrix")
    assert _routes(Classifier("proj"))["proj.weight"] == ("muon", "hidden matrix")


# -- errors -----------------------------------------------------------------


def test_head_counts_that_do_not_fit_raise():
    with pytest.raises(ValueError, match=r"parameter 'transformer\.h\.0\.attn\.c_attn\.weight' of shape \[96, 32\]: "
                                         r"its 96 rows do not hold 5 \+ 5 \+ 5 heads"):
        param_groups(gpt(), n_head=5)
    with pytest.raises(ValueError, match=r"'model\.layers\.0\.self_attn\.k_proj\.weight' of shape \[16, 32\]: its 16 "
                                         r"rows do not hold 3 heads of head_dim 8"):
        param_groups(llama(), n_kv_head=3)
    name = "transformer.h.0.attn.c_proj.weight"
    with pytest.raises(ValueError, match=rf"parameter '{name}' of shape \[32, 32\]: .* covers 4 x 6 = 24 cols"):
        param_groups(gpt(), heads={name: HeadLayout("o", 4, 6)})


def test_a_three_dimensional_tensor_needs_a_reading():
    model = nn.Module()
    model.mixer = nn.Module()
    model.mixer.kernel = nn.Parameter(torch.randn(4, 6, 6))
    with pytest.raises(ValueError, match=r"parameter 'mixer\.kernel' has shape \[4, 6, 6\]: .*exclude=.*skip="):
        param_groups(model)
    _, routing = param_groups(model, exclude="mixer.kernel", return_routing=True)
    assert routing[0]["optimizer"] == "adamw"
    assert param_groups(model, skip=["mixer.*"]) == []


def test_patterns_and_options_that_match_nothing_raise():
    with pytest.raises(ValueError, match="exclude: 'lm_hed.weight' matches no parameter"):
        param_groups(llama(), exclude=["lm_hed.weight"])
    with pytest.raises(ValueError, match=r"heads: 'model\.norm\.weight' matches no Muon matrix"):
        param_groups(llama(), heads={"model.norm.weight": HeadLayout("q", 4, 8)})
    with pytest.raises(ValueError, match="unknown Muon option 'group'"):
        param_groups(llama(), group=2)


# -- the layouts are the forward pass's heads -----------------------------------
#
# A head symmetry of the attention leaves the model's function unchanged:
# heads permuted consistently in Q, K, V and O, and inside each head an
# orthogonal map R on the query and key rows (one that commutes with RoPE in
# LLaMA) and S on the value rows, with S^T on O's columns. Gradients then
# transform the same way, and Group Muon with one head per block (g = 1) is
# equivariant: each block moves with its head, and NS(R B) = R NS(B). A layout
# whose blocks are not single heads (too large: permutations mix them; too
# small: rotations mix them) breaks it. (Whole-matrix Muon is equivariant too;
# the routing test checks that the layouts are there.)


def random_orthogonal(n, gen):
    q, r = torch.linalg.qr(torch.randn(n, n, generator=gen, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r))


def rope_rotation(n, gen):
    """A rotation by its own angle in each plane (d, d + n/2): RoPE's planes,
    so it commutes with RoPE."""
    angles = torch.rand(n // 2, generator=gen, dtype=torch.float64) * 2 * math.pi
    c, s = torch.diag(angles.cos()), torch.diag(angles.sin())
    return torch.cat([torch.cat([c, -s], 1), torch.cat([s, c], 1)])


def move_rows(W, perm, maps):
    """Head i of the result's rows: maps[i] @ head perm[i] of W's."""
    blocks = W.reshape(len(perm), -1, W.shape[1])
    return torch.cat([maps[i] @ blocks[perm[i]] for i in range(len(perm))])


def move_cols(W, perm, maps):
    """Column head i of the result: W's column head perm[i] @ maps[i]^T."""
    blocks = W.reshape(W.shape[0], len(perm), -1)
    return torch.cat([blocks[:, perm[i]] @ maps[i].T for i in range(len(perm))], dim=1)


def gpt_symmetry(perm, gen):
    qk = [random_orthogonal(D, gen) for _ in range(H)]
    vo = [random_orthogonal(D, gen) for _ in range(H)]

    def transform(params):
        out = dict(params)
        for l in LAYERS:
            name = f"transformer.h.{l}.attn."
            q, k, v = params[name + "c_attn.weight"].split(H * D)
            out[name + "c_attn.weight"] = torch.cat([move_rows(q, perm, qk), move_rows(k, perm, qk),
                                                     move_rows(v, perm, vo)])
            out[name + "c_proj.weight"] = move_cols(params[name + "c_proj.weight"], perm, vo)
        return out

    return transform


def llama_symmetry(kv_perm, query_perms, gen):
    """Key/value heads permuted by kv_perm with their query groups, query
    heads inside group j by query_perms[j]."""
    group = H // H_KV
    q_perm = [kv_perm[j] * group + query_perms[j][t] for j in range(H_KV) for t in range(group)]
    qk = [rope_rotation(D, gen) for _ in range(H_KV)]
    vo = [random_orthogonal(D, gen) for _ in range(H_KV)]

    def transform(params):
        out = dict(params)
        for l in LAYERS:
            name = f"model.layers.{l}.self_attn."
            out[name + "q_proj.weight"] = move_rows(params[name + "q_proj.weight"], q_perm,
                                                    [qk[i // group] for i in range(H)])
            out[name + "k_proj.weight"] = move_rows(params[name + "k_proj.weight"], kv_perm, qk)
            out[name + "v_proj.weight"] = move_rows(params[name + "v_proj.weight"], kv_perm, vo)
            out[name + "o_proj.weight"] = move_cols(params[name + "o_proj.weight"], q_perm,
                                                    [vo[i // group] for i in range(H)])
        return out

    return transform


def symmetry(which):
    gen = torch.Generator().manual_seed(2)
    if which == "gpt":
        return gpt_symmetry([2, 0, 3, 1], gen)
    return llama_symmetry([1, 0], [[1, 0], [0, 1]], gen)


def make_symmetric(which):
    """The model (without biases in GPT's attention: AdamW on a rotated bias
    is not equivariant) and its transformed twin."""
    model = gpt(bias=False) if which == "gpt" else llama()
    transform = symmetry(which)
    twin = copy.deepcopy(model)
    with torch.no_grad():
        for name, value in transform(params_of(model)).items():
            dict(twin.named_parameters())[name].copy_(value)
    return model, twin, transform


def params_of(model, grads=False):
    return {name: (p.grad if grads else p).detach().clone() for name, p in model.named_parameters()}


def largest_difference(a, b):
    return max((a[name] - b[name]).abs().max().item() for name in a)


@pytest.mark.parametrize("which", MODELS)
def test_the_symmetry_keeps_the_function_and_moves_the_gradients(which):
    model, twin, transform = make_symmetric(which)
    idx = tokens()
    assert torch.allclose(model(idx), twin(idx), rtol=0, atol=1e-12)
    for m in (model, twin):
        language_model_loss(m, idx).backward()
    assert largest_difference(transform(params_of(model, grads=True)), params_of(twin, grads=True)) < 1e-12
    # Not any shuffle is a symmetry: the rows of one key head reversed, its query head left, change the output.
    broken = copy.deepcopy(model)
    name, start = ("transformer.h.0.attn.c_attn.weight", H * D) if which == "gpt" else \
        ("model.layers.0.self_attn.k_proj.weight", 0)
    with torch.no_grad():
        W = dict(broken.named_parameters())[name]
        W[start:start + D] = W[start:start + D].flip(0).clone()
    assert not torch.allclose(model(idx), broken(idx), rtol=0, atol=1e-6)


def equivariance_error(which, steps=2, **options):
    """How far Group Muon (g = 1) on the transformed twin is from the
    transformed steps of the model, over `steps` steps."""
    model, twin, transform = make_symmetric(which)
    idx = tokens()
    optimizers = [MuonWithAuxAdamW(param_groups(m, group_size=1, ns_dtype="fp64", **options), lr=0.05,
                                   adamw_lr=1e-2) for m in (model, twin)]
    for _ in range(steps):
        for m, opt in zip((model, twin), optimizers):
            opt.zero_grad()
            language_model_loss(m, idx).backward()
            opt.step()
    return largest_difference(transform(params_of(model)), params_of(twin))


@pytest.mark.parametrize("which", MODELS)
def test_group_muon_blocks_move_with_the_heads(which):
    assert equivariance_error(which) < 1e-10


@pytest.mark.parametrize("which, options", [
    ("gpt", {"n_head": 2}),  # blocks of two heads: the permutation splits them
    ("gpt", {"n_head": 8}),  # half heads: the rotations mix them
    ("llama", {"heads": {"*.q_proj.weight": HeadLayout("q", 8, 4), "*.k_proj.weight": HeadLayout("k", 4, 4),
                         "*.v_proj.weight": HeadLayout("v", 4, 4), "*.o_proj.weight": HeadLayout("o", 8, 4)}}),
])
def test_a_wrong_layout_breaks_the_symmetry(which, options):
    assert equivariance_error(which, **options) > 1e-6


# -- Group Muon through param_groups against a float64 reference -------------

JORDAN = (3.4445, -4.7750, 2.0315)
MUON = {"lr": 0.02, "weight_decay": 0.1, "momentum": 0.95}
ADAMW = {"lr": 3e-3, "weight_decay": 0.01, "betas": (0.9, 0.95), "eps": 1e-8}


def newton_schulz5(M):
    X = M.T if M.shape[0] > M.shape[1] else M
    X = X / (torch.linalg.norm(X) + 1e-7)
    a, b, c = JORDAN
    for _ in range(5):
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if M.shape[0] > M.shape[1] else X


def head_blocks(layout, group_size, grouping, grouped):
    """Group Muon's blocks (lists of head indices), or None for the whole
    matrix: each segment cut into groups of group_size when its projection
    is grouped and it has more heads, else one block."""
    if layout is None or group_size == 0:
        return None
    segments = layout.segments or (layout.num_heads,)
    cut = [p in grouped for p in "qkv"] if layout.projection == "qkv" else [layout.projection in grouped]
    if not any(cut):
        return None
    blocks, first = [], 0
    for n, cut_segment in zip(segments, cut):
        if cut_segment and n > group_size:
            count = n // group_size
            if grouping == "contiguous":
                blocks += [[first + j * group_size + t for t in range(group_size)] for j in range(count)]
            else:  # strided: group j = {i : i mod count == j}
                blocks += [[first + j + t * count for t in range(group_size)] for j in range(count)]
        else:
            blocks.append(list(range(first, first + n)))
        first += n
    return blocks


def orthogonalized(U, layout, blocks):
    if blocks is None:
        return newton_schulz5(U)
    axis = 0 if layout.axis == "rows" else 1
    O = torch.full_like(U, float("nan"))
    for block in blocks:
        index = torch.tensor([h * layout.head_dim + i for h in block for i in range(layout.head_dim)])
        O.index_copy_(axis, index, newton_schulz5(U.index_select(axis, index)))
    return O


class Reference:
    """Muon (EMA momentum, Nesterov, Group Muon blocks, whole-matrix scale)
    on the Muon names, AdamW on the rest, in float64."""

    def __init__(self, weights, muon, layouts, group_size, grouping, grouped):
        self.w = {name: w.clone() for name, w in weights.items()}
        self.muon, self.layouts = muon, layouts
        self.group_size, self.grouping, self.grouped = group_size, grouping, grouped
        self.buf, self.m, self.v, self.t = {}, {}, {}, 0

    def step(self, grads):
        self.t += 1
        for name, g in grads.items():
            if name in self.muon:
                self.muon_step(name, g)
            else:
                self.adamw_step(name, g)

    def muon_step(self, name, g):
        mu, lr = MUON["momentum"], MUON["lr"]
        buf = mu * self.buf.get(name, torch.zeros_like(g)) + (1 - mu) * g
        self.buf[name] = buf
        U = g + mu * (buf - g)
        layout = self.layouts.get(name)
        O = orthogonalized(U, layout, head_blocks(layout, self.group_size, self.grouping, self.grouped))
        rows, cols = U.shape
        self.w[name] = self.w[name] * (1 - lr * MUON["weight_decay"]) - lr * math.sqrt(max(1, rows / cols)) * O

    def adamw_step(self, name, g):
        (b1, b2), lr = ADAMW["betas"], ADAMW["lr"]
        self.m[name] = b1 * self.m.get(name, torch.zeros_like(g)) + (1 - b1) * g
        self.v[name] = b2 * self.v.get(name, torch.zeros_like(g)) + (1 - b2) * g * g
        m_hat, v_hat = self.m[name] / (1 - b1 ** self.t), self.v[name] / (1 - b2 ** self.t)
        self.w[name] = self.w[name] * (1 - lr * ADAMW["weight_decay"]) - lr * m_hat / (v_hat.sqrt() + ADAMW["eps"])


@pytest.mark.parametrize("which, group_size, grouping, grouped", [
    *[(which, g, rule, ["q", "k", "v", "o"]) for which in MODELS for g in (1, 2) for rule in ("contiguous", "strided")],
    ("gpt", 4, "contiguous", ["q", "k", "v", "o"]),  # Q, K and V stay apart, each one block
    ("gpt", 2, "strided", ["q", "o"]),                # K and V whole inside the fused weight
    ("llama", 1, "strided", ["k", "o"]),
    ("llama", 0, "contiguous", ["q", "k", "v", "o"]),  # plain Muon
])
def test_group_muon_equals_the_reference(which, group_size, grouping, grouped):
    make, expected = MODELS[which]
    model = make()
    muon, layouts = expected()
    groups = param_groups(model, lr=MUON["lr"], weight_decay=MUON["weight_decay"], adamw_lr=ADAMW["lr"],
                          adamw_weight_decay=ADAMW["weight_decay"], group_size=group_size, grouping=grouping,
                          grouped=grouped, ns_dtype="fp64")
    opt = MuonWithAuxAdamW(groups)
    params = dict(model.named_parameters())
    reference = Reference(params_of(model), muon, layouts, group_size, grouping, grouped)
    gen = torch.Generator().manual_seed(3)
    for _ in range(2):
        grads = {name: torch.randn(p.shape, generator=gen, dtype=torch.float64) for name, p in params.items()}
        for name, p in params.items():
            p.grad = grads[name].clone()
        opt.step()
        reference.step(grads)
    assert largest_difference(reference.w, params_of(model)) < 1e-10


def test_a_tiny_gpt_trains():
    model = gpt()
    idx = tokens(batch=4, length=12)
    opt = MuonWithAuxAdamW(param_groups(model, lr=0.02, adamw_lr=1e-2, group_size=2))
    losses = []
    for _ in range(12):
        opt.zero_grad()
        loss = language_model_loss(model, idx)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0]
