"""param_groups on encoder layouts beside the decoders': timm's ViT
attention (a fused ``attn.qkv`` viewed as [3, H, head_dim], and
``attn.proj``) and BERT's (``attention.self.query/key/value`` and
``attention.output.dense``, with the MLP's ``intermediate.dense`` and
``output.dense`` left as plain matrices). Tiny plain-torch models named as
those libraries name them; each layout is checked against the forward pass
(head_isolation.py), and Group Muon cuts the weights it finds."""
import math

import pytest
import torch
from torch import nn

from head_isolation import check_heads_of_first_attention
from muonlab.optim import HeadLayout, MuonWithAuxAdamW, param_groups

H, D, WIDTH = 4, 8, 32


def attention(q, k, v):
    """Bidirectional softmax attention of [B, H, N, D] tensors."""
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1) @ v


class TimmAttention(nn.Module):
    """timm's ViT Attention: qkv reshaped (B, N, 3, H, head_dim)."""

    def __init__(self):
        super().__init__()
        self.num_heads, self.head_dim = H, D
        self.qkv = nn.Linear(WIDTH, 3 * WIDTH)
        self.proj = nn.Linear(WIDTH, WIDTH)

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B, N, 3, H, D).permute(2, 0, 3, 1, 4)
        return self.proj(attention(q, k, v).transpose(1, 2).reshape(B, N, C))


class TimmBlock(nn.Module):
    def __init__(self):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(WIDTH), nn.LayerNorm(WIDTH)
        self.attn = TimmAttention()
        self.mlp = nn.Sequential()
        self.mlp.fc1, self.mlp.fc2 = nn.Linear(WIDTH, 4 * WIDTH), nn.Linear(4 * WIDTH, WIDTH)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp.fc2(torch.nn.functional.gelu(self.mlp.fc1(self.norm2(x))))


class TinyViT(nn.Module):
    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(12, WIDTH)  # 'embed' in the name: AdamW, as a patch embedding should be
        self.blocks = nn.Sequential(TimmBlock(), TimmBlock())
        self.head = nn.Linear(WIDTH, 10)

    def forward(self, patches):
        return self.head(self.blocks(self.patch_embed(patches)).mean(1))


class BertSelfAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.num_attention_heads, self.attention_head_size = H, D
        self.query, self.key, self.value = (nn.Linear(WIDTH, WIDTH) for _ in range(3))

    def forward(self, x):
        B, N, C = x.shape
        q, k, v = (m(x).view(B, N, H, D).transpose(1, 2) for m in (self.query, self.key, self.value))
        return attention(q, k, v).transpose(1, 2).reshape(B, N, C)


class Dense(nn.Module):
    def __init__(self, n_in, n_out):
        super().__init__()
        self.dense = nn.Linear(n_in, n_out)


class BertAttention(nn.Module):
    def __init__(self):
        super().__init__()
        self.self = BertSelfAttention()
        self.output = Dense(WIDTH, WIDTH)

    def forward(self, x):
        return self.output.dense(self.self(x))


class BertLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attention = BertAttention()
        self.intermediate = Dense(WIDTH, 4 * WIDTH)
        self.output = Dense(4 * WIDTH, WIDTH)

    def forward(self, x):
        x = x + self.attention(x)
        return x + self.output.dense(torch.nn.functional.gelu(self.intermediate.dense(x)))


class TinyBert(nn.Module):
    def __init__(self):
        super().__init__()
        self.embeddings = nn.Embedding(64, WIDTH)
        self.layer = nn.Sequential(BertLayer(), BertLayer())

    def forward(self, idx):
        return self.layer(self.embeddings(idx))


def vit():
    torch.manual_seed(0)
    return TinyViT().double()


def bert():
    torch.manual_seed(0)
    return TinyBert().double()


def inputs(which):
    generator = torch.Generator().manual_seed(1)
    if which == "vit":
        return torch.randn(2, 9, 12, generator=generator, dtype=torch.float64)
    return torch.randint(0, 64, (2, 9), generator=generator)


EXPECTED = {
    "vit": (vit, {"blocks.0.attn.qkv.weight": HeadLayout("qkv", 3 * H, D, (H, H, H)),
                  "blocks.0.attn.proj.weight": HeadLayout("o", H, D),
                  "blocks.0.mlp.fc1.weight": None, "blocks.0.mlp.fc2.weight": None}),
    "bert": (bert, {"layer.0.attention.self.query.weight": HeadLayout("q", H, D),
                    "layer.0.attention.self.key.weight": HeadLayout("k", H, D),
                    "layer.0.attention.self.value.weight": HeadLayout("v", H, D),
                    "layer.0.attention.output.dense.weight": HeadLayout("o", H, D),
                    "layer.0.intermediate.dense.weight": None, "layer.0.output.dense.weight": None}),
}


@pytest.mark.parametrize("which", EXPECTED)
def test_layouts_and_routing(which):
    make, expected = EXPECTED[which]
    _, routing = param_groups(make(), return_routing=True)
    by_name = {r["name"]: r for r in routing}
    for name, layout in expected.items():
        assert by_name[name]["optimizer"] == "muon", by_name[name]
        assert by_name[name]["heads"] == layout, by_name[name]


@pytest.mark.parametrize("which", EXPECTED)
def test_layouts_are_the_heads_the_forward_pass_uses(which):
    model = EXPECTED[which][0]()
    _, routing = param_groups(model, return_routing=True)
    x = inputs(which)
    checked, n_head = check_heads_of_first_attention(model, routing, lambda: model(x))
    assert checked == 3 * n_head


@pytest.mark.parametrize("which", EXPECTED)
def test_group_muon_cuts_what_it_found(which):
    """Head-wise Group Muon moves the attention weights differently from
    whole-matrix Muon, and the MLP weights alike."""
    results = []
    for group_size in (0, 1):
        model = EXPECTED[which][0]()
        opt = MuonWithAuxAdamW(param_groups(model, lr=0.05, adamw_lr=1e-3, ns_dtype="fp64", group_size=group_size))
        model(inputs(which)).square().mean().backward()
        opt.step()
        results.append(dict(model.named_parameters()))
    whole, grouped = results
    for name, layout in EXPECTED[which][1].items():
        same = torch.allclose(whole[name], grouped[name], atol=1e-12)
        assert same == (layout is None), name
