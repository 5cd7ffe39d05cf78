"""Head layouts for Group Muon, and param_groups(model): Muon / AdamW groups
built from a model the way muonlab's C++ roles route parameters."""
import difflib
import fnmatch
import warnings

import torch

from . import _C

# Projection -> (muonlab role, axis holding the heads). Q, K, V (and MLA's
# up-projections) stack their heads along the rows of the out x in weight;
# the output projection reads them along its columns.
_PROJECTIONS = {
    "q": ("attn_q", "rows"),
    "k": ("attn_k", "rows"),
    "v": ("attn_v", "rows"),
    "o": ("attn_o", "cols"),
    "qkv": ("attn_qkv", "rows"),
    "mla_up": ("mla_up", "rows"),
}


class HeadLayout:
    """Where an attention weight keeps its heads, so Group Muon can cut it
    into blocks of ``group_size`` heads.

    projection: "q", "k", "v", "o" (heads in columns), "qkv" (a fused
    Q/K/V weight, rows: first the query heads, then the key heads, then the
    value heads) or "mla_up". num_heads: heads in total; head_dim: rows (or
    columns) per head. segments: for "qkv", the heads of each part,
    (H, H_kv, H_kv); defaults to three equal parts. interleave: for "qkv"
    whose parts are dealt into repeated units instead of following each
    other: GPT-NeoX's and BLOOM's ``query_key_value`` holds each head's q, k
    and v rows together (interleave=H), Falcon's grouped-query one a unit of
    H/H_kv query heads, then a key and a value head (interleave=H_kv).
    """

    def __init__(self, projection, num_heads, head_dim, segments=None, interleave=1):
        if projection not in _PROJECTIONS:
            raise ValueError(f"HeadLayout projection={projection!r}: expected one of {', '.join(_PROJECTIONS)}")
        if not (isinstance(num_heads, int) and num_heads > 0):
            raise ValueError(f"HeadLayout num_heads={num_heads!r}: expected an integer > 0")
        if not (isinstance(head_dim, int) and head_dim > 0):
            raise ValueError(f"HeadLayout head_dim={head_dim!r}: expected an integer > 0")
        if projection == "qkv" and segments is None:
            if num_heads % 3:
                raise ValueError(f"HeadLayout('qkv', num_heads={num_heads}): give segments=(H, H_kv, H_kv) "
                                 "when the three parts differ")
            segments = (num_heads // 3,) * 3
        if segments is not None:
            segments = tuple(int(s) for s in segments)
            if sum(segments) != num_heads or any(s <= 0 for s in segments):
                raise ValueError(f"HeadLayout segments={segments}: expected positive head counts adding up to "
                                 f"num_heads={num_heads}")
            if projection == "qkv" and len(segments) != 3:
                raise ValueError(f"HeadLayout('qkv') segments={segments}: expected (H, H_kv, H_kv)")
        if not (isinstance(interleave, int) and interleave > 0):
            raise ValueError(f"HeadLayout interleave={interleave!r}: expected an integer > 0")
        if interleave > 1:
            if projection != "qkv":
                raise ValueError(f"HeadLayout({projection!r}, interleave={interleave}): only a fused 'qkv' weight "
                                 "interleaves its parts")
            if any(part % interleave for part in segments):
                raise ValueError(f"HeadLayout('qkv', interleave={interleave}): each unit holds the same number of "
                                 f"heads of every part, so {interleave} must divide segments={segments}")
        self.projection = projection
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.segments = segments
        self.interleave = interleave

    @property
    def role(self):
        return _PROJECTIONS[self.projection][0]

    @property
    def axis(self):
        return _PROJECTIONS[self.projection][1]

    def as_tuple(self):
        """A plain tuple (what param groups and state dicts store); the
        interleave only where it is not 1."""
        plain = (self.projection, self.num_heads, self.head_dim, self.segments)
        return plain + (self.interleave,) if self.interleave > 1 else plain

    @classmethod
    def from_value(cls, value):
        if isinstance(value, HeadLayout):
            return value
        if isinstance(value, (tuple, list)) and len(value) in (3, 4, 5) and isinstance(value[0], str):
            return cls(*value)
        raise ValueError(f"head layout {value!r}: expected a HeadLayout or (projection, num_heads, head_dim[, "
                         "segments[, interleave]])")

    def cpp_layout(self, transposed=False):
        """The C++ layout along the stored axes: a weight stored [in, out]
        (transformers' Conv1D) holds the heads along the other axis."""
        axis = {"rows": "cols", "cols": "rows"}[self.axis] if transposed else self.axis
        return (self.num_heads, self.head_dim, axis, list(self.segments or ()), self.interleave)

    def head_ranges(self):
        """Each head's rows (or, for "o", columns) [begin, end) of the out x
        in weight, heads numbered part by part (queries, keys, values): the
        slices Group Muon cuts, as muonlab's C++ reads the layout."""
        return [tuple(r) for r in _C.head_ranges(self.cpp_layout())]

    def __eq__(self, other):
        return isinstance(other, HeadLayout) and self.as_tuple() == other.as_tuple()

    def __repr__(self):
        segments = f", segments={self.segments}" if self.segments and self.projection == "qkv" else ""
        interleave = f", interleave={self.interleave}" if self.interleave > 1 else ""
        return (f"HeadLayout({self.projection!r}, num_heads={self.num_heads}, head_dim={self.head_dim}{segments}"
                f"{interleave})")


# -- param_groups(model) ---------------------------------------------------
#
# Routing follows muonlab's C++ roles (param_role.cpp): names containing these
# are embeddings; lm_head, or a whole name output.weight / head.weight, is the
# output head.
_EMBEDDING_NAMES = ("wte", "wpe", "embed", "tok_emb", "pos_emb")
_OUTPUT_HEAD_NAMES = ("output.weight", "head.weight")
# Beyond names, the model's last matrix is taken for its output layer when
# its outputs are the token embedding's vocabulary (an untied head of any
# name: PyTorch's word_language_model calls it decoder, nn.Sequential
# numbers it), or when its module is named as classifier heads are
# (transformers' classifier and score, torchvision's fc, timm's head).
_CLASSIFIER_MODULE_NAMES = ("classifier", "score", "fc", "head")
_NON_TOKEN_EMBEDDING_NAMES = ("wpe", "pos", "token_type")
# Attention modules, by the last part of their name, and the projections
# inside them (nanoGPT/GPT-2, Hugging Face LLaMA/Mistral/Qwen/Phi-3,
# BART/OPT/Whisper, Meta's LLaMA, Hugging Face DeepSeek-V2/V3's
# Multi-head Latent Attention, whose up-projections from the latents are
# q_b_proj and kv_b_proj, GPT-NeoX/BLOOM/Falcon/Persimmon's
# query_key_value and dense, timm's ViT qkv and proj, and Hugging Face
# ViT's query/key/value).
_ATTENTION_MODULES = ("attn", "self_attn", "attention", "self_attention", "encoder_attn", "cross_attn",
                      "crossattention")
_ATTENTION_PROJECTIONS = {
    "c_attn": "qkv", "qkv_proj": "qkv", "query_key_value": "qkv", "qkv": "qkv",
    "q_proj": "q", "k_proj": "k", "v_proj": "v", "query": "q", "key": "k", "value": "v",
    "c_proj": "o", "o_proj": "o", "out_proj": "o", "dense": "o", "proj": "o",
    "wq": "q", "wk": "k", "wv": "v", "wo": "o",
    "q_b_proj": "mla_up", "kv_b_proj": "mla_up",
}
# BERT's layout (RoBERTa, ViT and others copy it): the attention module
# holds its projections one level down, attention.self.{query,key,value}
# and attention.output.dense.
_NESTED_ATTENTION_PROJECTIONS = {("self", "query"): "q", ("self", "key"): "k", ("self", "value"): "v",
                                 ("output", "dense"): "o"}
# Attention classes (by name prefix) whose query_key_value holds each head's
# q, k and v rows together: the forward views it as [H, 3, head_dim].
_PER_HEAD_QKV_CLASSES = ("GPTNeoX", "Bloom", "Persimmon")
# torch.nn.MultiheadAttention's own parameters.
_MHA_PROJECTIONS = {"in_proj_weight": "qkv", "q_proj_weight": "q", "k_proj_weight": "k", "v_proj_weight": "v"}
# Attribute (or config key) names of the head counts, first found wins.
_COUNT_NAMES = {
    "n_head": ("n_head", "num_heads", "num_attention_heads", "n_heads"),
    "n_kv_head": ("n_kv_head", "num_key_value_heads", "num_kv_heads", "n_kv_heads"),
    "head_dim": ("head_dim",),
    # Multi-head Latent Attention's head sizes (DeepSeek's names), which
    # take precedence: there head_dim is the rotary part's size.
    "qk_nope_head_dim": ("qk_nope_head_dim",),
    "qk_rope_head_dim": ("qk_rope_head_dim",),
    "v_head_dim": ("v_head_dim",),
}
_MUON_OPTIONS = tuple(_C.muon_defaults("muon").keys())


def param_groups(model, *, lr=None, weight_decay=None, adamw_lr=None, adamw_weight_decay=None, heads=None,
                 n_head=None, n_kv_head=None, exclude=(), skip=(), transposed=(), verbose=False,
                 return_routing=False, **muon_options):
    """Param groups of ``model`` for ``MuonWithAuxAdamW``: Muon for hidden
    matrices, AdamW for the rest, with the head layouts of attention weights
    so that Group Muon (``group_size``) can cut them.

    Routing, as muonlab's C++ roles: parameters of fewer than 2 dimensions
    (biases, norm gains, scalars), embeddings (``nn.Embedding``, or a name
    containing wte, wpe, embed, tok_emb, pos_emb), the output head (lm_head,
    a whole name output.weight / head.weight, a weight tied to an
    embedding, or the model's last matrix when it has as many outputs as
    the token embedding has rows), a classifier head (the model's last
    matrix in a module named classifier, score, fc or head), MoE routers (a name containing "router", or a module named
    exactly ``gate``; LLaMA's ``mlp.gate_proj`` is a hidden matrix) and
    whatever ``exclude`` matches go to AdamW; every other matrix to Muon.
    Conv kernels of 4+ dimensions go to Muon (flattened), 3-D tensors whose
    name contains "expert" to a Muon group with ``nd_params="batch"``, 3-D
    kernels of ``nn.Conv1d`` (any ``nn.modules.conv._ConvNd``) to one with
    ``nd_params="flatten"``; any other 3-D tensor raises ValueError (exclude
    it, or skip it and give it a group of your own). Parameters that do not
    require grad are left out, tied weights appear once.

    Head layouts are inferred for projections inside an attention module
    (one whose name ends in attn, self_attn, attention, self_attention,
    encoder_attn or cross_attn): nanoGPT's fused ``c_attn`` [3C, C] (qkv,
    segments (H, H_kv, H_kv)) and ``c_proj`` (o; ``mlp.c_proj`` is not
    attention), ``q_proj``/``k_proj``/``v_proj``/``o_proj`` (GQA: k and v
    have H_kv heads), ``qkv_proj``, ``out_proj``, ``wq``/``wk``/``wv``/``wo``,
    ``nn.MultiheadAttention``, and DeepSeek's Multi-head Latent Attention:
    ``q_b_proj`` and ``kv_b_proj`` (mla_up: qk_nope_head_dim +
    qk_rope_head_dim, and qk_nope_head_dim + v_head_dim rows a head),
    ``q_proj`` and ``o_proj`` (v_head_dim columns a head), with MLA's head
    sizes read in place of head_dim (which DeepSeek's configs give the
    rotary part's size), GPT-NeoX/BLOOM/Persimmon/Falcon's fused
    ``query_key_value`` (qkv, with the ``interleave`` its attention class's
    forward uses; a class not known leaves it whole) and ``dense`` (o),
    timm's ViT ``qkv`` and ``proj``, and BERT's (RoBERTa's, ViT's)
    ``attention.self.query``/``key``/``value`` and
    ``attention.output.dense``.
    Head counts come from, in order: ``heads``
    (a dict of names or fnmatch patterns to a HeadLayout, or None to leave
    a weight whole), ``n_head``/``n_kv_head``, the attention module's
    attributes (n_head, num_heads, num_attention_heads, n_heads; n_kv_head,
    num_key_value_heads, num_kv_heads, n_kv_heads; head_dim), its
    ``config``, then ``model.config`` (Hugging Face configs included).
    H_kv defaults to H; head_dim defaults to the weight's size over the
    heads. A layout that does not fit the weight raises ValueError naming
    the parameter and the numbers, read as out x in. Weights of
    transformers' ``Conv1D`` (Hugging Face GPT-2) are stored [in, out], the
    transpose of ``nn.Linear``'s: their group gets ``transposed`` (one bool
    per parameter), so that Muon's shape scale, NorMuon's output neurons and
    Group Muon's head blocks read them the right way round.

    ``lr``, ``weight_decay`` and ``**muon_options`` (any Muon option, e.g.
    ``group_size=2``) go into every Muon group; ``adamw_lr`` and
    ``adamw_weight_decay`` into the one AdamW group (as its ``lr`` and
    ``weight_decay``); options left None take the optimizer's defaults.
    ``exclude`` and ``skip`` are names or fnmatch patterns (each must match
    a parameter): ``exclude`` sends matches to AdamW, ``skip`` leaves them
    out of every group. ``transposed`` names (or patterns) Muon weights
    stored [in, out] that are not ``Conv1D``'s, such as stacked MoE experts
    [E, in, out] applied as ``x @ W`` (each must match a Muon matrix).

    Returns the groups (Muon groups first, then AdamW; empty ones left out),
    or with ``return_routing=True`` (groups, routing): one dict per
    parameter, {name, shape, optimizer ("muon", "adamw" or None for left
    out), reason, heads (a HeadLayout or None), transposed}.
    ``verbose=True`` prints the routing, one line per parameter.
    """
    unknown = [key for key in muon_options if key not in _MUON_OPTIONS]
    if unknown:
        raise unknown_option_error("Muon", unknown[0], _MUON_OPTIONS)
    parameters = _model_parameters(model)
    context = _Context(model, n_head, n_kv_head, muon_options.get("group_size", 0), _as_patterns(transposed),
                       parameters)
    exclude, skip = _as_patterns(exclude), _as_patterns(skip)
    overrides = dict(heads or {})
    used = {"exclude": set(), "skip": set(), "heads": set(), "transposed": set()}  # the patterns that matched
    routing, kinds = [], []
    for entry in parameters:
        route, kind = _route(entry, context, exclude, skip, overrides, used)
        routing.append(route)
        kinds.append((entry.tensor, kind))
    for what, patterns in (("exclude", exclude), ("skip", skip), ("heads", overrides),
                           ("transposed", context.transposed)):
        for pattern in patterns:
            if pattern not in used[what]:
                matches = "Muon matrix" if what in ("heads", "transposed") else "parameter"
                raise ValueError(f"{what}: '{pattern}' matches no {matches} of the model")
    muon_group = dict(muon_options)
    muon_group.update(_given(lr=lr, weight_decay=weight_decay))
    groups = _build_groups(routing, kinds, muon_group, _given(lr=adamw_lr, weight_decay=adamw_weight_decay))
    if verbose:
        _print_routing(routing)
    return (groups, routing) if return_routing else groups


class _Param:
    """A parameter of the model: its first name, the tensor, and every
    (module name, module, attribute) holding it (several for tied weights)."""

    def __init__(self, name, tensor):
        self.name = name
        self.tensor = tensor
        self.owners = []

    @property
    def names(self):
        return [_joined(module_name, attribute) for module_name, _, attribute in self.owners]


class _Context:
    """What routing reads besides the parameter: the model, its modules by
    name, the n_head / n_kv_head arguments, the group size, and the
    patterns of weights stored transposed."""

    def __init__(self, model, n_head, n_kv_head, group_size, transposed, parameters):
        self.model = model
        self.modules = dict(model.named_modules())
        self.counts = {"n_head": n_head, "n_kv_head": n_kv_head}
        self.group_size = group_size or 0
        self.transposed = transposed
        matrices = [entry for entry in parameters if entry.tensor.dim() == 2 and entry.tensor.requires_grad]
        self.last_matrix = matrices[-1] if matrices else None
        # The token embedding's rows: not a position's or BERT's token type's
        # table, which can have more (a character model's block size).
        rows = [module.num_embeddings for name, module in self.modules.items()
                if isinstance(module, (torch.nn.Embedding, torch.nn.EmbeddingBag))
                and not any(part in name for part in _NON_TOKEN_EMBEDDING_NAMES)]
        self.vocab_size = max(rows, default=None)


def unknown_option_error(optimizer, key, known):
    """ValueError for an option `optimizer` does not take, naming the nearest known one where one is near."""
    near = difflib.get_close_matches(key, known, n=1)
    hint = f" (did you mean '{near[0]}'?)" if near else ""
    return ValueError(f"unknown {optimizer} option '{key}'{hint}: expected one of {', '.join(known)}")


def _joined(module_name, attribute):
    return f"{module_name}.{attribute}" if module_name else attribute


def _model_parameters(model):
    """Each parameter once, in named_parameters() order, with all its names."""
    found = {}
    for module_name, module in model.named_modules(remove_duplicate=False):
        for attribute, tensor in module.named_parameters(recurse=False):
            entry = found.setdefault(id(tensor), _Param(_joined(module_name, attribute), tensor))
            entry.owners.append((module_name, module, attribute))
    return list(found.values())


def _as_patterns(value):
    return (value,) if isinstance(value, str) else tuple(value)


def _matching(names, patterns):
    """The first pattern equal to one of `names`, else the first matching
    one as an fnmatch pattern, else None."""
    for pattern in patterns:
        if pattern in names:
            return pattern
    for pattern in patterns:
        if any(fnmatch.fnmatchcase(name, pattern) for name in names):
            return pattern
    return None


def _given(**options):
    return {key: value for key, value in options.items() if value is not None}


def _route(entry, context, exclude, skip, overrides, used):
    """(routing dict, Muon group kind: "matrix", "batch", "flatten" or
    None) of one parameter."""
    tensor, names = entry.tensor, entry.names
    route = {"name": entry.name, "shape": tuple(tensor.shape), "optimizer": "adamw", "reason": "", "heads": None,
             "transposed": False}
    skipped = _matching(names, skip)
    excluded = _matching(names, exclude)
    for what, pattern in (("skip", skipped), ("exclude", excluded)):
        if pattern is not None:
            used[what].add(pattern)
    if skipped is not None or not tensor.requires_grad:
        route["optimizer"] = None
        route["reason"] = f"skip={skipped!r}: left out" if skipped is not None else "does not require grad: left out"
        return route, None
    if excluded is not None:
        route["reason"] = f"exclude={excluded!r}"
        return route, None
    if tensor.dim() < 2:
        route["reason"] = _vector_kind(entry)
        return route, None
    adamw_role = _adamw_role(entry) or _last_layer_role(entry, context)
    if adamw_role:
        route["reason"] = adamw_role
        return route, None
    route["optimizer"] = "muon"
    marked = _matching(names, context.transposed)
    if marked is not None:
        used["transposed"].add(marked)
    if tensor.dim() == 2:
        route["transposed"] = marked is not None or _stored_in_out(entry)
        route["heads"], route["reason"] = _head_layout(entry, context, overrides, used, route["transposed"])
        if marked is not None:
            route["reason"] += f"; transposed={marked!r}: stored [in, out]"
        elif route["transposed"]:
            route["reason"] += "; stored [in, out] (transformers' Conv1D): transposed=True"
        return route, "matrix"
    kind, route["reason"] = _nd_kind(entry)
    if marked is not None:
        if kind != "batch":
            raise ValueError(f"transposed: '{marked}' matches '{entry.name}' of shape {list(tensor.shape)}, a kernel "
                             "read as out x (in*k...), which cannot be stored transposed; only 2-D weights and "
                             "stacks of matrices can")
        route["transposed"] = True
        route["reason"] += f"; transposed={marked!r}: each matrix stored [in, out]"
    return route, kind


def _stored_in_out(entry):
    """Whether a 2-D weight is stored [in, out], the transpose of
    nn.Linear's [out, in]: the weight of transformers' Conv1D (Hugging Face
    GPT-2), found by its class name so that transformers need not be
    installed. torch.nn.Conv1d is another class (Conv1d)."""
    _, module, attribute = entry.owners[0]
    return type(module).__name__ == "Conv1D" and attribute == "weight"


def _vector_kind(entry):
    module = entry.owners[0][1]
    if entry.name.endswith("bias"):
        return "bias"
    if "norm" in type(module).__name__.lower() or any(part in entry.name for part in ("norm", "ln")):
        return "norm gain"
    return "vector or scalar"


def _adamw_role(entry):
    """"embedding", "output head" or "MoE router" (with the names it is tied
    to), or None for a hidden matrix."""
    names = entry.names
    tied = f" (tied: {', '.join(names[1:])})" if len(names) > 1 else ""
    modules = [module for _, module, _ in entry.owners]
    if any(isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) for m in modules) or \
            any(part in name for name in names for part in _EMBEDDING_NAMES):
        return "embedding" + tied
    if any("lm_head" in name or name in _OUTPUT_HEAD_NAMES for name in names):
        return "output head" + tied
    if any("router" in name for name in names) or \
            any(module_name.rpartition(".")[2] == "gate" for module_name, _, _ in entry.owners):
        return "MoE router" + tied
    return None


