"""muonlab.one_step_diagnostics: Group Muon's whitening gain and norm cost
against references computed here from the blocks themselves: nuclear norms
and ranks from torch's SVD for the exact terms, each block orthogonalized
on its own for the Newton-Schulz terms."""
import pytest
import torch

import muonlab
from muonlab.optim import HeadLayout


def blocks_of(G, layout, groups):
    """The sub-matrices of G holding each group's heads (a list of head
    numbers per group), cut from the layout's head ranges."""
    ranges = layout.head_ranges()
    axis = 0 if layout.axis == "rows" else 1
    blocks = []
    for heads in groups:
        index = torch.cat([torch.arange(*ranges[h]) for h in heads])
        blocks.append(G.index_select(axis, index))
    return blocks


def exact_terms(G, blocks):
    nuclear = lambda M: torch.linalg.svdvals(M.double()).sum().item()  # noqa: E731
    rank = lambda M: torch.linalg.matrix_rank(M.double()).item()  # noqa: E731
    return {"gain": sum(nuclear(B) for B in blocks) - nuclear(G), "cost": sum(rank(B) for B in blocks) - rank(G)}


def ns_terms(G, blocks, steps=5):
    ns = lambda M: muonlab.newton_schulz(M.double(), steps, "jordan", "fp64")  # noqa: E731
    inner = lambda M: (M.double() * ns(M)).sum().item()  # noqa: E731
    square = lambda M: ns(M).pow(2).sum().item()  # noqa: E731
    return {"gain": sum(inner(B) for B in blocks) - inner(G), "cost": sum(square(B) for B in blocks) - square(G)}


def assert_terms_close(measured, expected, tol=1e-9):
    for key in ("gain", "cost"):
        assert measured[key] == pytest.approx(expected[key], rel=tol, abs=tol), key


@pytest.mark.parametrize("grouping, groups", [
    ("contiguous", [[0, 1], [2, 3]]),
    ("strided", [[0, 2], [1, 3]]),
])
def test_query_heads_in_groups_of_two(grouping, groups):
    torch.manual_seed(0)
    layout = HeadLayout("q", num_heads=4, head_dim=8)
    G = torch.randn(32, 24, dtype=torch.float64)
    terms = muonlab.one_step_diagnostics(G, layout, group_size=2, grouping=grouping, dtype="fp64")
    blocks = blocks_of(G, layout, groups)
    assert_terms_close(terms["exact"], exact_terms(G, blocks))
    assert_terms_close(terms["ns"], ns_terms(G, blocks))
    # Exact grouping always gains and always pays: blocks of 16 x 24 have
    # rank 16 each, the whole 32 x 24 rank 24.
    assert terms["exact"]["gain"] > 0
    assert terms["exact"]["cost"] == pytest.approx(2 * 16 - 24)


def test_output_projection_cuts_columns_and_a_conv1d_weight_reads_the_same():
    torch.manual_seed(1)
    layout = HeadLayout("o", num_heads=4, head_dim=4)
    G = torch.randn(24, 16, dtype=torch.float64)
    terms = muonlab.one_step_diagnostics(G, layout, group_size=1, dtype="fp64")
    blocks = blocks_of(G, layout, [[0], [1], [2], [3]])
    assert_terms_close(terms["exact"], exact_terms(G, blocks))
    assert_terms_close(terms["ns"], ns_terms(G, blocks))
    stored_in_out = muonlab.one_step_diagnostics(G.t().contiguous(), layout, group_size=1, dtype="fp64",
                                                 transposed=True)
    assert_terms_close(stored_in_out["exact"], terms["exact"])
    assert_terms_close(stored_in_out["ns"], terms["ns"])


def test_fused_qkv_with_fewer_key_value_heads_keeps_them_whole():
    # 4 query heads, 2 key and 2 value heads: at g = 2 the queries make two
    # blocks and the keys and the values one block each.
    torch.manual_seed(2)
    layout = HeadLayout("qkv", num_heads=8, head_dim=4, segments=(4, 2, 2))
    G = torch.randn(32, 20, dtype=torch.float64)
    terms = muonlab.one_step_diagnostics(G, layout, group_size=2, dtype="fp64")
    blocks = blocks_of(G, layout, [[0, 1], [2, 3], [4, 5], [6, 7]])
    assert_terms_close(terms["exact"], exact_terms(G, blocks))
    assert_terms_close(terms["ns"], ns_terms(G, blocks))


def test_one_group_of_every_head_is_the_whole_matrix():
    G = torch.randn(32, 24)
    terms = muonlab.one_step_diagnostics(G, ("q", 4, 8), group_size=4)
    # The block and the whole are factored apart, so only up to rounding.
    for source in ("ns", "exact"):
        assert_terms_close(terms[source], {"gain": 0.0, "cost": 0.0})


