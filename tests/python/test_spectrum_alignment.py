"""muonlab.MuonInputTracker and muonlab.spectrum_alignment: Muon's and
Muon2's inputs against the optimizers' formulas written out here in
float64, and the spectra and alignments against torch's SVD."""
import pytest
import torch

import muonlab


def gradients(count, shape=(12, 20), seed=0):
    generator = torch.Generator().manual_seed(seed)
    return [torch.randn(*shape, generator=generator, dtype=torch.float64) for _ in range(count)]


def reference_inputs(grads, momentum=0.95, beta2=0.95, eps=1e-8, factored=False):
    """U (Nesterov) and P = U / (sqrt(V_hat) + eps) after every gradient,
    with bias correction; V_hat is R_i C_j / sum(C) for the factored form."""
    B = torch.zeros_like(grads[0])
    V = torch.zeros_like(grads[0])
    R = torch.zeros(grads[0].shape[0], dtype=torch.float64)
    C = torch.zeros(grads[0].shape[1], dtype=torch.float64)
    for t, G in enumerate(grads, start=1):
        B = momentum * B + G
        U = G + momentum * B
        V = beta2 * V + (1 - beta2) * G * G
        R = beta2 * R + (1 - beta2) * (G * G).sum(1)
        C = beta2 * C + (1 - beta2) * (G * G).sum(0)
        V_hat = torch.outer(R, C) / C.sum() if factored else V
        P = U / ((V_hat / (1 - beta2 ** t)).sqrt() + eps)
    return U, P


@pytest.mark.parametrize("second_moment", ["full", "factored"])
def test_tracker_builds_the_optimizers_inputs(second_moment):
    grads = gradients(4)
    tracker = muonlab.MuonInputTracker(torch.zeros(12, 20, dtype=torch.float64), second_moment=second_moment)
    for G in grads:
        tracker.add_gradient(G)
    U, P = reference_inputs(grads, factored=second_moment == "factored")
    assert tracker.steps == 4
    torch.testing.assert_close(tracker.muon_input, U, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(tracker.muon2_input, P, rtol=1e-10, atol=1e-10)


def test_gradient_source_is_the_last_gradient():
    grads = gradients(3)
    tracker = muonlab.MuonInputTracker(torch.zeros(12, 20, dtype=torch.float64), source="gradient")
    for G in grads:
        tracker.add_gradient(G)
    torch.testing.assert_close(tracker.muon_input, grads[-1], rtol=0, atol=0)


def spectrum(M):
    s = torch.linalg.svdvals(M.double())
    return {"rank": int((s > s[0] * 1e-12).sum()), "s_max": s[0].item(), "s_min": s[-1].item(),
            "condition": (s[0] / s[-1]).item(),
            "spread_p90_p10": (torch.quantile(s, 0.9) / torch.quantile(s, 0.1)).item()}


def cosine(A, B):
    return ((A * B).sum() / (A.norm() * B.norm())).item()


def test_spectra_and_alignments_against_the_svd():
    grads = gradients(3)
    tracker = muonlab.MuonInputTracker(torch.zeros(12, 20, dtype=torch.float64))
    for G in grads:
        tracker.add_gradient(G)
    U, P = tracker.muon_input, tracker.muon2_input
    row = muonlab.spectrum_alignment(U, P, steps=5, dtype="fp64")
    for key, expected in spectrum(U).items():
        assert row["before"][key] == pytest.approx(expected, rel=1e-9), key
    for key, expected in spectrum(P).items():
        assert row["after"][key] == pytest.approx(expected, rel=1e-9), key
    assert len(row["muon"]) == len(row["muon2"]) == 6
    for k in range(6):
        ns = lambda X: X if k == 0 else muonlab.newton_schulz(X, k, "jordan", "fp64")  # noqa: E731
        assert row["muon"][k] == pytest.approx(cosine(ns(U), muonlab.polar_factor(U)), rel=1e-9)
        assert row["muon2"][k] == pytest.approx(cosine(ns(P), muonlab.polar_factor(P)), rel=1e-9)


def test_bad_input_raises_value_error_naming_it():
    with pytest.raises(ValueError, match="needs a second moment"):
        muonlab.MuonInputTracker(torch.zeros(4, 4), second_moment="none")
    with pytest.raises(ValueError, match="unknown Muon input source 'velocity'"):
        muonlab.MuonInputTracker(torch.zeros(4, 4), source="velocity")
    with pytest.raises(ValueError, match="Muon takes matrices"):
        muonlab.MuonInputTracker(torch.zeros(4))
    tracker = muonlab.MuonInputTracker(torch.zeros(4, 4))
    with pytest.raises(ValueError, match="no gradient yet"):
        tracker.muon_input
    with pytest.raises(ValueError, match=r"gradient of shape \[4, 5\] for a matrix of shape \[4, 4\]"):
        tracker.add_gradient(torch.zeros(4, 5))
    with pytest.raises(ValueError):
        muonlab.spectrum_alignment(torch.zeros(4, 4), torch.zeros(4, 5))