def _last_layer_role(entry, context):
    """"output head" or "classifier head" when ``entry`` is the model's
    last matrix and reads as its output layer (see _CLASSIFIER_MODULE_NAMES),
    else None. Hidden matrices are never last in the models this reads
    (transformers', nanoGPT's, timm's, torchvision's register the head
    after the body); a model that ends in a hidden matrix of another width
    and name keeps it on Muon."""
    if entry is not context.last_matrix:
        return None
    rows = entry.tensor.shape[1] if _stored_in_out(entry) else entry.tensor.shape[0]
    if context.vocab_size is not None and rows == context.vocab_size:
        return f"output head (last matrix, {rows} outputs: the token embedding's vocabulary)"
    module_name = entry.owners[0][0]
    if module_name.rpartition(".")[2] in _CLASSIFIER_MODULE_NAMES:
        return f"classifier head (last matrix, module '{module_name}')"
    return None


def _nd_kind(entry):
    """Muon group kind and reason of a parameter of 3+ dimensions."""
    module = entry.owners[0][1]
    if entry.tensor.dim() >= 4:
        return "matrix", "kernel, flattened to out x (in*k...)"
    if "expert" in entry.name:
        return "batch", "stack of expert matrices (nd_params='batch')"
    if isinstance(module, torch.nn.modules.conv._ConvNd):
        return "flatten", "conv kernel, flattened to out x (in*k) (nd_params='flatten')"
    raise ValueError(f"parameter '{entry.name}' has shape {list(entry.tensor.shape)}: param_groups cannot tell "
                     "whether this 3-D tensor is a stack of matrices (nd_params='batch') or one kernel "
                     "(nd_params='flatten'); pass it in exclude= (AdamW), or in skip= and give it a Muon group of "
                     "your own with the nd_params it needs")


