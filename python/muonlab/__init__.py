"""muonlab: Muon, Group Muon, Muon2 and Muon2-F for PyTorch, from muonlab's C++ core.

    import muonlab
    opt = muonlab.optim.MuonWithAuxAdamW(muonlab.optim.param_groups(model), lr=0.02)

The optimizers (muonlab.optim) are torch.optim.Optimizer subclasses whose
step runs the same C++ as muonlab's trainer. The functions below expose its
Newton-Schulz iteration, the exact polar factor it approximates, and the
measurements of what both do (alignment, one-step descent diagnostics).
"""
import torch  # noqa: F401  (loads libtorch before the extension)

from . import _C
from . import optim

__version__ = _C.version()


def _warn_if_a_second_openmp_runtime():
    # muonlab's CPU loops must run on torch's OpenMP runtime: beside a
    # second one the Muon step took 1.25-2.2x as long (docs/benchmarks.md).
    library, shared = _C.openmp_runtime()
    if not shared:
        import warnings

        warnings.warn(
            f"muonlab's CPU loops run on the OpenMP runtime {library or '(unknown)'}, not on torch's own: "
            "torch.set_num_threads does not reach them and CPU steps run slower. Rebuild muonlab against this "
            "torch (scripts/install-python), which links torch's runtime.",
            RuntimeWarning,
            stacklevel=3,
        )


_warn_if_a_second_openmp_runtime()


def newton_schulz(G, steps=5, coefficients="jordan", dtype="auto", method="standard", gram_restart=2):
    """NS_K(G): `steps` Newton-Schulz iterations towards the polar factor of
    G, shape [..., r, c] (leading dimensions are a batch). `coefficients`:
    "jordan", "taylor", "polar_express" or a list of (a, b, c) triples;
    `dtype`: "auto" (bf16 on CUDA and on CPUs with bf16 instructions, else
    fp32), "bf16", "fp32", "fp64"; `method`: "standard", or "gram" (Gram
    Newton-Schulz, restarted every `gram_restart` steps, where it saves
    FLOPs: the same result up to rounding).
    Returns a tensor of G's shape and dtype."""
    return _C.newton_schulz(G, steps, coefficients, dtype, method, gram_restart)


def ns_schedule(name):
    """The Newton-Schulz preset `name` ("jordan", "taylor", "polar_express")
    as muonlab runs it: ([(a, b, c), ...], norm_scale, eps). Step k uses
    triple min(k, len - 1), and X_0 = G / (norm_scale ||G||_F + eps)."""
    return _C.ns_schedule(name)


def polar_factor(G):
    """The exact polar factor msign(G) = U V^T of the thin SVD, in float64
    (singular values at rounding level count as zero)."""
    return _C.polar_factor(G)


def alignment(G, steps=5, coefficients="jordan", dtype="fp32"):
    """cos(NS_k(G), msign(G)) for k = 0..steps: a float64 tensor of shape
    [steps + 1, ...]; row 0 is the normalized input."""
    return _C.alignment(G, steps, coefficients, dtype)


def spectrum_alignment(U, P, steps=5, coefficients="jordan", dtype="fp32"):
    """The Muon2 paper's instrument (docs/algorithms.md, Directional
    alignment) on Muon's input U and Muon2's input P of one matrix (a
    MuonInputTracker's, or any pair): {"before": U's spectrum, "after": P's,
    "muon": [cos(NS_k(U), msign(U)) for k = 0..steps], "muon2": the same for
    P}, each spectrum {"rank", "s_max", "s_min", "condition",
    "spread_p90_p10"} over the nonzero singular values. `muonlab align`
    prints the same rows for a trained run."""
    return _C.spectrum_alignment(U, P, steps, coefficients, dtype)


MuonInputTracker = _C.MuonInputTracker


