"""Head layouts for Group Muon, and param_groups(model): Muon / AdamW groups
built from a model the way muonlab's C++ roles route parameters."""

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
    (H, H_kv, H_kv); defaults to three equal parts.
    """

    def __init__(self, projection, num_heads, head_dim, segments=None):
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
        self.projection = projection
        self.num_heads = num_heads
        self.head_dim = head_dim
        self.segments = segments

    @property
    def role(self):
        return _PROJECTIONS[self.projection][0]

    @property
    def axis(self):
        return _PROJECTIONS[self.projection][1]

    def as_tuple(self):
        """A plain tuple (what param groups and state dicts store)."""
        return (self.projection, self.num_heads, self.head_dim, self.segments)

    @classmethod
    def from_value(cls, value):
        if isinstance(value, HeadLayout):
            return value
        if isinstance(value, (tuple, list)) and len(value) in (3, 4) and isinstance(value[0], str):
            return cls(*value)
        raise ValueError(f"head layout {value!r}: expected a HeadLayout or (projection, num_heads, head_dim[, "
                         "segments])")

    def cpp_layout(self):
        return (self.num_heads, self.head_dim, self.axis, list(self.segments or ()))

    def __eq__(self, other):
        return isinstance(other, HeadLayout) and self.as_tuple() == other.as_tuple()

    def __repr__(self):
        segments = f", segments={self.segments}" if self.segments and self.projection == "qkv" else ""
        return f"HeadLayout({self.projection!r}, num_heads={self.num_heads}, head_dim={self.head_dim}{segments})"


def param_groups(model, **kwargs):
    """Placeholder until the inference is written."""
    raise NotImplementedError("param_groups")
