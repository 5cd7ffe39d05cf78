"""param_groups on transformers' own models, where transformers is
installed (GPU machines; Debian's python3-transformers): for each family
whose attention param_groups knows, every attention weight of the first
layer gets a head layout, and each layout is the one the forward pass uses
(head_isolation.py): changing the slice a layout gives head h (rows, or the
columns of a Conv1D weight stored [in, out]; for an interleaved
query_key_value, the rows its interleave gives h) changes the output of
exactly the query heads that read it. Tiny random models, float64, eager
attention."""
import pytest
import torch

from head_isolation import check_heads_of_first_attention
from muonlab.optim import param_groups

transformers = pytest.importorskip("transformers")

TINY = dict(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=16)
FALCON = dict(vocab_size=64, hidden_size=32, num_hidden_layers=1, num_attention_heads=4, multi_query=False,
              new_decoder_architecture=False)
FAMILIES = {
    # Encoders: BERT's attention.self.query/key/value and attention.output.dense.
    "bert": ("BertConfig", "BertForMaskedLM", dict(vocab_size=64, hidden_size=32, num_hidden_layers=1,
                                                   num_attention_heads=4, intermediate_size=64,
                                                   max_position_embeddings=16)),
    "gpt2": ("GPT2Config", "GPT2LMHeadModel", dict(vocab_size=64, n_positions=16, n_embd=32, n_layer=1, n_head=4)),
    "llama": ("LlamaConfig", "LlamaForCausalLM", TINY),
    "mistral": ("MistralConfig", "MistralForCausalLM", TINY),
    "qwen2": ("Qwen2Config", "Qwen2ForCausalLM", TINY),
    "qwen3": ("Qwen3Config", "Qwen3ForCausalLM", dict(TINY, head_dim=16)),  # head_dim * heads != hidden_size
    "phi3": ("Phi3Config", "Phi3ForCausalLM", dict(TINY, pad_token_id=0)),  # fused qkv_proj with GQA
    "opt": ("OPTConfig", "OPTForCausalLM", dict(vocab_size=64, hidden_size=32, ffn_dim=64, num_hidden_layers=1,
                                                num_attention_heads=4, word_embed_proj_dim=32,
                                                max_position_embeddings=16)),
    "deepseek_v3": ("DeepseekV3Config", "DeepseekV3ForCausalLM",
                    dict(TINY, num_key_value_heads=4, moe_intermediate_size=16, q_lora_rank=12, kv_lora_rank=10,
                         qk_nope_head_dim=6, qk_rope_head_dim=4, v_head_dim=5, first_k_dense_replace=1,
                         n_routed_experts=4, num_experts_per_tok=2, n_group=1, topk_group=1)),
    # query_key_value with its q, k, v parts interleaved (per head, or per
    # key/value group), read as the attention class's forward splits it.
    "gpt_neox": ("GPTNeoXConfig", "GPTNeoXForCausalLM", dict(TINY, num_key_value_heads=None)),
    "bloom": ("BloomConfig", "BloomForCausalLM", dict(vocab_size=64, hidden_size=32, n_layer=1, n_head=4)),
    "persimmon": ("PersimmonConfig", "PersimmonForCausalLM", dict(TINY, num_key_value_heads=None)),
    "falcon": ("FalconConfig", "FalconForCausalLM", FALCON),
    "falcon_multi_query": ("FalconConfig", "FalconForCausalLM", dict(FALCON, multi_query=True)),
    "falcon_new_decoder_gqa": ("FalconConfig", "FalconForCausalLM",
                               dict(FALCON, new_decoder_architecture=True, num_kv_heads=2)),
}


def build(family):
    config_name, model_name, sizes = FAMILIES[family]
    if not hasattr(transformers, model_name):
        pytest.skip(f"transformers {transformers.__version__} has no {model_name}")
    config = getattr(transformers, config_name)(**{key: value for key, value in sizes.items() if value is not None})
    config._attn_implementation = "eager"
    torch.manual_seed(0)
    return getattr(transformers, model_name)(config).double().eval()


@pytest.mark.parametrize("family", list(FAMILIES))
def test_layouts_are_the_heads_the_forward_pass_uses(family):
    model = build(family)
    _, routing = param_groups(model, return_routing=True)
    idx = torch.randint(0, 64, (2, 9), generator=torch.Generator().manual_seed(1))
    checked, n_head = check_heads_of_first_attention(model, routing, lambda: model(idx))
    assert checked >= n_head + 2, f"{family}: only {checked} heads checked"  # queries, a key, a value
