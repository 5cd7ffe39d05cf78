"""Times muonlab's Muon step from Python against a plain-PyTorch Muon.

    python -m muonlab.bench [--device cpu|cuda] [--layers 12] [--repeats N] [--quick]

The matrices are GPT-2 small's (per layer c_attn 2304x768, attention c_proj
768x768, c_fc 3072x768, MLP c_proj 768x3072, in torch's out x in layout),
with fixed random gradients. Variants, each on its own copy of the weights:

- plain PyTorch: Muon as the popular Python implementations write it (Keller
  Jordan's muon.py): per matrix, an EMA momentum with Nesterov, five
  Newton-Schulz steps with (3.4445, -4.7750, 2.0315), the sqrt(max(1, r/c))
  scale, decoupled weight decay; NS in the dtype muonlab's ns_dtype="auto"
  picks (bf16 on CUDA and on CPUs with bf16 instructions, fp32 elsewhere);
- muonlab.optim.Muon.step(): one batched C++ call per step;
- the C++ call alone: the same muonlab._C.muon_step call with its argument
  list built once, so step() minus it is the Python layer's overhead;
- torch.optim.Muon, PyTorch's own (2.9 and later; NS one matrix at a time,
  always in bf16), with the same options, where this torch has it.

Then AdamW on the same matrices: torch.optim.AdamW as its users get it (the
default implementation, and fused=True where this torch has it for the
device) against muonlab's AdamW (MuonWithAuxAdamW's use_muon=False groups).

Before timing, both implementations take the same gradients for a few steps
and their weight changes must agree (a benchmark of two different
computations would be worthless), with NS in fp32 and, on CUDA, in the bf16
that is timed; the bench stops if they do not.
"""
import argparse
import os
import platform
import statistics
import sys
import time

import torch

from . import _C
from .optim import Muon, MuonWithAuxAdamW

JORDAN = (3.4445, -4.7750, 2.0315)
LR = 0.02
WEIGHT_DECAY = 0.1
MOMENTUM = 0.95
NS_STEPS = 5
# Steps from the same gradients before the weights are compared: two, so
# that the momentum buffer (zero before the first) takes part.
AGREEMENT_STEPS = 2
# Relative difference of the weight changes allowed. fp32 NS agrees to about
# 1e-6. Two bf16 runs of Jordan's NS, which does not settle on the singular
# values, differ by up to 7% (CPU, small matrices); a different convention
# (Nesterov left out, other coefficients) by 30% or more.
TOLERANCE = {"fp32": 1e-3, "bf16": 0.15}
ADAMW_LR = 1e-3
ADAMW_BETAS = (0.9, 0.95)
ADAMW_EPS = 1e-8
# Both AdamWs in fp32 differ by rounding alone (about 2e-7 relative here).
ADAMW_TOLERANCE = 1e-4


class AgreementError(RuntimeError):
    """The two implementations' updates differ: the timing would compare
    different computations."""


# -- plain PyTorch Muon -----------------------------------------------------


def auto_ns_dtype(device):
    """muonlab's ns_dtype="auto": bf16 on CUDA and on CPUs with bf16
    instructions (AVX512-BF16, AMX), fp32 elsewhere."""
    return _C.auto_ns_dtype(str(device))


def zeropower_via_newtonschulz5(G, steps, coefficients=JORDAN, eps=1e-7, dtype="fp32"):
    """NS_5(G) as Keller Jordan's muon.py computes it (which always uses
    bf16; here in `dtype`, "bf16" or "fp32")."""
    a, b, c = coefficients
    X = G.bfloat16() if dtype == "bf16" else G.float()
    tall = G.size(-2) > G.size(-1)
    if tall:
        X = X.mT
    X = X / (X.norm(dim=(-2, -1), keepdim=True) + eps)
    for _ in range(steps):
        A = X @ X.mT
        B = b * A + c * A @ A
        X = a * X + B @ X
    return X.mT if tall else X


def muon_update(grad, momentum_buffer, beta=MOMENTUM, ns_steps=NS_STEPS, nesterov=True, coefficients=JORDAN,
                ns_dtype="fp32"):
    momentum_buffer.lerp_(grad, 1 - beta)
    update = grad.lerp_(momentum_buffer, beta) if nesterov else momentum_buffer
    update = zeropower_via_newtonschulz5(update, ns_steps, coefficients, dtype=ns_dtype)
    return update * max(1, grad.size(-2) / grad.size(-1)) ** 0.5