def _head_layout(entry, context, overrides, used, transposed):
    """(HeadLayout or None, reason) of a Muon matrix. The layout reads the
    weight as out x in, whichever way it is stored."""
    shape = tuple(entry.tensor.shape)[::-1] if transposed else tuple(entry.tensor.shape)
    key = _matching(entry.names, list(overrides))
    if key is not None:
        used["heads"].add(key)
        if overrides[key] is None:
            return None, f"heads[{key!r}] = None: whole matrix"
        layout = HeadLayout.from_value(overrides[key])
        _check_covers(entry.name, shape, layout)
        return layout, f"heads[{key!r}]: {layout.projection}, {_describe(layout)}"
    found = _attention_projection(entry, context.modules)
    if found is None:
        return None, "hidden matrix"
    projection, attention, attention_name = found
    what = f"attention {projection} projection"
    leaf = entry.owners[0][0].rpartition(".")[2]
    counts = _head_counts(attention, attention_name, context)
    if counts["n_head"][0] is None:
        if context.group_size > 0:
            warnings.warn(f"parameter '{entry.name}': {what} with no head count found (pass n_head= or heads=); "
                          "Group Muon leaves it whole")
        return None, f"{what}, head count unknown (pass n_head= or heads=): whole matrix"
    units = None
    if leaf == "query_key_value":
        units = _query_key_value_units(attention, counts)
        if units is None:
            return None, (f"{what} in {type(attention).__name__}, whose order of q, k and v rows is not known "
                          "(pass heads=): whole matrix")
    layout = _inferred_layout(entry.name, shape, projection, counts, leaf, units)
    return layout, f"{what}: {_describe(layout)} ({_sources(counts)})"


