"""How far muonlab's Newton-Schulz lands from its float64 result in bf16,
in the standard form and in the Gram form with restarts every r steps.

    py=$(scripts/install-python | tail -1); "$py" bench/gram_ns_accuracy.py [rows cols]

For each input (a Gaussian matrix; singular values log-spaced from 1 down to
1e-3 and to 1e-5; rank 8 plus 1e-3 noise) and schedule (jordan K = 5,
polar_express K = 5, jordan K = 10), prints ||NS_bf16 - NS_fp64|| / ||NS_fp64||
with NS_fp64 the standard form in float64 (the Gram form equals it there to
rounding: tests/optimizers/gram_newton_schulz_test.cpp). Every number but
the last column's comes from muonlab.newton_schulz, the optimizer's own code.
The last column is the form most Python Muon code runs (Keller Jordan's
`X = a * X + B @ X` with `B = b * A + c * A @ A`), in PyTorch's bf16 ops,
each product, scaling and sum rounded to bf16, for comparison.
"""
import sys

import torch

import muonlab

ROWS, COLS = (int(sys.argv[1]), int(sys.argv[2])) if len(sys.argv) == 3 else (768, 3072)
RESTARTS = [2, 3, 100]  # 100: no restart within K <= 10


def matrix_with_spectrum(singular_values, gen):
    m = singular_values.numel()
    U, _ = torch.linalg.qr(torch.randn(ROWS, m, generator=gen, dtype=torch.float64))
    V, _ = torch.linalg.qr(torch.randn(COLS, m, generator=gen, dtype=torch.float64))
    return (U * singular_values) @ V.T


def inputs():
    gen = torch.Generator().manual_seed(0)
    k = min(ROWS, COLS)
    yield "gaussian", torch.randn(ROWS, COLS, generator=gen, dtype=torch.float64)
    yield "spectrum 1..1e-3", matrix_with_spectrum(torch.logspace(0, -3, k, dtype=torch.float64), gen)
    yield "spectrum 1..1e-5", matrix_with_spectrum(torch.logspace(0, -5, k, dtype=torch.float64), gen)
    low_rank = torch.randn(ROWS, 8, generator=gen, dtype=torch.float64) @ torch.randn(8, COLS, generator=gen,
                                                                                       dtype=torch.float64)
    yield "rank 8 + 1e-3 noise", low_rank + 1e-3 * torch.randn(ROWS, COLS, generator=gen, dtype=torch.float64)


def python_form(G, coefficients, steps):
    triples, norm_scale, eps = muonlab.ns_schedule(coefficients)
    X = G.bfloat16()
    X = X / (X.norm() * norm_scale + eps)
    for k in range(steps):
        a, b, c = triples[min(k, len(triples) - 1)]
        A = X @ X.mT
        B = b * A + c * (A @ A)
        X = a * X + B @ X
    return X


def relative_error(value, reference):
    error = ((value.double() - reference).norm() / reference.norm()).item()
    return "nan" if error != error else f"{error:.3f}"


def main():
    schedules = [("jordan", 5), ("polar_express", 5), ("jordan", 10)]
    print(f"{ROWS} x {COLS}, bf16; relative error against the float64 standard form")
    header = f"{'input':<22} {'schedule':<18} {'standard':>9}" + "".join(f" {f'gram r={r}':>11}" for r in RESTARTS) + f" {'Python form':>12}"
    print(header)
    for name, G in inputs():
        for coefficients, steps in schedules:
            exact = muonlab.newton_schulz(G, steps, coefficients, "fp64")
            row = f"{name:<22} {f'{coefficients} K={steps}':<18} "
            row += f"{relative_error(muonlab.newton_schulz(G, steps, coefficients, 'bf16'), exact):>9}"
            for r in RESTARTS:
                gram = muonlab.newton_schulz(G, steps, coefficients, "bf16", method="gram", gram_restart=r)
                row += f" {relative_error(gram, exact):>11}"
            row += f" {relative_error(python_form(G, coefficients, steps), exact):>12}"
            print(row)


if __name__ == "__main__":
    main()
