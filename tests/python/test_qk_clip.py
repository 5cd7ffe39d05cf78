"""muonlab.max_logits and muonlab.qk_clip_ (MuonClip's clip) on plain
torch weights: the per-head maxima against logits computed here, and after
the clip every head's largest logit on the same inputs is min(S_h, tau)."""
import pytest
import torch

import muonlab

B, T, C, IN = 2, 6, 4, 16  # batch, tokens, head size, model width


def heads_of(x, weight, bias, heads):
    """x [B, T, IN] through `weight` [heads * C, IN]: [B, heads, T, C]."""
    return torch.nn.functional.linear(x, weight, bias).view(B, T, heads, C).transpose(1, 2)


def reference_max_logits(q, k, scale, causal=True):
    k = k.repeat_interleave(q.shape[1] // k.shape[1], dim=1)
    logits = (q.double() @ k.double().transpose(-2, -1)) * scale
    if causal:
        S = k.shape[2]
        future = torch.ones(q.shape[2], S, dtype=torch.bool).triu(S - q.shape[2] + 1)
        logits = logits.masked_fill(future, float("-inf"))
    return logits.transpose(0, 1).reshape(q.shape[1], -1).max(dim=1).values


@pytest.mark.parametrize("kv_heads, causal, cached", [(4, True, 0), (2, True, 0), (4, False, 0), (4, True, 3)])
def test_max_logits_against_the_logits(kv_heads, causal, cached):
    torch.manual_seed(0)
    q = torch.randn(B, 4, T, C)
    k = torch.randn(B, kv_heads, T + cached, C)  # cached: earlier keys, as in decoding
    got = muonlab.max_logits(q, k, causal=causal)
    assert got.dtype == torch.float32 and got.shape == (4,)
    torch.testing.assert_close(got.double(), reference_max_logits(q, k, C ** -0.5, causal), rtol=1e-5, atol=1e-5)


def logits_after(x, wq, bq, wk, bk, heads, kv_heads):
    return reference_max_logits(heads_of(x, wq, bq, heads), heads_of(x, wk, bk, kv_heads), C ** -0.5)


@pytest.mark.parametrize("kv_heads", [4, 2])
def test_clipped_heads_top_out_at_tau_and_the_others_are_untouched(kv_heads):
    torch.manual_seed(1)
    x = torch.randn(B, T, IN)
    wq, bq = torch.randn(4 * C, IN), torch.randn(4 * C)
    wk, bk = torch.randn(kv_heads * C, IN), torch.randn(kv_heads * C)
    before = muonlab.max_logits(heads_of(x, wq, bq, 4), heads_of(x, wk, bk, kv_heads))
    tau = before.median().item()  # some heads above, some not
    clipped = before > tau
    assert clipped.any() and not clipped.all()
    wq0, wk0 = wq.clone(), wk.clone()
    gamma = muonlab.qk_clip_(before, tau, wq, wk, query_bias=bq, key_bias=bk)
    after = logits_after(x, wq, bq, wk, bk, 4, kv_heads)
    torch.testing.assert_close(after, torch.minimum(before.double(), torch.tensor(tau, dtype=torch.float64)),
                               rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gamma[~clipped], torch.ones(int((~clipped).sum()), dtype=gamma.dtype))
    rows = lambda mask: mask.repeat_interleave(C)  # noqa: E731
    assert torch.equal(wq[~rows(clipped)], wq0[~rows(clipped)])
    if kv_heads == 4:  # each head's rows scaled by sqrt(gamma) on both sides
        assert not torch.equal(wk, wk0)
    else:  # shared keys stay; the query rows take the whole factor
        assert torch.equal(wk, wk0)


def test_views_of_a_fused_weight_and_a_conv1d_weight():
    torch.manual_seed(2)
    x = torch.randn(B, T, IN)
    fused = torch.nn.Parameter(torch.randn(3 * 4 * C, IN))  # nanoGPT's c_attn: q, k, v rows
    conv1d = torch.nn.Parameter(fused.detach().t().clone())  # Hugging Face GPT-2's: stored [in, out]
    H = 4 * C
    before = muonlab.max_logits(heads_of(x, fused[:H], None, 4), heads_of(x, fused[H:2 * H], None, 4))
    tau = before.median().item()
    values = fused[2 * H:].detach().clone()
    muonlab.qk_clip_(before, tau, fused[:H], fused[H:2 * H])
    muonlab.qk_clip_(before, tau, conv1d[:, :H], conv1d[:, H:2 * H], transposed=True)
    after = logits_after(x, fused[:H].detach(), None, fused[H:2 * H].detach(), None, 4, 4)
    assert after.max().item() == pytest.approx(tau, rel=1e-4)
    assert torch.equal(fused[2 * H:].detach(), values)  # the value rows are left alone
    torch.testing.assert_close(conv1d.detach().t(), fused.detach())


def test_bad_input_raises_value_error_naming_it():
    w = torch.randn(16, 8)
    with pytest.raises(ValueError, match="tau = 0: expected a finite logit bound > 0"):
        muonlab.qk_clip_(torch.ones(4), 0.0, w, w)
    with pytest.raises(ValueError, match="expected one per head"):
        muonlab.qk_clip_(torch.ones(4, 1), 1.0, w, w)
    with pytest.raises(ValueError, match="are not whole heads"):
        muonlab.qk_clip_(torch.ones(3), 1.0, w, w)
    with pytest.raises(ValueError, match="3 key heads cannot serve 4 query heads"):
        muonlab.qk_clip_(torch.ones(4), 1.0, w, torch.randn(12, 8))
    with pytest.raises(ValueError, match="expected \\[B, H, T, D\\] and \\[B, H_kv, S, D\\]"):
        muonlab.max_logits(torch.randn(1, 4, 3, 2), torch.randn(1, 3, 3, 2))