def _query_key_value_units(attention, counts):
    """(segments, interleave) of a fused ``query_key_value`` weight, as its
    attention module's forward splits it, or None for a module not known.
    GPT-NeoX, BLOOM, Persimmon and Falcon (neither multi-query nor its new
    decoder architecture) view it as [H, 3, head_dim]; Falcon's new
    architecture as [H_kv, H/H_kv + 2, head_dim]; Falcon's multi-query as
    [H + 2, head_dim], all queries then one key and one value."""
    n_head, n_kv_head = counts["n_head"][0], counts["n_kv_head"][0] or counts["n_head"][0]
    kind = type(attention).__name__
    per_head = ((n_head,) * 3, n_head)
    if kind.startswith(_PER_HEAD_QKV_CLASSES):
        return per_head
    if kind.startswith("Falcon"):
        if getattr(attention, "new_decoder_architecture", False):
            return (n_head, n_kv_head, n_kv_head), n_kv_head
        if getattr(attention, "multi_query", False):
            return (n_head, 1, 1), 1
        return per_head
    return None


def _attention_projection(entry, modules):
    """(projection, attention module, its name) when the parameter is an
    attention projection's weight, else None."""
    module_name, module, attribute = entry.owners[0]
    if isinstance(module, torch.nn.MultiheadAttention):
        projection = _MHA_PROJECTIONS.get(attribute)
        return (projection, module, module_name) if projection else None
    if attribute != "weight":
        return None
    parent_name, _, leaf = module_name.rpartition(".")
    parent = modules.get(parent_name)
    if isinstance(parent, torch.nn.MultiheadAttention):
        return ("o", parent, parent_name) if leaf == "out_proj" else None
    if parent_name and parent_name.rpartition(".")[2] in _ATTENTION_MODULES and leaf in _ATTENTION_PROJECTIONS:
        return _ATTENTION_PROJECTIONS[leaf], parent, parent_name
    grandparent_name, _, parent_leaf = parent_name.rpartition(".")
    projection = _NESTED_ATTENTION_PROJECTIONS.get((parent_leaf, leaf))
    if projection and grandparent_name.rpartition(".")[2] in _ATTENTION_MODULES:
        # Head counts from the module that holds them (BERT's attention.self).
        holder_name = parent_name if parent_leaf == "self" else f"{grandparent_name}.self"
        holder = modules.get(holder_name, modules.get(grandparent_name))
        return projection, holder, holder_name if holder_name in modules else grandparent_name
    return None


