"""muonlab: Muon, Group Muon, Muon2 and Muon2-F for PyTorch, from muonlab's C++ core.

    import muonlab
    opt = muonlab.optim.MuonWithAuxAdamW(muonlab.optim.param_groups(model), lr=0.02)

The optimizers (muonlab.optim) are torch.optim.Optimizer subclasses whose
step runs the same C++ as muonlab's trainer. The functions below expose its
Newton-Schulz iteration and the exact polar factor it approximates.
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


__all__ = ["optim", "newton_schulz", "ns_schedule", "polar_factor", "alignment", "__version__"]