class PlainMuon(torch.optim.Optimizer):
    """Muon one matrix at a time in plain PyTorch, as muon.py's Muon."""

    def __init__(self, params, lr=LR, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM, nesterov=True,
                 coefficients=JORDAN, ns_dtype="fp32"):
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum, nesterov=nesterov,
                                      coefficients=coefficients, ns_dtype=ns_dtype))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["momentum_buffer"] = torch.zeros_like(p)
                update = muon_update(p.grad, state["momentum_buffer"], beta=group["momentum"],
                                     nesterov=group["nesterov"], coefficients=group["coefficients"],
                                     ns_dtype=group["ns_dtype"])
                p.mul_(1 - group["lr"] * group["weight_decay"])
                p.add_(update.reshape(p.shape), alpha=-group["lr"])


def muonlab_muon(params, **options):
    return Muon(params, lr=LR, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM, **options)


# -- matrices and gradients ------------------------------------------------


def gpt2_shapes(layers, width):
    """Per layer: c_attn, attention c_proj, c_fc, MLP c_proj (out x in)."""
    return [(3 * width, width), (width, width), (4 * width, width), (width, 4 * width)] * layers


def random_tensors(shapes, device, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(shape, generator=gen) * scale).to(device) for shape in shapes]


def parameters_from(weights, grads):
    """Fresh parameters with copies of `weights` and `grads` (the plain
    implementation changes its gradients in place)."""
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    for p, g in zip(params, grads):
        p.grad = g.clone()
    return params


# -- agreement --------------------------------------------------------------


def relative_differences(changes, reference_changes):
    """||a - b|| / ||b|| per matrix, in float64."""
    out = []
    for a, b in zip(changes, reference_changes):
        a, b = a.double(), b.double()
        out.append(((a - b).norm() / b.norm()).item())
    return out


def check_agreement(changes, reference_changes, tolerance, what="muonlab and plain PyTorch Muon"):
    """The worst relative difference of the weight changes; raises
    AgreementError when it exceeds `tolerance` (or is not a number)."""
    if len(changes) != len(reference_changes):
        raise AgreementError(f"{len(changes)} weight changes against {len(reference_changes)}")
    differences = relative_differences(changes, reference_changes)
    failing = [i for i, difference in enumerate(differences) if not difference <= tolerance]  # NaN fails too
    if failing:
        matrix = failing[0]
        raise AgreementError(f"{what} disagree: weight changes of matrix {matrix} differ by "
                             f"{differences[matrix]:.3g} (relative) > tolerance {tolerance:g} ({len(failing)} of "
                             f"{len(differences)} matrices); the timing would compare different computations")
    return max(differences)


def steps_from(optimizer, params, grad_sets):
    """The weight changes of len(grad_sets) steps of `optimizer`."""
    before = [p.detach().clone() for p in params]
    for grads in grad_sets:
        for p, g in zip(params, grads):
            p.grad.copy_(g)
        optimizer.step()
    return [p.detach() - b for p, b in zip(params, before)]


def measure_agreement(plain, plain_params, ours, our_params, grad_sets, tolerance,
                      what="muonlab and plain PyTorch Muon"):
    """Steps both optimizers from the same gradients and checks that their
    weight changes agree; returns the worst relative difference."""
    theirs = steps_from(plain, plain_params, grad_sets)
    mine = steps_from(ours, our_params, grad_sets)
    return check_agreement(mine, theirs, tolerance, what)


def agreeing_pair(weights, grad_sets, ns_dtype, **options):
    """The plain and the muonlab optimizer (with `options`) with NS in
    `ns_dtype`, each over its own copy of `weights`, after AGREEMENT_STEPS
    steps from the same gradients that left their weights in agreement (else
    AgreementError): ((plain, its params), (muonlab, its params), worst
    difference)."""
    plain_params = parameters_from(weights, grad_sets[0])
    our_params = parameters_from(weights, grad_sets[0])
    plain = PlainMuon(plain_params, ns_dtype=ns_dtype)
    ours = muonlab_muon(our_params, ns_dtype=ns_dtype, **options)
    worst = measure_agreement(plain, plain_params, ours, our_params, grad_sets, TOLERANCE[ns_dtype])
    chosen = "".join(f", {key}={value!r}" for key, value in options.items())
    print(f"agreement, NS in {ns_dtype}{chosen}: weight changes after {AGREEMENT_STEPS} steps from the same "
          f"gradients differ by at most {worst:.2e} (relative, tolerance {TOLERANCE[ns_dtype]:g}): OK", flush=True)
    return (plain, plain_params), (ours, our_params), worst


def torch_muon(params):
    return torch.optim.Muon(params, lr=LR, weight_decay=WEIGHT_DECAY, momentum=MOMENTUM, nesterov=True,
                            ns_coefficients=JORDAN, ns_steps=NS_STEPS)


