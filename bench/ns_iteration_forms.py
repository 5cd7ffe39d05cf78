"""One Newton-Schulz iteration in several forms against the plain matmul ceiling.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4 \
        /usr/bin/python3 bench/ns_iteration_forms.py [threads]
    python3 bench/ns_iteration_forms.py --device cuda    # on a GPU

(tcmalloc as the muonlab executable has it: under glibc's malloc some runs
put each product's output in fresh pages, and the page faults show up as
lower rates.)

Times, in bf16 on the CPU (PyTorch's own ops, so the same LibTorch kernels
muonlab calls), one iteration X <- a X + (b A + c A A) X with A = X X^T:

  ceiling    the three products as plain bmm, nothing else;
  folded     muonlab's form on the CPU in bf16: bmm, baddbmm for B carrying
             b and c, a added to B's diagonal (in fp32, rounded once), then
             (a I + B) X as a plain bmm;
  factored   as folded, but B = b A + c A A as the plain bmm A (b I + c A),
             with b I + c A made by one elementwise pass over A (tried as a
             further fold; no faster than folded on the CPUs measured);
  fused      bmm, then two baddbmm carrying a, b and c (muonlab's form in
             fp32 and on the GPU);
  plain      three bmm and the axpy terms as separate elementwise ops;
  symmetric  X X^T and A A from three of their four half-size blocks (A is
             symmetric), 25% fewer FLOPs in those two products, the only
             way to exploit symmetry without a syrk in LibTorch.

Each form runs interleaved with the others, 7 times; the median is printed
with its share of the ceiling, and each form's result is checked against the
fused form in float64.

Then each product of one iteration on an MLP matrix, alone, in both
orientations: wide (768 x 3072, A = X X^T, then B X) and tall (3072 x 768,
as muonlab's step runs a tall matrix without transposing it: A = X^T X,
then X B), each rate over the plain X X^T of the wide matrix, the ceiling
`muonlab bench optim` divides by.
"""
import argparse
import time

import torch

A_COEF, B_COEF, C_COEF = 3.4445, -4.7750, 2.0315  # Keller Jordan's quintic


def ceiling(X):
    A = torch.bmm(X, X.transpose(1, 2))
    torch.bmm(A, A)
    return torch.bmm(A, X)


def fused(X):
    A = torch.bmm(X, X.transpose(1, 2))
    B = torch.baddbmm(A, A, A, beta=B_COEF, alpha=C_COEF)
    return torch.baddbmm(X, B, X, beta=A_COEF, alpha=1.0)


def folded(X):
    A = torch.bmm(X, X.transpose(1, 2))
    B = torch.baddbmm(A, A, A, beta=B_COEF, alpha=C_COEF)
    diagonal = B.diagonal(0, 1, 2)
    diagonal.copy_(diagonal.float() + A_COEF)
    return torch.bmm(B, X)


def factored(X):
    A = torch.bmm(X, X.transpose(1, 2))
    C = A * C_COEF
    diagonal = C.diagonal(0, 1, 2)
    diagonal.copy_(diagonal.float() + B_COEF)
    B = torch.bmm(A, C)  # b A + c A A = A (b I + c A)
    diagonal = B.diagonal(0, 1, 2)
    diagonal.copy_(diagonal.float() + A_COEF)
    return torch.bmm(B, X)


def plain(X):
    A = torch.bmm(X, X.transpose(1, 2))
    B = B_COEF * A + C_COEF * torch.bmm(A, A)
    return A_COEF * X + torch.bmm(B, X)


def gram_from_blocks(X):
    """X X^T from the row halves' three distinct block products."""
    half = X.shape[1] // 2
    top, bottom = X[:, :half].contiguous(), X[:, half:].contiguous()
    upper_left = torch.bmm(top, top.transpose(1, 2))
    upper_right = torch.bmm(top, bottom.transpose(1, 2))
    lower_right = torch.bmm(bottom, bottom.transpose(1, 2))
    return torch.cat([torch.cat([upper_left, upper_right], 2),
                      torch.cat([upper_right.transpose(1, 2), lower_right], 2)], 1)