def _head_counts(attention, attention_name, context):
    """{"n_head", "n_kv_head", "head_dim" and MLA's head sizes} -> (value or
    None, where it was found), each from the first source that has it."""
    sources = [("the arguments", context.counts), (f"module '{attention_name}'", attention),
               (f"module '{attention_name}'.config", getattr(attention, "config", None)),
               ("model.config", getattr(context.model, "config", None))]
    counts = {}
    for key, names in _COUNT_NAMES.items():
        counts[key] = (None, None)
        for where, source in sources:
            value = _lookup(source, names)
            if value is not None:
                counts[key] = (value, where)
                break
    return counts


def _lookup(source, names):
    """The first of `names` that `source` (an object or a dict) holds as a
    positive integer, else None."""
    if source is None:
        return None
    for name in names:
        value = source.get(name) if isinstance(source, dict) else getattr(source, name, None)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _mla_head_dim(projection, leaf, counts):
    """The head size of a Multi-head Latent Attention projection, where the
    counts give MLA's sizes (v_head_dim and qk_nope_head_dim), else None:
    kv_b_proj holds each head's key part then its value, qk_nope_head_dim +
    v_head_dim rows; the query (q_proj, q_b_proj) qk_nope_head_dim +
    qk_rope_head_dim rows a head; o_proj reads v_head_dim columns a head."""
    nope, rope, v = (counts[key][0] for key in ("qk_nope_head_dim", "qk_rope_head_dim", "v_head_dim"))
    if v is None or nope is None:
        return None
    if projection == "o":
        return v
    if leaf == "kv_b_proj":
        return nope + v
    if projection in ("q", "mla_up") and rope is not None:
        return nope + rope
    return None


