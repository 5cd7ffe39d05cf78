"""Muon, Muon2, Muon2-F, NorMuon and AdamW written out in float64 with plain torch,
one matrix at a time, from the formulas in docs/design.md (Optimizers): the
independent reference the Python optimizers are tested against."""
import math

import torch

COEFFICIENTS = {
    "jordan": ([(3.4445, -4.7750, 2.0315)], 1.0, 1e-7),
    "taylor": ([(1.875, -1.25, 0.375)], 1.0, 1e-7),
    # Polar Express (Amsel, Persson, Musco, Gower): five tuned steps, the
    # input divided by 1.02 ||M||_F.
    "polar_express": ([(8.156554524902461, -22.48329292557795, 15.878769915207462),
                       (4.042929935166739, -2.808917465908714, 0.5000178451051316),
                       (3.8916678022926607, -2.772484153217685, 0.5060648178503393),
                       (3.285753657755655, -2.3681294933425376, 0.46449024233003106),
                       (2.3465413258596377, -1.7097828382687081, 0.42323551169305323)], 1.02, 1e-6),
}


def newton_schulz(M, steps, coefficients="jordan", eps=None):
    """NS_K(M) for one matrix, in float64."""
    if isinstance(coefficients, str):
        triples, norm_scale, default_eps = COEFFICIENTS[coefficients]
    else:
        triples, norm_scale, default_eps = list(coefficients), 1.0, 1e-7
    eps = default_eps if eps is None else eps
    X = M.double()
    tall = X.shape[0] > X.shape[1]
    if tall:
        X = X.T
    X = X / (norm_scale * torch.linalg.norm(X) + eps)
    for k in range(steps):
        a, b, c = triples[min(k, len(triples) - 1)]
        A = X @ X.T
        X = a * X + (b * A + c * A @ A) @ X
    return X.T if tall else X


def scale(rule, rows, cols):
    return {
        "original": math.sqrt(max(1.0, rows / cols)),
        "match_rms_adamw": 0.2 * math.sqrt(max(rows, cols)),
        "spectral": math.sqrt(rows / cols),
        "none": 1.0,
    }[rule]


class ReferenceMuon:
    """One matrix's Muon-family state and step, every option spelled out."""

    def __init__(self, lr=1e-3, momentum=0.95, nesterov=True, momentum_kind="ema", ns_steps=5,
                 ns_coefficients="jordan", ns_eps=None, scale_rule="original", weight_decay=0.1, orthogonalize=True,
                 second_moment="none", beta2=0.95, second_moment_eps=1e-8, bias_correction=True,
                 neuron_norm=False, neuron_beta2=0.95, neuron_eps=1e-8):
        self.__dict__.update(locals())
        self.buffer = None
        self.v = self.row = self.col = self.neuron_v = None
        self.t = 0

    def momentum_update(self, g):
        mu = self.momentum
        if self.buffer is None:
            self.buffer = torch.zeros_like(g)
        if self.momentum_kind == "sum":
            self.buffer = mu * self.buffer + g
            return g + mu * self.buffer if self.nesterov else self.buffer.clone()
        self.buffer = mu * self.buffer + (1 - mu) * g
        return (1 - mu) * g + mu * self.buffer if self.nesterov else self.buffer.clone()

    def precondition(self, u, g):
        b2 = self.beta2
        correction = 1 - b2 ** self.t if self.bias_correction else 1.0
        if self.second_moment == "full":
            self.v = (torch.zeros_like(g) if self.v is None else self.v) * b2 + (1 - b2) * g * g
            v_hat = self.v / correction
        else:  # factored: Adafactor's rank-one estimate from row and column sums
            g2 = g * g
            self.row = (torch.zeros(g.shape[0], dtype=g.dtype) if self.row is None else self.row) * b2 \
                + (1 - b2) * g2.sum(1)
            self.col = (torch.zeros(g.shape[1], dtype=g.dtype) if self.col is None else self.col) * b2 \
                + (1 - b2) * g2.sum(0)
            v_hat = torch.outer(self.row, self.col) / self.col.sum() / correction
        return u / (v_hat.sqrt() + self.second_moment_eps)

    def direction(self, u):
        if self.orthogonalize:
            return newton_schulz(u, self.ns_steps, self.ns_coefficients, self.ns_eps)
        return u * math.sqrt(min(u.shape)) / torch.linalg.norm(u)

    def normalize_neurons(self, o):
        """NorMuon: each row over the root of an EMA of its mean square, then
        the norm o had."""
        b2 = self.neuron_beta2
        self.neuron_v = (torch.zeros(o.shape[0], dtype=o.dtype) if self.neuron_v is None else self.neuron_v) * b2 \
            + (1 - b2) * (o * o).mean(1)
        o_hat = o / (self.neuron_v.sqrt() + self.neuron_eps)[:, None]
        return o_hat * torch.linalg.norm(o) / torch.linalg.norm(o_hat)

    def step(self, w, g):
        """The weight after one step (w and g float64 matrices)."""
        self.t += 1
        u = self.momentum_update(g)
        if self.second_moment != "none":
            u = self.precondition(u, g)
        o = self.direction(u)
        if self.neuron_norm:
            o = self.normalize_neurons(o)
        w = w * (1 - self.lr * self.weight_decay)
        return w - self.lr * scale(self.scale_rule, *w.shape) * o


class ReferenceAdamW:
    def __init__(self, lr=1e-3, betas=(0.9, 0.95), eps=1e-8, weight_decay=0.01):
        self.lr, self.betas, self.eps, self.weight_decay = lr, betas, eps, weight_decay
        self.m = self.v = None
        self.t = 0

    def step(self, w, g):
        b1, b2 = self.betas
        self.t += 1
        self.m = (torch.zeros_like(g) if self.m is None else self.m) * b1 + (1 - b1) * g
        self.v = (torch.zeros_like(g) if self.v is None else self.v) * b2 + (1 - b2) * g * g
        m_hat = self.m / (1 - b1 ** self.t)
        v_hat = self.v / (1 - b2 ** self.t)
        w = w * (1 - self.lr * self.weight_decay)
        return w - self.lr * m_hat / (v_hat.sqrt() + self.eps)


def reference_steps(references, weights, grads):
    """The weights after each step's gradients, one reference optimizer
    (ReferenceMuon, ReferenceAdamW) per weight."""
    out = [w.clone() for w in weights]
    for step_grads in grads:
        out = [r.step(w, g) for r, w, g in zip(references, out, step_grads)]
    return out


def optimizer_steps(make_optimizer, weights, grads):
    """The weights after each step's gradients under the optimizer that
    make_optimizer(params) builds, and that optimizer."""
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    optimizer = make_optimizer(params)
    for step_grads in grads:
        for p, g in zip(params, step_grads):
            p.grad = g.clone()
        optimizer.step()
    return [p.detach() for p in params], optimizer


def assert_equal_to_reference(got, expected, name):
    """Equal to the float64 reference up to rounding."""
    for g, e in zip(got, expected):
        assert torch.allclose(g, e, rtol=1e-10, atol=1e-12), f"{name}: off the reference by {(g - e).abs().max():.3g}"
