"""Tiny transformers named like the models param_groups knows: a nanoGPT
GPT (fused QKV c_attn, c_proj, tied lm_head), its Hugging Face GPT-2 twin
(the same weights in Conv1D, stored [in, out]), its GPT-NeoX-style twin
(query_key_value with each head's q, k, v rows together), and a Hugging
Face style LLaMA (q/k/v/o_proj with grouped-query attention, RoPE, RMSNorm,
a config with num_attention_heads / num_key_value_heads). All take token
ids [B, T] and return logits [B, T, vocab]."""
import copy
import math
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


def causal_attention(q, k, v):
    """Softmax attention of q, k, v [B, H, T, D] with a causal mask."""
    T = q.shape[-2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(dim=-1) @ v


# -- nanoGPT ----------------------------------------------------------------


@dataclass
class GPTConfig:
    vocab_size: int = 64
    block_size: int = 16
    n_layer: int = 2
    n_head: int = 4
    n_embd: int = 32
    bias: bool = True


class CausalSelfAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.n_head = config.n_head
        self.n_embd = config.n_embd

    def forward(self, x):
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        y = causal_attention(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config=None, **overrides):
        super().__init__()
        config = config or GPTConfig(**overrides)
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.transformer.wte.weight = self.lm_head.weight  # tied, as nanoGPT

    def forward(self, idx):
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.transformer.wte(idx) + self.transformer.wpe(positions)
        for block in self.transformer.h:
            x = block(x)
        return self.lm_head(self.transformer.ln_f(x))


class Conv1D(nn.Module):
    """transformers' Conv1D (Hugging Face GPT-2): y = x @ weight + bias,
    weight stored [in, out], the transpose of nn.Linear's. param_groups
    knows it by its class name, as it knows transformers' own."""

    def __init__(self, linear):
        super().__init__()
        self.weight = nn.Parameter(linear.weight.detach().t().clone())
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().clone())

    def forward(self, x):
        y = x @ self.weight
        return y if self.bias is None else y + self.bias


def hugging_face_gpt2(gpt):
    """A copy of a nanoGPT `gpt` whose blocks hold Hugging Face GPT-2's
    Conv1D in place of each nn.Linear (the same names, the same function,
    every block weight stored transposed)."""
    twin = copy.deepcopy(gpt)
    for block in twin.transformer.h:
        for parent, name in ((block.attn, "c_attn"), (block.attn, "c_proj"), (block.mlp, "c_fc"),
                             (block.mlp, "c_proj")):
            setattr(parent, name, Conv1D(getattr(parent, name)))
    return twin


# -- GPT-NeoX / BLOOM: the fused QKV interleaved per head -------------------


def per_head_qkv_order(n_head, head_dim):
    """The rows of nanoGPT's c_attn [q heads; k heads; v heads] in GPT-NeoX's
    query_key_value order (each head's q, k, v rows together)."""
    rows = torch.arange(3 * n_head * head_dim).view(3, n_head, head_dim)
    return rows.transpose(0, 1).reshape(-1)


