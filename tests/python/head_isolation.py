"""The check that a head layout is the head the forward pass uses, for any
model whose attention output projection takes the heads' outputs side by
side: changing the slice a layout gives head h (its rows, or the columns of
a weight stored [in, out]) changes the output of exactly the query heads
that read it (one, or a GQA group for a key/value head), as the output
projection's layout slices its input. Used on transformers' own models and
on tiny plain-torch ones."""
import torch

ATTENTION_PARTS = ("attn", "self_attn", "attention", "self_attention")


def attention_prefix(name):
    """The name up to its first part that names an attention module
    (transformer.h.0.attn, bert.encoder.layer.0.attention), else None."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part in ATTENTION_PARTS:
            return ".".join(parts[:i + 1])
    return None


def first_attention(routing):
    """(prefix, routes): the weights with a head layout of the first
    attention module."""
    with_heads = [r for r in routing if r["heads"] is not None]
    assert with_heads, "param_groups found no attention weight"
    prefix = attention_prefix(with_heads[0]["name"])
    return prefix, [r for r in with_heads if attention_prefix(r["name"]) == prefix]


def query_heads(layout, n_head):
    """For each head of a layout, the query heads that read it: itself for
    a query head, a group of n_head / H_kv for a key or value head."""
    counts = layout.segments if layout.projection == "qkv" else (layout.num_heads,)
    reads = []
    for count in counts:
        group = n_head // count
        reads += [set(range(h * group, (h + 1) * group)) for h in range(count)]
    return reads


def check_heads_of_first_attention(model, routing, forward):
    """Perturbs each head of each layout of the first attention module in
    turn and asserts that only the query heads reading it change their
    output; `forward()` runs the model on fixed inputs. Returns (heads
    checked, query heads)."""
    _, routes = first_attention(routing)
    output = next(r for r in routes if r["heads"].projection == "o")
    n_head, head_size = output["heads"].num_heads, output["heads"].head_dim
    captured = []
    module = model.get_submodule(output["name"].rsplit(".", 1)[0])
    module.register_forward_pre_hook(lambda _, inputs: captured.append(inputs[0].detach().clone()))

    def per_head():
        captured.clear()
        with torch.no_grad():
            forward()
        y = captured[-1]
        return y.reshape(*y.shape[:-1], n_head, head_size)

    base = per_head()
    checked = 0
    for route in routes:
        layout = route["heads"]
        if layout.projection == "o":
            continue
        weight = model.get_parameter(route["name"])
        axis = 0 if layout.axis == "rows" else 1
        if route["transposed"]:
            axis = 1 - axis
        for head, ((begin, end), readers) in enumerate(zip(layout.head_ranges(), query_heads(layout, n_head))):
            block = weight.narrow(axis, begin, end - begin)
            saved = block.detach().clone()
            with torch.no_grad():
                block.add_(torch.randn_like(saved))
            changed = (per_head() - base).abs().amax(dim=tuple(range(base.dim() - 2)) + (base.dim() - 1,))
            with torch.no_grad():
                block.copy_(saved)
            readers_change = min(changed[h] for h in readers)
            others = [changed[h] for h in range(n_head) if h not in readers]
            assert readers_change > 1e-6, (route["name"], head, changed)
            assert all(c <= 1e-12 * readers_change for c in others), (route["name"], head, changed)
            checked += 1
    return checked, n_head