def max_logits(q, k, scale=None, causal=True):
    """Each head's largest attention logit q k^T * scale, a float32 [H], for
    q [B, H, T, D] and k [B, H_kv, S, D] (grouped-query keys, H_kv dividing
    H, serve H / H_kv consecutive query heads); `scale` defaults to
    1 / sqrt(D); `causal`: query t sees keys up to S - T + t. What QK-clip
    compares with tau: take the maximum over a step's forward passes (and,
    data-parallel, over ranks) and pass it to qk_clip_ after the step."""
    if scale is None:
        scale = q.shape[-1] ** -0.5
    return _C.head_max_logits(q, k, float(scale), causal)


def qk_clip_(max_logits, tau, query, key, query_bias=None, key_bias=None, transposed=False):
    """QK-clip, the "Clip" of Kimi K2's MuonClip (docs/algorithms.md), on
    one attention's weights, in place after the optimizer step: each head h
    whose largest logit S_h (max_logits[h]) exceeded tau has its logits
    multiplied by gamma_h = tau / S_h, the query and key rows of the head by
    sqrt(gamma_h) each, or, with grouped-query keys, the query rows by
    gamma_h alone. `query` [H * d, in] and `key` [H_kv * d, in]: separate
    weights, or views of a fused one (``w[:C]``, ``w[C:2C]``); biases too.
    `transposed`: weights stored [in, out] (transformers' Conv1D). Returns
    gamma, one factor per head (1 where nothing was clipped)."""
    return _C.qk_clip_(max_logits, tau, query, key, query_bias, key_bias, transposed)


_EVERY_PROJECTION = ["q", "k", "v", "o", "mla_up"]


def one_step_diagnostics(G, heads, group_size, grouping="contiguous", generator=None, steps=5,
                         coefficients="jordan", dtype="auto", transposed=False):
    """Group Muon against whole-matrix Muon in one descent step, on the
    gradient G of an attention weight (docs/algorithms.md, One-step descent
    diagnostics). For a beta-smooth loss a step W <- W - eta O decreases the
    loss by at least eta <G, O> - (beta eta^2 / 2) ||O||_F^2; orthogonalizing
    G's blocks of `group_size` heads (O_grp) instead of the whole G (O_all)
    changes that bound by eta * gain - (beta eta^2 / 2) * cost, with

        gain = <G, O_grp> - <G, O_all>          (whitening gain)
        cost = ||O_grp||_F^2 - ||O_all||_F^2    (grouping-induced norm cost)

    `heads`: the weight's HeadLayout (or its tuple), as Group Muon takes it;
    the blocks are those Group Muon cuts with `grouping` ("contiguous",
    "strided", or "random", drawn from `generator`). `transposed`: G stored
    [in, out] (transformers' Conv1D). Returns {"ns": {"gain", "cost"},
    "exact": {"gain", "cost"}}: O from `steps` Newton-Schulz iterations (what
    the optimizer applies), and from the exact polar factors, where gain =
    sum_i ||G_i||_* - ||G||_* and cost = sum_i rank(G_i) - rank(G). Where
    the groups leave the weight one block (group_size at least its heads),
    every term is 0. A Muon optimizer's own one_step_diagnostics() measures
    all its attention weights with its groups' settings."""
    layout = optim.HeadLayout.from_value(heads)
    terms = _C.one_step_diagnostics(G, layout.role, layout.cpp_layout(transposed), transposed, group_size, grouping,
                                    _EVERY_PROJECTION, generator, steps, coefficients, dtype)
    if terms is None:
        return {source: {"gain": 0.0, "cost": 0.0} for source in ("ns", "exact")}
    return terms


def descent_difference(terms, eta, beta):
    """eta * gain - (beta eta^2 / 2) * cost for one of one_step_diagnostics'
    {"gain", "cost"}: how much more the grouped step is guaranteed to
    decrease the loss, at step size eta and smoothness beta. Positive:
    grouping wins."""
    return _C.descent_difference(terms["gain"], terms["cost"], eta, beta)


__all__ = ["optim", "newton_schulz", "ns_schedule", "polar_factor", "alignment", "spectrum_alignment",
           "MuonInputTracker", "max_logits", "qk_clip_", "one_step_diagnostics", "descent_difference", "__version__"]
