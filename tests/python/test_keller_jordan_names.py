"""Keller Jordan's muon package's names (SingleDeviceMuon,
SingleDeviceMuonWithAuxAdam, MuonWithAuxAdam) with that package's defaults:
the steps of the float64 reference Muon and Adam at those defaults (Muon lr
0.02, momentum 0.95, no weight decay; Adam lr 3e-4, betas (0.9, 0.95), eps
1e-10, no weight decay), and a group's own values override them."""
import torch

from muonlab.optim import MuonWithAuxAdam, SingleDeviceMuon, SingleDeviceMuonWithAuxAdam
from reference_muon import ReferenceAdamW, ReferenceMuon, assert_equal_to_reference, optimizer_steps, reference_steps

MATRICES = [(12, 8), (6, 10)]
VECTORS = [(10,), (6,)]
STEPS = 3


def weights_and_grads(shapes):
    # Vectors' gradients small enough (1e-9) that Adam's eps shows in the step.
    gen = torch.Generator().manual_seed(3)
    weights = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) * (1e-9 if len(s) == 1 else 1) for s in shapes]
             for _ in range(STEPS)]
    return weights, grads


def run(make_optimizer, weights, grads):
    return optimizer_steps(make_optimizer, weights, grads)[0]


def test_single_device_muon_has_the_packages_defaults():
    weights, grads = weights_and_grads(MATRICES)
    got = run(lambda p: SingleDeviceMuon(p, ns_dtype="fp64"), weights, grads)
    expected = reference_steps([ReferenceMuon(lr=0.02, momentum=0.95, weight_decay=0) for _ in weights], weights, grads)
    assert_equal_to_reference(got, expected, "defaults")
    # Its positional order: lr, weight_decay, momentum.
    got = run(lambda p: SingleDeviceMuon(p, 0.05, 0.01, 0.9, ns_dtype="fp64"), weights, grads)
    expected = reference_steps([ReferenceMuon(lr=0.05, momentum=0.9, weight_decay=0.01) for _ in weights], weights,
                               grads)
    assert_equal_to_reference(got, expected, "positional")


def with_aux_adam_steps(optimizer_class, adam_group_options, **options):
    weights, grads = weights_and_grads(MATRICES + VECTORS)
    matrices = len(MATRICES)

    def make(params):
        return optimizer_class([dict(params=params[:matrices], use_muon=True),
                                dict(params=params[matrices:], use_muon=False, **adam_group_options)],
                               ns_dtype="fp64", **options)

    return run(make, weights, grads), weights, grads, matrices


def test_with_aux_adam_has_the_packages_defaults_and_group_overrides():
    for optimizer_class in (SingleDeviceMuonWithAuxAdam, MuonWithAuxAdam):
        got, weights, grads, matrices = with_aux_adam_steps(optimizer_class, {})
        references = ([ReferenceMuon(lr=0.02, momentum=0.95, weight_decay=0) for _ in range(matrices)] +
                      [ReferenceAdamW(lr=3e-4, betas=(0.9, 0.95), eps=1e-10, weight_decay=0)
                       for _ in range(len(weights) - matrices)])
        assert_equal_to_reference(got, reference_steps(references, weights, grads), optimizer_class.__name__)
    overrides = {"lr": 1e-3, "betas": (0.8, 0.99), "eps": 1e-8, "weight_decay": 0.1}
    got, weights, grads, matrices = with_aux_adam_steps(SingleDeviceMuonWithAuxAdam, overrides)
    references = ([ReferenceMuon(lr=0.02, momentum=0.95, weight_decay=0) for _ in range(matrices)] +
                  [ReferenceAdamW(**overrides) for _ in range(len(weights) - matrices)])
    assert_equal_to_reference(got, reference_steps(references, weights, grads), "group overrides")
    # The constructor's options override the package's defaults too, and
    # Adam's eps counts: torch's 1e-8 is another step here.
    got, weights, grads, matrices = with_aux_adam_steps(SingleDeviceMuonWithAuxAdam, {}, lr=0.05, adamw_eps=1e-8)
    references = ([ReferenceMuon(lr=0.05, momentum=0.95, weight_decay=0) for _ in range(matrices)] +
                  [ReferenceAdamW(lr=3e-4, betas=(0.9, 0.95), eps=1e-8, weight_decay=0)
                   for _ in range(len(weights) - matrices)])
    assert_equal_to_reference(got, reference_steps(references, weights, grads), "constructor overrides")
    wrong_eps = [ReferenceAdamW(lr=3e-4, betas=(0.9, 0.95), eps=1e-10, weight_decay=0)
                 for _ in range(len(weights) - matrices)]
    adam_got, adam_wrong = got[matrices:], reference_steps(wrong_eps, weights[matrices:], [g[matrices:] for g in grads])
    assert max((g - w).abs().max().item() for g, w in zip(adam_got, adam_wrong)) > 1e-6