def agreeing_torch_muon(weights, grad_sets):
    """torch.optim.Muon over its own copy of `weights`, after AGREEMENT_STEPS
    steps from the same gradients that left it in agreement with muonlab's
    Muon with NS in bf16, as torch's always runs it (else AgreementError);
    None, with a line saying so, where this torch has no torch.optim.Muon."""
    if not hasattr(torch.optim, "Muon"):
        print(f"torch.optim.Muon: not in torch {torch.__version__} (PyTorch 2.9 and later have it)", flush=True)
        return None
    their_params = parameters_from(weights, grad_sets[0])
    our_params = parameters_from(weights, grad_sets[0])
    theirs = torch_muon(their_params)
    ours = muonlab_muon(our_params, ns_dtype="bf16")
    worst = measure_agreement(theirs, their_params, ours, our_params, grad_sets, TOLERANCE["bf16"],
                              "muonlab and torch.optim.Muon")
    print(f"agreement, torch.optim.Muon against muonlab with NS in bf16: weight changes differ by at most "
          f"{worst:.2e} (relative, tolerance {TOLERANCE['bf16']:g}): OK", flush=True)
    return theirs


def muonlab_adamw(params):
    return MuonWithAuxAdamW([dict(params=params, use_muon=False)], adamw_lr=ADAMW_LR, adamw_betas=ADAMW_BETAS,
                            adamw_eps=ADAMW_EPS, adamw_weight_decay=WEIGHT_DECAY)


def torch_adamw(params, **implementation):
    return torch.optim.AdamW(params, lr=ADAMW_LR, betas=ADAMW_BETAS, eps=ADAMW_EPS, weight_decay=WEIGHT_DECAY,
                             **implementation)


def agreeing_adamws(weights, grad_sets):
    """torch's AdamW variants and muonlab's, each over its own copy of
    `weights`, after AGREEMENT_STEPS steps from the same gradients that left
    every torch variant's weights in agreement with muonlab's (else
    AgreementError): [(name, optimizer)], muonlab's last. A variant this
    torch lacks for the device (fused=True before PyTorch 2.4 on CPU) is
    left out with a line saying so."""
    ours_params = parameters_from(weights, grad_sets[0])
    ours = muonlab_adamw(ours_params)
    ours_changes = steps_from(ours, ours_params, grad_sets)
    variants = []
    for name, implementation in (("torch.optim.AdamW (default)", {}),
                                 ("torch.optim.AdamW(fused=True)", {"fused": True})):
        params = parameters_from(weights, grad_sets[0])
        try:
            optimizer = torch_adamw(params, **implementation)
            changes = steps_from(optimizer, params, grad_sets)
        except (RuntimeError, TypeError, ValueError) as error:
            print(f"{name}: not available here ({str(error).splitlines()[0]})", flush=True)
            continue
        worst = check_agreement(ours_changes, changes, ADAMW_TOLERANCE, f"muonlab and {name}")
        print(f"agreement, AdamW against {name}: weight changes differ by at most {worst:.2e} (relative, "
              f"tolerance {ADAMW_TOLERANCE:g}): OK", flush=True)
        variants.append((name, optimizer))
    return variants + [("muonlab AdamW (MuonWithAuxAdamW)", ours)]


# -- timing -----------------------------------------------------------------


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def median_ms(step, device, warmup, repeats):
    for _ in range(warmup):
        step()
    synchronize(device)
    times = []
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        step()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def cpp_call_alone(optimizer):
    """muonlab._C.muon_step as Muon.step() calls it, its argument list built
    once: the C++ step (with pybind11's argument conversion) without the
    Python work step() does per parameter."""
    groups = []
    for index, group in enumerate(optimizer.param_groups):
        entries = [optimizer._muon_entry(group, index, i, p) for i, p in enumerate(group["params"])]
        groups.append((group, entries))
    generator = optimizer._grouping_generator
    return lambda: _C.muon_step(groups, generator)


# -- main -------------------------------------------------------------------


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m muonlab.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--layers", type=int, default=12)
    parser.add_argument("--width", type=int, default=768, help="GPT-2's d_model (768: GPT-2 small)")
    parser.add_argument("--repeats", type=int, help="timed steps per variant (default 3 on CPU, 20 on CUDA)")
    parser.add_argument("--warmup", type=int,
                        help="untimed steps per variant after the agreement steps (default 0 on CPU, 5 on CUDA)")
    parser.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)),
                        help="torch threads on CPU (default: every core this process may use; Debian's torch "
                             "starts with one)")
    parser.add_argument("--quick", action="store_true", help="2 layers of width 64: a smoke test")
    args = parser.parse_args(argv)
    if args.quick:
        args.layers, args.width = 2, 64
    on_cuda = args.device.startswith("cuda")
    if args.repeats is None:
        args.repeats = 20 if on_cuda else 3
    if args.warmup is None:
        args.warmup = 5 if on_cuda else 0
    return args