def _inferred_layout(name, shape, projection, counts, leaf, units=None):
    """The HeadLayout of a `projection` weight of `shape` from the head
    counts (and a fused QKV's (segments, interleave) where the module fixes
    them); raises ValueError when they do not fit the weight."""
    n_head = counts["n_head"][0]
    n_kv_head = counts["n_kv_head"][0] or n_head
    head_dim = _mla_head_dim(projection, leaf, counts) or counts["head_dim"][0]
    segments, interleave = units or ({"q": (n_head,), "k": (n_kv_head,), "v": (n_kv_head,), "o": (n_head,),
                                      "qkv": (n_head, n_kv_head, n_kv_head), "mla_up": (n_head,)}[projection], 1)
    heads = sum(segments)
    axis = 1 if projection == "o" else 0
    extent = shape[axis]
    if head_dim is None and extent % heads == 0:
        head_dim = extent // heads
    if head_dim is None or heads * head_dim != extent:
        found = _sources(counts)
        size = f" of head_dim {head_dim}" if head_dim else ""
        raise ValueError(f"parameter '{name}' of shape {list(shape)}: its {extent} {('rows', 'columns')[axis]} do "
                         f"not hold {' + '.join(map(str, segments))} heads{size} ({found}); pass n_head=/n_kv_head=, "
                         f"or heads={{'{name}': HeadLayout(...) or None}}")
    return HeadLayout(projection, heads, head_dim, segments if projection == "qkv" else None, interleave)