def symmetric(X):
    A = gram_from_blocks(X)
    B = B_COEF * A + C_COEF * gram_from_blocks(A)  # A A = A A^T
    return torch.baddbmm(X, B, X, beta=A_COEF, alpha=1.0)


FORMS = [("ceiling", ceiling), ("factored", factored), ("folded", folded), ("fused", fused), ("plain", plain), ("symmetric", symmetric)]


def seconds(run, device):
    """One run's wall time; on a GPU, from a synchronized start to its end."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    run()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def median_seconds(run, device, repeats=9):
    run()
    times = sorted(seconds(run, device) for _ in range(repeats))
    return times[repeats // 2]


def products(device):
    wide = (torch.randn(1, 768, 3072) / 60).to(device, torch.bfloat16)
    tall = wide.transpose(1, 2).contiguous()
    A = torch.bmm(wide, wide.transpose(1, 2))
    B = torch.baddbmm(A, A, A, beta=B_COEF, alpha=C_COEF)
    gram_flops, square_flops = 2 * 768 * 768 * 3072, 2 * 768 ** 3
    runs = [
        ("X X^T, wide (the ceiling)", lambda: torch.bmm(wide, wide.transpose(1, 2)), gram_flops),
        ("X^T X, tall", lambda: torch.bmm(tall.transpose(1, 2), tall), gram_flops),
        ("b A + c A A (baddbmm)", lambda: torch.baddbmm(A, A, A, beta=B_COEF, alpha=C_COEF), square_flops),
        ("A A (bmm)", lambda: torch.bmm(A, A), square_flops),
        ("a X + B X, wide (baddbmm)", lambda: torch.baddbmm(wide, B, wide, beta=A_COEF, alpha=1.0), gram_flops),
        ("B X, wide (bmm)", lambda: torch.bmm(B, wide), gram_flops),
        ("a X + X B, tall (baddbmm)", lambda: torch.baddbmm(tall, tall, B, beta=A_COEF, alpha=1.0), gram_flops),
        ("X B, tall (bmm)", lambda: torch.bmm(tall, B), gram_flops),
    ]
    rates = [flops / median_seconds(run, device) for _, run, flops in runs]
    print("one iteration's products on an MLP matrix, alone, median of 9:")
    for (name, _, _), rate in zip(runs, rates):
        print(f"  {name:<28} {rate / 1e9:5.0f} GFLOP/s  {rate / rates[0]:.2f} of the ceiling")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("threads", nargs="?", type=int, default=2, help="CPU threads (default 2)")
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"{torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {where}, bf16, median of 7")
    # GPT-2 small's shapes on the GPU (its batched buckets hold 12 matrices).
    count = 12 if device.type == "cuda" else 4
    for shape in [(1, 768, 768), (1, 768, 3072), (count, 768, 768), (count, 768, 3072)][:3 + (device.type == "cuda")]:
        X = torch.randn(*shape, device=device).bfloat16()
        X = X / X.float().norm(dim=(1, 2), keepdim=True).bfloat16()
        reference = fused(X.double())
        for _, form in FORMS:
            form(X)  # warm-up
        times = {name: [] for name, _ in FORMS}
        for _ in range(7):
            for name, form in FORMS:
                times[name].append(seconds(lambda: form(X), device))
        median = {name: sorted(t)[3] for name, t in times.items()}
        count, m, n = shape
        flops = count * (4 * m * m * n + 2 * m ** 3)
        print(f"{shape}:")
        for name, form in FORMS:
            check = "" if name == "ceiling" else (
                f", max diff vs fp64 fused {(form(X).double() - reference).abs().max().item():.1e}")
            print(f"  {name:<10} {median[name] * 1e3:7.1f} ms  {flops / median[name] / 1e9:5.0f} GFLOP/s"
                  f"  {median['ceiling'] / median[name]:.2f} of ceiling{check}")
    products(device)


if __name__ == "__main__":
    main()