def test_random_groups_come_from_the_generator():
    G = torch.randn(32, 24)
    draw = lambda seed: muonlab.one_step_diagnostics(  # noqa: E731
        G, ("q", 4, 8), group_size=2, grouping="random", generator=torch.Generator().manual_seed(seed))
    assert draw(3) == draw(3)
    with pytest.raises(ValueError, match="grouping='random' draws its groups from `generator`"):
        muonlab.one_step_diagnostics(G, ("q", 4, 8), group_size=2, grouping="random")


def test_descent_difference_is_the_bound_change():
    terms = {"gain": 3.0, "cost": 8.0}
    assert muonlab.descent_difference(terms, eta=0.1, beta=2.0) == pytest.approx(0.1 * 3.0 - 2.0 * 0.01 / 2 * 8.0)


@pytest.mark.parametrize("G, heads, kwargs, message", [
    (torch.randn(30, 24), ("q", 4, 8), {"group_size": 2}, "does not cover it"),
    (torch.randn(32, 24), ("q", 4, 8), {"group_size": 3}, "3"),
    (torch.randn(32, 24), ("q", 4, 8), {"group_size": 0}, "group_size = 0: expected heads per group >= 1"),
    (torch.randn(32), ("q", 4, 8), {"group_size": 1}, "expected a matrix"),
    (torch.randn(32, 24), ("q", 4, 8), {"group_size": 2, "grouping": "stided"}, "did you mean 'strided'"),
])
def test_bad_input_raises_value_error_naming_it(G, heads, kwargs, message):
    with pytest.raises(ValueError, match=message):
        muonlab.one_step_diagnostics(G, heads, **kwargs)


def with_gradients(model):
    torch.manual_seed(1)
    idx = torch.randint(0, 64, (2, 16))
    torch.nn.functional.cross_entropy(model(idx).flatten(0, 1), idx.roll(-1, 1).flatten()).backward()
    return model


def gpt_with_gradients(seed=0, hugging_face=False):
    from tiny_models import GPT, hugging_face_gpt2
    torch.manual_seed(seed)
    model = GPT()
    return with_gradients(hugging_face_gpt2(model) if hugging_face else model)


def measure(model, **options):
    groups, routing = muonlab.optim.param_groups(model, return_routing=True)
    opt = muonlab.optim.MuonWithAuxAdamW(groups, group_size=2, ns_dtype="fp64")
    return opt.one_step_diagnostics(**options), routing


def test_an_optimizer_measures_each_attention_weight_with_its_groups_settings():
    model = gpt_with_gradients()
    measured, routing = measure(model, group_sizes=[1, 2])
    attention = {r["name"]: r for r in routing if r["heads"] is not None}
    assert set(measured) == {1, 2}
    parameters = dict(model.named_parameters())
    for g in (1, 2):
        assert set(measured[g]["params"]) == set(attention)  # c_attn and attn.c_proj of both blocks
        for name, route in attention.items():
            expected = muonlab.one_step_diagnostics(parameters[name].grad, route["heads"], g, dtype="fp64")
            for source in ("ns", "exact"):
                assert_terms_close(measured[g]["params"][name][source], expected[source])
        for source in ("ns", "exact"):
            for key in ("gain", "cost"):
                total = sum(t[source][key] for t in measured[g]["params"].values())
                assert measured[g]["total"][source][key] == pytest.approx(total)
    # Without group_sizes: the group's own size.
    assert set(measure(model)[0]) == {2}


def test_hugging_face_conv1d_weights_measure_as_their_nanogpt_twins():
    nanogpt, _ = measure(gpt_with_gradients(), group_sizes=[1])
    hugging_face, _ = measure(gpt_with_gradients(hugging_face=True), group_sizes=[1])
    assert set(hugging_face[1]["params"]) == set(nanogpt[1]["params"])
    for name, terms in nanogpt[1]["params"].items():
        for source in ("ns", "exact"):
            for key in ("gain", "cost"):
                assert hugging_face[1]["params"][name][source][key] == pytest.approx(terms[source][key], rel=1e-6,
                                                                                    abs=1e-9)


def test_measuring_changes_neither_the_weights_nor_the_random_groups():
    def step(measure):
        model = gpt_with_gradients(seed=3)
        opt = muonlab.optim.MuonWithAuxAdamW(muonlab.optim.param_groups(model), group_size=2, grouping="random")
        for _ in range(2):
            if measure:
                opt.one_step_diagnostics()
            opt.step()
        return [p.detach().clone() for p in model.parameters()]
    for measured, plain in zip(step(True), step(False)):
        assert torch.equal(measured, plain)