def _check_covers(name, shape, layout):
    axis = 0 if layout.axis == "rows" else 1
    if len(shape) != 2 or shape[axis] != layout.num_heads * layout.head_dim:
        raise ValueError(f"parameter '{name}' of shape {list(shape)}: {layout!r} covers {layout.num_heads} x "
                         f"{layout.head_dim} = {layout.num_heads * layout.head_dim} {layout.axis}, but the weight "
                         f"has {shape[axis] if len(shape) == 2 else 'no such axis'}")


def _describe(layout):
    heads = " + ".join(map(str, layout.segments)) if layout.segments else str(layout.num_heads)
    units = f", interleaved in {layout.interleave} units" if layout.interleave > 1 else ""
    return f"{heads} heads x {layout.head_dim} along the {layout.axis}{units}"


def _sources(counts):
    return ", ".join(f"{key}={value} from {where}" for key, (value, where) in counts.items() if value)


def _build_groups(routing, kinds, muon_options, adamw_options):
    """Muon groups by kind (2-D and flattened kernels; expert stacks;
    Conv1d kernels), then the AdamW group."""
    reading = {"matrix": {}, "batch": {"nd_params": "batch"}, "flatten": {"nd_params": "flatten"}}
    groups = []
    for kind, nd_options in reading.items():
        members = [(route, tensor) for route, (tensor, k) in zip(routing, kinds) if k == kind]
        if members:
            group = {"params": [t for _, t in members], "param_names": [r["name"] for r, _ in members],
                     "use_muon": True, "heads": [r["heads"] for r, _ in members], **muon_options, **nd_options}
            if any(r["transposed"] for r, _ in members):
                group["transposed"] = [r["transposed"] for r, _ in members]
            groups.append(group)
    adamw = [(route, tensor) for route, (tensor, _) in zip(routing, kinds) if route["optimizer"] == "adamw"]
    if adamw:
        groups.append({"params": [t for _, t in adamw], "param_names": [r["name"] for r, _ in adamw],
                       "use_muon": False, **adamw_options})
    return groups


def _print_routing(routing):
    rows = [(r["name"], "x".join(map(str, r["shape"])) or "scalar", r["optimizer"] or "-", r["reason"])
            for r in routing]
    name_width = max((len(row[0]) for row in rows), default=0)
    shape_width = max((len(row[1]) for row in rows), default=0)
    for name, shape, optimizer, reason in rows:
        print(f"{name:<{name_width}}  {shape:<{shape_width}}  {optimizer:<5}  {reason}")