class GPTNeoXAttention(nn.Module):
    """Attention as transformers' GPTNeoXAttention holds it: query_key_value
    viewed as [H, 3 * head_dim] (per head: q, then k, then v) and dense,
    made from a nanoGPT CausalSelfAttention. param_groups knows the layout by
    the class name, as it knows transformers' own."""

    def __init__(self, attn):
        super().__init__()
        self.num_attention_heads = attn.n_head
        head_dim = attn.n_embd // attn.n_head
        order = per_head_qkv_order(attn.n_head, head_dim)
        self.query_key_value = nn.Linear(attn.n_embd, 3 * attn.n_embd, bias=attn.c_attn.bias is not None,
                                         dtype=attn.c_attn.weight.dtype)
        self.dense = copy.deepcopy(attn.c_proj)
        with torch.no_grad():
            self.query_key_value.weight.copy_(attn.c_attn.weight[order])
            if attn.c_attn.bias is not None:
                self.query_key_value.bias.copy_(attn.c_attn.bias[order])

    def forward(self, x):
        B, T, C = x.shape
        H = self.num_attention_heads
        qkv = self.query_key_value(x).view(B, T, H, 3 * (C // H)).transpose(1, 2)
        q, k, v = qkv.chunk(3, dim=-1)
        y = causal_attention(q, k, v).transpose(1, 2).contiguous().view(B, T, C)
        return self.dense(y)


def gpt_neox_style(gpt):
    """A copy of a nanoGPT `gpt` whose attention is GPTNeoXAttention: the
    same function, every c_attn's rows reordered per head."""
    twin = copy.deepcopy(gpt)
    for block in twin.transformer.h:
        block.attn = GPTNeoXAttention(block.attn)
    return twin


# -- LLaMA ------------------------------------------------------------------


@dataclass
class LlamaConfig:
    vocab_size: int = 64
    hidden_size: int = 32
    intermediate_size: int = 64
    num_hidden_layers: int = 2
    num_attention_heads: int = 4
    num_key_value_heads: int = 2
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0


class RMSNorm(nn.Module):
    def __init__(self, size, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(size))
        self.eps = eps

    def forward(self, x):
        return self.weight * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def rope(x, theta):
    """Rotary embedding in Hugging Face's layout: dims d and d + D/2 of x
    [B, H, T, D] turn by the angle position * theta^(-2d/D)."""
    T, D = x.shape[-2], x.shape[-1]
    inv_freq = theta ** (-torch.arange(0, D, 2, dtype=x.dtype, device=x.device) / D)
    angles = torch.outer(torch.arange(T, dtype=x.dtype, device=x.device), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return x * angles.cos() + rotate_half(x) * angles.sin()


class LlamaAttention(nn.Module):
    """As Hugging Face's recent LlamaAttention: head counts in `config`,
    only head_dim as an attribute."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.head_dim = config.hidden_size // config.num_attention_heads
        H, H_kv, D = config.num_attention_heads, config.num_key_value_heads, self.head_dim
        self.q_proj = nn.Linear(config.hidden_size, H * D, bias=False)
        self.k_proj = nn.Linear(config.hidden_size, H_kv * D, bias=False)
        self.v_proj = nn.Linear(config.hidden_size, H_kv * D, bias=False)
        self.o_proj = nn.Linear(H * D, config.hidden_size, bias=False)

    def forward(self, x):
        B, T, _ = x.shape
        H, H_kv, D = self.config.num_attention_heads, self.config.num_key_value_heads, self.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)
        k = self.k_proj(x).view(B, T, H_kv, D).transpose(1, 2)
        v = self.v_proj(x).view(B, T, H_kv, D).transpose(1, 2)
        q, k = rope(q, self.config.rope_theta), rope(k, self.config.rope_theta)
        # Query head i reads key/value head i // (H / H_kv).
        k, v = (t.repeat_interleave(H // H_kv, dim=1) for t in (k, v))
        y = causal_attention(q, k, v).transpose(1, 2).reshape(B, T, H * D)
        return self.o_proj(y)


class LlamaMLP(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.gate_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=False)
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class LlamaDecoderLayer(nn.Module):
    """Pre-norm block; DeepSeek's dense layers are the same around their
    own attention."""

    def __init__(self, config, attention=LlamaAttention):
        super().__init__()
        self.input_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.self_attn = attention(config)
        self.post_attention_layernorm = RMSNorm(config.hidden_size, config.rms_norm_eps)
        self.mlp = LlamaMLP(config)

    def forward(self, x):
        x = x + self.self_attn(self.input_layernorm(x))
        return x + self.mlp(self.post_attention_layernorm(x))


class LlamaModel(nn.Module):
    def __init__(self, config, attention=LlamaAttention):
        super().__init__()
        self.embed_tokens = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList([LlamaDecoderLayer(config, attention) for _ in range(config.num_hidden_layers)])
        self.norm = RMSNorm(config.hidden_size, config.rms_norm_eps)

    def forward(self, idx):
        x = self.embed_tokens(idx)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class LlamaForCausalLM(nn.Module):
    config_class, attention_class = LlamaConfig, LlamaAttention

    def __init__(self, config=None, **overrides):
        super().__init__()
        config = config or self.config_class(**overrides)
        self.config = config
        self.model = LlamaModel(config, self.attention_class)
        self.lm_head = nn.Linear(config.hidden_size, config.vocab_size, bias=False)

    def forward(self, idx):
        return self.lm_head(self.model(idx))


# -- DeepSeek-V3 (Multi-head Latent Attention) ------------------------------


@dataclass
class DeepseekConfig(LlamaConfig):
    """Hugging Face DeepseekV3Config's names, tiny. As there, head_dim is
    the rotary part's size (qk_rope_head_dim), not any projection's head."""
    num_key_value_heads: int = 4
    q_lora_rank: int = 12
    kv_lora_rank: int = 10
    qk_nope_head_dim: int = 6
    qk_rope_head_dim: int = 4
    v_head_dim: int = 5
    head_dim: int = 4


class DeepseekAttention(nn.Module):
    """As Hugging Face's DeepseekV3Attention: the query through a low-rank
    q_a_proj / q_b_proj (q_proj without q_lora_rank), keys and values up
    from one latent (kv_b_proj: per head, qk_nope_head_dim key rows then
    v_head_dim value rows) plus a rotary key part shared by all heads
    (kv_a_proj_with_mqa), o_proj over the heads' values."""

    def __init__(self, config):
        super().__init__()
        self.config = config
        H = self.num_heads = config.num_attention_heads
        self.qk_nope_head_dim, self.qk_rope_head_dim = config.qk_nope_head_dim, config.qk_rope_head_dim
        self.qk_head_dim = config.qk_nope_head_dim + config.qk_rope_head_dim
        self.v_head_dim, self.kv_lora_rank = config.v_head_dim, config.kv_lora_rank
        if config.q_lora_rank is None:
            self.q_proj = nn.Linear(config.hidden_size, H * self.qk_head_dim, bias=False)
        else:
            self.q_a_proj = nn.Linear(config.hidden_size, config.q_lora_rank, bias=False)
            self.q_a_layernorm = RMSNorm(config.q_lora_rank, config.rms_norm_eps)
            self.q_b_proj = nn.Linear(config.q_lora_rank, H * self.qk_head_dim, bias=False)
        self.kv_a_proj_with_mqa = nn.Linear(config.hidden_size, config.kv_lora_rank + config.qk_rope_head_dim,
                                            bias=False)
        self.kv_a_layernorm = RMSNorm(config.kv_lora_rank, config.rms_norm_eps)
        self.kv_b_proj = nn.Linear(config.kv_lora_rank, H * (config.qk_nope_head_dim + config.v_head_dim), bias=False)
        self.o_proj = nn.Linear(H * config.v_head_dim, config.hidden_size, bias=False)

    def forward(self, x):
        B, T, _ = x.shape
        H, nope, rope_dim, v_dim = self.num_heads, self.qk_nope_head_dim, self.qk_rope_head_dim, self.v_head_dim
        if self.config.q_lora_rank is None:
            q = self.q_proj(x)
        else:
            q = self.q_b_proj(self.q_a_layernorm(self.q_a_proj(x)))
        q_nope, q_pe = q.view(B, T, H, nope + rope_dim).transpose(1, 2).split([nope, rope_dim], dim=-1)
        latent, k_pe = self.kv_a_proj_with_mqa(x).split([self.kv_lora_rank, rope_dim], dim=-1)
        kv = self.kv_b_proj(self.kv_a_layernorm(latent)).view(B, T, H, nope + v_dim).transpose(1, 2)
        k_nope, value = kv.split([nope, v_dim], dim=-1)
        k_pe = rope(k_pe.view(B, 1, T, rope_dim), self.config.rope_theta).expand(B, H, T, rope_dim)
        query = torch.cat((q_nope, rope(q_pe, self.config.rope_theta)), dim=-1)
        key = torch.cat((k_nope, k_pe), dim=-1)
        y = causal_attention(query, key, value).transpose(1, 2).reshape(B, T, H * v_dim)
        return self.o_proj(y)


class DeepseekForCausalLM(LlamaForCausalLM):
    """LLaMA's blocks around DeepSeek's attention (its dense layers)."""
    config_class, attention_class = DeepseekConfig, DeepseekAttention


def language_model_loss(model, idx):
    """Next-token cross-entropy of `model` on token ids idx [B, T]."""
    logits = model(idx[:, :-1])
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), idx[:, 1:].reshape(-1))


def one_step_from(model, optimizer, weights, idx):
    """The weights after one step of `optimizer` on idx from `weights` (a
    name -> tensor dict): two optimizers stepped from the same point (one
    continued, one resumed from a state dict) must agree."""
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(weights[name])
    optimizer.zero_grad()
    language_model_loss(model, idx).backward()
    optimizer.step()
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def token_batches(count, vocab=64):
    """`count` batches of token ids [2, 9], the same on every call."""
    generator = torch.Generator().manual_seed(1)
    return [torch.randint(0, vocab, (2, 9), generator=generator) for _ in range(count)]


def train_steps(model, optimizer, batches):
    """One optimizer step on the language-model loss of each batch."""
    for idx in batches:
        optimizer.zero_grad()
        language_model_loss(model, idx).backward()
        optimizer.step()
