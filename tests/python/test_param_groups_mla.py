"""param_groups on Multi-head Latent Attention as Hugging Face's DeepSeek-V2/V3
write it: the head layouts of q_b_proj / q_proj, kv_b_proj and o_proj come
from MLA's own head sizes (DeepSeek's configs give head_dim the rotary part's
size, which fits none of them), and each layout is the one the forward pass
uses: changing the rows (or, for o_proj, reading the columns) of head h
touches head h's output and no other head's."""
import pytest
import torch

import muonlab
from muonlab.optim import HeadLayout, MuonWithAuxAdamW, param_groups
from tiny_models import DeepseekForCausalLM, language_model_loss

H, NOPE, ROPE, V = 4, 6, 4, 5  # the tiny config's heads and sizes (tiny_models.DeepseekConfig)


def deepseek(q_lora_rank):
    torch.manual_seed(0)
    return DeepseekForCausalLM(q_lora_rank=q_lora_rank).double()


def hugging_face_deepseek(q_lora_rank):
    """transformers' own DeepseekV3ForCausalLM at the tiny sizes, where
    transformers has it (GPU machines); one dense layer."""
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "DeepseekV3Config"):
        pytest.skip(f"transformers {transformers.__version__} has no DeepseekV3")
    config = transformers.DeepseekV3Config(
        vocab_size=64, hidden_size=32, intermediate_size=64, moe_intermediate_size=16, num_hidden_layers=1,
        num_attention_heads=H, num_key_value_heads=H, q_lora_rank=q_lora_rank, kv_lora_rank=10,
        qk_nope_head_dim=NOPE, qk_rope_head_dim=ROPE, v_head_dim=V, first_k_dense_replace=1, n_routed_experts=4,
        num_experts_per_tok=2, n_group=1, topk_group=1, attn_implementation="eager")
    torch.manual_seed(0)
    return transformers.DeepseekV3ForCausalLM(config).double()


MODELS = {"tiny": deepseek, "transformers": hugging_face_deepseek}


def layouts(model):
    _, routing = param_groups(model, return_routing=True)
    prefix = "model.layers.0.self_attn."
    return {r["name"][len(prefix):-len(".weight")]: r["heads"] for r in routing
            if r["name"].startswith(prefix) and r["name"].endswith(".weight") and r["optimizer"] == "muon"}


@pytest.mark.parametrize("which", list(MODELS))
@pytest.mark.parametrize("q_lora_rank", [12, None])
def test_layouts_come_from_the_mla_head_sizes(which, q_lora_rank):
    expected = {"kv_a_proj_with_mqa": None, "kv_b_proj": HeadLayout("mla_up", H, NOPE + V),
                "o_proj": HeadLayout("o", H, V)}
    if q_lora_rank is None:
        expected["q_proj"] = HeadLayout("q", H, NOPE + ROPE)
    else:
        expected.update(q_a_proj=None, q_b_proj=HeadLayout("mla_up", H, NOPE + ROPE))
    assert layouts(MODELS[which](q_lora_rank)) == expected


def head_outputs(model, idx):
    """What each head hands to layer 0's o_proj: [B, T, H, V]."""
    captured = {}
    attention = model.model.layers[0].self_attn
    hook = attention.o_proj.register_forward_pre_hook(lambda _, inputs: captured.setdefault("y", inputs[0]))
    with torch.no_grad():
        model(idx)
    hook.remove()
    y = captured["y"]
    return y.view(*y.shape[:-1], H, V)


@pytest.mark.parametrize("which", list(MODELS))
@pytest.mark.parametrize("q_lora_rank", [12, None])
def test_each_layout_is_the_heads_the_forward_pass_uses(which, q_lora_rank):
    """Perturbing the rows a layout gives head h changes head h's output
    alone; and o_proj's layout reads those outputs (v_head_dim columns a
    head, in head order), since they are o_proj's input."""
    model = MODELS[which](q_lora_rank)
    idx = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(1))
    base = head_outputs(model, idx)
    found = layouts(model)
    attention = model.model.layers[0].self_attn
    for name in ("q_b_proj" if q_lora_rank else "q_proj", "kv_b_proj"):
        layout = found[name]
        weight = getattr(attention, name).weight
        for h in range(H):
            rows = slice(h * layout.head_dim, (h + 1) * layout.head_dim)
            with torch.no_grad():
                saved = weight[rows].clone()
                weight[rows] += torch.randn_like(saved)
            changed = (head_outputs(model, idx) - base).abs().amax(dim=(0, 1, 3))
            with torch.no_grad():
                weight[rows] = saved
            others = torch.cat((changed[:h], changed[h + 1:]))
            assert changed[h] > 1e-3 and others.max() < 1e-12 * changed[h], (name, h, changed)
    o_proj = found["o_proj"]
    assert (o_proj.num_heads, o_proj.head_dim, o_proj.axis) == (H, V, "cols")
    assert attention.o_proj.weight.shape[1] == H * V


def test_group_muon_cuts_the_latent_up_projections():
    """Head-wise Group Muon on kv_b_proj through param_groups: each head's
    (qk_nope + v) x kv_lora_rank block of the update is Newton-Schulz of
    that block of the first step's Nesterov momentum, (1 - mu^2) times the
    gradient, alone, times the whole matrix's lr scale."""
    model = deepseek(12)
    lr = 0.02
    opt = MuonWithAuxAdamW(param_groups(model, lr=lr, weight_decay=0.0, adamw_lr=1e-3, group_size=1,
                                        grouped=["q", "k", "v", "o", "mla_up"], ns_dtype="fp64"))
    idx = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(2))
    kv_b = model.model.layers[0].self_attn.kv_b_proj.weight
    before = kv_b.detach().clone()
    language_model_loss(model, idx).backward()
    mu = MuonWithAuxAdamW.defaults()["momentum"]
    nesterov_input = (1 - mu * mu) * kv_b.grad.detach()
    opt.step()
    update = (before - kv_b.detach()) / lr
    rows, cols = kv_b.shape
    scale = max(1.0, rows / cols) ** 0.5  # scale_rule "original", of the whole matrix
    size = NOPE + V
    for h in range(H):
        block = slice(h * size, (h + 1) * size)
        expected = scale * muonlab.newton_schulz(nesterov_input[block], dtype="fp64")
        assert torch.allclose(update[block], expected, atol=1e-9), h
    whole = scale * muonlab.newton_schulz(nesterov_input, dtype="fp64")
    assert not torch.allclose(update, whole, atol=1e-3)