def cpu_name():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def openmp_runtime_line():
    library, shared = _C.openmp_runtime()
    if not library:
        return "none (torch's own thread pool)" if shared else "unknown"
    return f"{library} ({'torch' if shared else 'NOT torch'}'s)"


def describe(device, shapes):
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    ns_dtype = auto_ns_dtype(device)
    params = sum(r * c for r, c in shapes)
    return (f"torch {torch.__version__}, muonlab {_C.version()}, device {device} ({name}), "
            f"{torch.get_num_threads()} CPU threads of {os.cpu_count()} cores\n"
            f"OpenMP runtime: {openmp_runtime_line()}\n"
            f"OpenMP idle threads: {_C.openmp_wait()}\n"
            f"{len(shapes)} matrices ({params / 1e6:.1f}M parameters), fp32 weights, NS in {ns_dtype}")


def print_table(rows, baseline_ms, baseline="plain"):
    print(f"{'variant':<36}{'ms/step':>12}{'vs ' + baseline:>10}")
    for name, ms in rows:
        print(f"{name:<36}{ms:>12.2f}{baseline_ms / ms:>9.2f}x")


def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)
    shapes = gpt2_shapes(args.layers, args.width)
    print(describe(device, shapes), flush=True)
    weights = random_tensors(shapes, device, seed=0, scale=0.02)
    grad_sets = [random_tensors(shapes, device, seed=1 + i) for i in range(AGREEMENT_STEPS)]
    # The formulas are checked in fp32, tightly; where bf16 is timed (CUDA,
    # bf16 CPUs) the bf16 pair is checked too, to bf16's rounding.
    timed_dtype = auto_ns_dtype(device)
    try:
        (plain, _), (ours, _), _ = agreeing_pair(weights, grad_sets, "fp32")
        if timed_dtype != "fp32":
            (plain, _), (ours, _), _ = agreeing_pair(weights, grad_sets, timed_dtype)
        # Gram Newton-Schulz: the same update (docs/algorithms.md) with fewer
        # FLOPs on the wide and tall matrices; checked like the default.
        _, (gram, _), _ = agreeing_pair(weights, grad_sets, timed_dtype, ns_method="gram")
        pytorch_muon = agreeing_torch_muon(weights, grad_sets)
    except AgreementError as error:
        sys.exit(f"muonlab.bench: {error}")
    plain_ms = median_ms(plain.step, device, args.warmup, args.repeats)
    step_ms = median_ms(ours.step, device, args.warmup, args.repeats)
    call_ms = median_ms(cpp_call_alone(ours), device, args.warmup, args.repeats)
    rows = [("plain PyTorch Muon (per-matrix loop)", plain_ms), ("muonlab.optim.Muon.step()", step_ms),
            ("muonlab._C.muon_step alone", call_ms)]
    if device.type == "cuda":
        # On CUDA muonlab batches same-shaped matrices; this row separates
        # what batching gains from what the C++ step does otherwise.
        looped = muonlab_muon(parameters_from(weights, grad_sets[0]), ns_dtype=timed_dtype, ns_batching="never")
        rows.append(("muonlab, ns_batching='never'", median_ms(looped.step, device, args.warmup + 2, args.repeats)))
    rows.append(("muonlab, ns_method='gram'", median_ms(gram.step, device, args.warmup, args.repeats)))
    if pytorch_muon is not None:
        rows.append(("torch.optim.Muon", median_ms(pytorch_muon.step, device, args.warmup, args.repeats)))
    print(f"median of {args.repeats} steps each, after {AGREEMENT_STEPS + args.warmup} untimed ones; muonlab's "
          "ns_batching='auto' batches by shape on CUDA, loops over the matrices on CPU")
    print_table(rows, plain_ms)
    overhead = step_ms - call_ms
    print(f"Python layer overhead: step() - C++ call = {overhead:.3f} ms, {overhead / step_ms:.2%} of the step")
    print()
    try:
        adamws = agreeing_adamws(weights, grad_sets)
    except AgreementError as error:
        sys.exit(f"muonlab.bench: {error}")
    adamw_rows = [(name, median_ms(optimizer.step, device, args.warmup, args.repeats)) for name, optimizer in adamws]
    print(f"AdamW on the same matrices, median of {args.repeats} steps each")
    print_table(adamw_rows, adamw_rows[0][1], baseline="torch")


if __name__ == "__main__":
    main()
