"""Muon-family optimizers as torch.optim.Optimizer subclasses.

State lives where torch.optim keeps it (``optimizer.state[p]``: ``step``,
``momentum_buffer``, and ``second_moment`` for Muon2 or ``second_moment_row``
and ``second_moment_col`` for Muon2-F, ``neuron_second_moment`` for NorMuon), so ``state_dict()``,
``load_state_dict()``, ``torch.save`` and LR schedulers work as with any
torch optimizer. ``step()`` hands those tensors to muonlab's C++ step, which
batches every same-shaped matrix into one Newton-Schulz call.

Options are the keys of muonlab's TOML ``[optimizer]`` table; see
``muonlab.optim.Muon`` and docs/python.md.
"""
import torch

from . import _C
from .param_groups import HeadLayout, param_groups  # noqa: F401  (re-exported)
from .param_groups import unknown_option_error

__all__ = ["Muon", "Muon2", "Muon2F", "NorMuon", "MuonWithAuxAdamW", "SingleDeviceMuon", "SingleDeviceMuonWithAuxAdam",
           "MuonWithAuxAdam", "HeadLayout", "param_groups"]

_MUON_KEYS = tuple(_C.muon_defaults("muon").keys())
_ADAMW_KEYS = tuple(_C.adamw_defaults().keys())
# Second-moment buffers, which stay fp32 whatever the parameter's dtype.
_FP32_BUFFERS = ("second_moment", "second_moment_row", "second_moment_col", "neuron_second_moment")
_VARIANTS = ("muon", "muon2", "muon2f", "normuon")
# What step() does with a NaN or Inf gradient: apply it as torch.optim does,
# raise, or skip the step.
_NONFINITE_POLICIES = ("ignore", "error", "skip")


# torch.optim.Muon's names for muonlab's options, so that a script written
# for it runs unchanged: (its name, muonlab's name, the values it accepts).
# Its adjust_lr_fn=None means "original".
_TORCH_MUON_SPELLING = (("adjust_lr_fn", "scale_rule", (None, "original", "match_rms_adamw")),
                        ("eps", "ns_eps", None))
# torch.optim.Muon's arguments after params and lr, in its order, so that
# its positional calls (Muon(params, 0.02, 0.1)) run unchanged too.
_TORCH_MUON_POSITIONAL = ("weight_decay", "momentum", "nesterov", "ns_coefficients", "eps", "ns_steps", "adjust_lr_fn")


def _from_torch_spelling(options):
    """Renames torch.optim.Muon's options in place to muonlab's, and makes
    its single coefficient triple a one-triple schedule (repeated for every
    step, as torch repeats it). A setting given under both names is refused."""
    for theirs, ours, accepted in _TORCH_MUON_SPELLING:
        if theirs not in options:
            continue
        if ours in options:
            raise ValueError(f"options '{theirs}' (torch.optim.Muon's name) and '{ours}' set the same thing: "
                             "give one of them")
        value = options.pop(theirs)
        if accepted is not None and value not in accepted:
            raise ValueError(f"option {theirs}={value!r}: expected one of {', '.join(map(repr, accepted))} "
                             f"(muonlab's {ours} has more choices)")
        options[ours] = "original" if theirs == "adjust_lr_fn" and value is None else value
    if _is_one_triple(options.get("ns_coefficients")):
        options["ns_coefficients"] = [tuple(options["ns_coefficients"])]
    return options


def _name_torch_positional(positional, options, optimizer):
    """Adds torch.optim.Muon's positional arguments after lr to `options`
    under their names, refusing more than it takes or one given twice."""
    if len(positional) > len(_TORCH_MUON_POSITIONAL):
        raise TypeError(f"{optimizer}() takes at most {len(_TORCH_MUON_POSITIONAL) + 2} positional arguments "
                        f"(params, lr, {', '.join(_TORCH_MUON_POSITIONAL)}, as torch.optim.Muon), "
                        f"got {len(positional) + 2}")
    for name, value in zip(_TORCH_MUON_POSITIONAL, positional):
        if name in options:
            raise TypeError(f"{optimizer}() got multiple values for argument '{name}'")
        options[name] = value


def _is_one_triple(value):
    return (isinstance(value, (tuple, list)) and len(value) == 3
            and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in value))


def _split_named_params(group):
    """(name, parameter) pairs, as model.named_parameters() yields and
    torch's optimizers take from PyTorch 2.6, split into params and
    param_names (the names errors use), on every torch version."""
    params = group["params"]
    if isinstance(params, (torch.Tensor, set)):
        return  # torch.optim's own checks take these
    params = list(params)
    named = [isinstance(p, tuple) for p in params]
    if any(named):
        if not all(named):
            raise ValueError("a param group mixes (name, parameter) pairs with bare parameters: give one kind")
        if "param_names" in group:
            raise ValueError("a param group of (name, parameter) pairs also has param_names: give one of them")
        group["param_names"] = [name for name, _ in params]
        params = [p for _, p in params]
    group["params"] = params


def _saved_by_torch_muon(state_dict):
    # torch.optim.Muon stores adjust_lr_fn in every group (None by default);
    # muonlab stores scale_rule instead.
    return any("adjust_lr_fn" in group for group in state_dict.get("param_groups", ()))


def _check_known(options, known, optimizer):
    for key in options:
        if key not in known:
            raise unknown_option_error(optimizer, key, known)


class _MuonFamily(torch.optim.Optimizer):
    """Muon groups, and AdamW groups (``use_muon=False``) where allowed."""

    _variant = "muon"
    _allows_adamw = False

    def __init__(self, params, lr=None, *torch_positional, adamw_options=None, process_group=None, nonfinite="ignore",
                 **options):
        _name_torch_positional(torch_positional, options, type(self).__name__)
        if nonfinite not in _NONFINITE_POLICIES:
            raise ValueError(f"option nonfinite={nonfinite!r}: expected one of "
                             f"{', '.join(map(repr, _NONFINITE_POLICIES))}")
        self.nonfinite = nonfinite
        self.skipped_steps = 0
        defaults = _C.muon_defaults(self._variant)
        _from_torch_spelling(options)
        _check_known(options, _MUON_KEYS, type(self).__name__)
        if lr is not None:
            options["lr"] = lr
        defaults.update(options)
        _C.check_muon_options(defaults)
        self._adamw_defaults = _C.adamw_defaults()
        self._adamw_defaults.update(adamw_options or {})
        _C.check_adamw_options(self._adamw_defaults)
        super().__init__(params, defaults)
        self._grouping_generator = torch.Generator()
        self._grouping_generator.manual_seed(defaults["grouping_seed"])
        self._shards = _MuonShards(process_group) if process_group is not None else None
        # Where cuda_graph=True: the graph the step's first half is replayed
        # from, made at the first such step (so that other optimizers copy
        # and pickle as torch's do).
        self._step_graph = None

    # -- groups ---------------------------------------------------------

    def add_param_group(self, param_group):
        group = dict(param_group)
        _split_named_params(group)
        if not group.get("use_muon", True):
            if not self._allows_adamw:
                raise ValueError(f"{type(self).__name__} takes Muon groups only; use MuonWithAuxAdamW for "
                                 "groups with use_muon=False")
            for key, value in self._adamw_defaults.items():
                group.setdefault(key, value)
            _check_known({k: v for k, v in group.items() if k not in _GROUP_KEYS}, _ADAMW_KEYS, "AdamW")
            super().add_param_group(group)
            added = self.param_groups[-1]
            _C.check_adamw_options({k: added[k] for k in _ADAMW_KEYS})
            index = len(self.param_groups) - 1
            for i, p in enumerate(added["params"]):
                _C.check_adamw_param(p, _param_name(added, index, i))
            return
        group["use_muon"] = True
        _from_torch_spelling(group)
        super().add_param_group(group)
        added = self.param_groups[-1]
        _check_known({k: v for k, v in added.items() if k not in _GROUP_KEYS}, _MUON_KEYS, type(self).__name__)
        _C.check_muon_options({k: added[k] for k in _MUON_KEYS})
        added["heads"] = _normalized_heads(added)
        if "transposed" in added:
            added["transposed"] = _normalized_transposed(added)
        index = len(self.param_groups) - 1
        for i, p in enumerate(added["params"]):
            _C.check_muon_param(p, _param_name(added, index, i), added, *_tag(added, i))

    # -- stepping -------------------------------------------------------

    def _muon_entry(self, group, index, i, p):
        name = _param_name(group, index, i)
        tag = _tag(group, i)
        if not self._owns(p):
            return (name, p, {}, *tag, False)  # another rank keeps its state
        state = self.state[p]
        if not state:
            state.update(_C.muon_state(p, name, group, *tag))
        return (name, p, state, *tag, True)

    def _adamw_entry(self, group, index, i, p):
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
        return (_param_name(group, index, i), p, state)

    def _owns(self, p):
        return self._shards is None or self._shards.owns(p)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self.nonfinite != "ignore" and not self._gradients_finite():
            return loss
        if self._shards is not None:
            self._shards.assign([g for g in self.param_groups if g["use_muon"]])
        muon_groups = []
        for index, group in enumerate(self.param_groups):
            with_grad = [(i, p) for i, p in enumerate(group["params"]) if p.grad is not None]
            if not group["use_muon"]:
                _C.adamw_step(group, [self._adamw_entry(group, index, i, p) for i, p in with_grad])
            elif with_grad:
                muon_groups.append((group, [self._muon_entry(group, index, i, p) for i, p in with_grad]))
        if muon_groups:
            if self._step_graph is None and any(group["cuda_graph"] for group, _ in muon_groups):
                self._step_graph = _C.MuonStepGraph()
            _C.muon_step(muon_groups, self._grouping_generator, self._step_graph)
        if self._shards is not None:
            self._shards.share_updates([entry[1] for _, entries in muon_groups for entry in entries])
        return loss

    @torch.no_grad()
    def one_step_diagnostics(self, group_sizes=None, generator=None):
        """Group Muon against whole-matrix Muon on the gradients held now
        (call it between backward() and step()), for every Muon weight that
        a group cuts into heads: what muonlab's trainer logs every
        run.one_step_every steps (docs/algorithms.md, One-step descent
        diagnostics). For each group size g of `group_sizes` (default: each
        group's group_size, or 1 where it is 0), the blocks are those the
        group's grouping and grouped projections cut (random grouping draws
        from `generator`, by default a fresh one seeded 0, never from the
        optimizer's own), and Newton-Schulz runs with the group's ns_steps,
        ns_coefficients and ns_dtype. Returns {g: {"params": {name: {"ns":
        {"gain", "cost"}, "exact": {...}}}, "total": the sums}}, weights
        that stay one block left out. Changes nothing."""
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        results = {}
        for index, group in enumerate(self.param_groups):
            if not group["use_muon"]:
                continue
            sizes = group_sizes if group_sizes is not None else [group["group_size"] or 1]
            for i, p in enumerate(group["params"]):
                role, layout, transposed = _tag(group, i)
                if layout is None or p.grad is None:
                    continue
                for g in sizes:
                    terms = _C.one_step_diagnostics(p.grad, role, layout, transposed, g, group["grouping"],
                                                    list(group["grouped"]), generator, group["ns_steps"],
                                                    group["ns_coefficients"], group["ns_dtype"])
                    if terms is not None:
                        results.setdefault(g, {"params": {}})["params"][_param_name(group, index, i)] = terms
        for by_size in results.values():
            by_size["total"] = {source: {key: sum(t[source][key] for t in by_size["params"].values())
                                         for key in ("gain", "cost")} for source in ("ns", "exact")}
        return results

    def _gradients_finite(self):
        """Whether every gradient is finite, checked before anything changes.
        A NaN or Inf raises FloatingPointError naming its parameter under
        nonfinite="error", and counts a skipped step under "skip"."""
        places = [(index, i, p.grad) for index, group in enumerate(self.param_groups)
                  for i, p in enumerate(group["params"]) if p.grad is not None]
        bad = _C.first_nonfinite([grad for _, _, grad in places])
        if bad is None:
            return True
        if self.nonfinite == "error":
            index, i, _ = places[bad]  # named only when one is bad: names cost a lookup per parameter
            name = _param_name(self.param_groups[index], index, i)
            raise FloatingPointError(f"non-finite gradient (NaN or Inf) in parameter '{name}'; no weight "
                                     "or optimizer state was changed (nonfinite='skip' skips such steps)")
        self.skipped_steps += 1
        return False

    def zero_grad(self, *args, **kwargs):
        """As torch.optim's (with its arguments and defaults), except that the
        GPU gradients of groups with cuda_graph=True are kept and zeroed in
        place: the graph's replays read them where it captured them."""
        kept = [p for group in self.param_groups if group.get("use_muon") and group.get("cuda_graph")
                for p in group["params"] if p.grad is not None and p.grad.is_cuda]
        grads = [p.grad for p in kept]
        super().zero_grad(*args, **kwargs)
        for p, grad in zip(kept, grads):
            p.grad = grad.zero_()

    # -- state ----------------------------------------------------------

    def _from_torch_muon_state(self, state_dict):
        """A torch.optim.Muon state_dict in this optimizer's form: its group
        options renamed (adjust_lr_fn, eps, one triple), the options torch
        lacks kept as this optimizer has them, and a step count of 0 where
        torch keeps none (plain Muon's arithmetic does not read it)."""
        groups = []
        for saved, current in zip(state_dict["param_groups"], self.param_groups):
            group = _from_torch_spelling(dict(saved))
            group["momentum_kind"] = "ema"  # its buffers are EMAs (lerp), whatever this optimizer was given
            for key, value in current.items():
                if key != "params":
                    group.setdefault(key, value)
            groups.append(group)
        groups += state_dict["param_groups"][len(groups):]  # a count that differs is refused by the caller
        state = {key: dict({"step": 0}, **buffers) for key, buffers in state_dict["state"].items()}
        return dict(state_dict, param_groups=groups, state=state)

    def state_dict(self):
        state_dict = super().state_dict()
        state_dict["muonlab"] = {"grouping_generator": self._grouping_generator.get_state(),
                                 "skipped_steps": self.skipped_steps}
        return state_dict

    def load_state_dict(self, state_dict):
        """Loads a state_dict() of an optimizer of the same variant over the
        same parameters, or of a torch.optim.Muon over them (its momentum
        buffers continue). A state saved by another Muon variant (or with
        other shapes) is refused naming the parameter and the buffer, and
        nothing changes."""
        if _saved_by_torch_muon(state_dict):
            state_dict = self._from_torch_muon_state(state_dict)
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"the state has {len(saved_groups)} parameter groups, this optimizer "
                             f"{len(self.param_groups)}")
        saved_state = state_dict["state"]
        for index, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"parameter group {index} holds {len(saved['params'])} parameters in the state, "
                                 f"{len(group['params'])} here")
            if saved.get("use_muon", True) != group["use_muon"]:
                raise ValueError(f"parameter group {index} is a {'Muon' if group['use_muon'] else 'AdamW'} group "
                                 "here but not in the state")
            for i, (p, key) in enumerate(zip(group["params"], saved["params"])):
                if key not in saved_state:
                    continue
                name = _param_name(group, index, i)
                if group["use_muon"]:
                    _C.check_muon_state(p, name, group, *_tag(group, i), saved_state[key])
                else:
                    _check_adamw_state(p, name, saved_state[key])
        generator_state = state_dict.get("muonlab", {}).get("grouping_generator")
        skipped_steps = state_dict.get("muonlab", {}).get("skipped_steps", 0)
        plain = {k: v for k, v in state_dict.items() if k != "muonlab"}
        super().load_state_dict(plain)
        # torch.optim casts floating state to each parameter's dtype; the
        # second moments stay in the dtype they were saved in (fp32).
        for group, saved in zip(self.param_groups, saved_groups):
            for p, key in zip(group["params"], saved["params"]):
                for buffer in _FP32_BUFFERS:
                    if key in saved_state and buffer in saved_state[key]:
                        self.state[p][buffer] = saved_state[key][buffer].to(p.device, copy=True)
        if generator_state is not None:
            self._grouping_generator.set_state(generator_state)
        self.skipped_steps = skipped_steps


class Muon(_MuonFamily):
    """Muon: momentum, Newton-Schulz orthogonalization, a shape-scaled step.

    Options (defaults as ``muonlab.optim.Muon.defaults()``): ``lr``,
    ``momentum``, ``nesterov``, ``momentum_kind`` ("ema" | "sum"),
    ``ns_steps``, ``ns_coefficients`` ("jordan" | "taylor" | "polar_express"
    | list of (a, b, c)), ``ns_dtype`` ("auto" | "bf16" | "fp32" | "fp64"),
    ``ns_eps``, ``ns_batching``, ``ns_method`` ("standard" | "gram": Gram
    Newton-Schulz, fewer FLOPs on matrices well wider than tall or the
    reverse) with ``gram_restart``, ``scale_rule`` ("original" |
    "match_rms_adamw" | "spectral" | "none"), ``weight_decay``,
    ``orthogonalize``, ``nd_params`` ("auto" | "flatten" | "batch" |
    "refuse"), and Group Muon's ``group_size``, ``grouping`` ("contiguous" |
    "strided" | "random"), ``grouping_seed``, ``grouped``, ``block_scale``.
    ``second_moment``, ``beta2``, ``second_moment_eps``, ``bias_correction``
    make it Muon2 / Muon2-F, ``neuron_norm``, ``neuron_beta2``,
    ``neuron_eps`` NorMuon (see those classes); they compose.

    ``cuda_graph=True`` (GPU parameters): the step's work before the
    learning rate (momentum, Newton-Schulz) is captured once in a CUDA graph
    and replayed, one launch instead of hundreds, with the same arithmetic;
    LR schedulers keep working. It needs the extension built against a CUDA
    torch (``muonlab._C.cuda_graphs_built()``), and keeps those groups' GPU
    gradients in place across ``zero_grad()``. No effect on CPU parameters.

    torch.optim.Muon's spelling works too, so its scripts run unchanged:
    ``adjust_lr_fn`` ("original" | "match_rms_adamw" | None) for
    ``scale_rule``, ``eps`` for ``ns_eps``, one (a, b, c) triple as
    ``ns_coefficients``, used at every step, and its positional order
    ``Muon(params, lr, weight_decay, momentum, nesterov, ns_coefficients,
    eps, ns_steps, adjust_lr_fn)``. Its defaults are muonlab's,
    except that its Newton-Schulz always runs in bf16 (``ns_dtype="auto"``
    picks bf16 only where the device multiplies bf16 natively).

    ``nonfinite``: what step() does when a gradient holds a NaN or Inf.
    "ignore" (the default) applies it, as torch.optim's optimizers do;
    "error" raises FloatingPointError naming the parameter, and "skip"
    skips the step and counts it in ``skipped_steps``; under both, no weight
    or state has changed. The check reads each CPU gradient once and costs
    one sync on a GPU.

    ``process_group`` (a torch.distributed group, or True for the default
    one) shares the Newton-Schulz work and the state among the ranks of
    data-parallel training: each matrix is stepped by one rank, which
    broadcasts the result. Gradients must already be averaged (DDP). Each
    rank's state_dict() then holds its own matrices' state; save one per
    rank and resume with the same world size.

    A param group may carry ``heads``: a HeadLayout (or one per parameter)
    saying where a weight's attention heads are, for Group Muon (read out x
    in); ``transposed``: True (or one bool per parameter) for weights stored
    [in, out] rather than nn.Linear's [out, in], such as transformers'
    Conv1D in Hugging Face GPT-2, so that the shape scale, NorMuon's output
    neurons and the head blocks read them the right way round (Newton-Schulz
    itself does not care); and ``param_names`` for messages. Parameters of
    more than two dimensions: conv kernels flattened to out x (in*kh*kw),
    stacks [E, r, c] of expert weights with ``nd_params="batch"``.
    """

    @classmethod
    def defaults(cls):
        return _C.muon_defaults(cls._variant)


class Muon2(Muon):
    """Muon2: Adam's second moment of the gradient divides the momentum
    before Newton-Schulz (second_moment="full", ns_steps=3 by default)."""

    _variant = "muon2"


class Muon2F(Muon):
    """Muon2-F: Muon2 with Adafactor's factored (row and column) second
    moment (second_moment="factored", ns_steps=3 by default)."""

    _variant = "muon2f"


class NorMuon(Muon):
    """NorMuon (Li et al., "NorMuon: Making Muon more efficient and
    scalable"): after Newton-Schulz, each output neuron's row of the update
    is divided by the root of an EMA of its mean square (``neuron_beta2``,
    ``neuron_eps``), then the update is rescaled to the norm it had, so Muon's
    learning rates carry over (neuron_norm=True)."""

    _variant = "normuon"


class MuonWithAuxAdamW(Muon):
    """Muon for hidden matrices, AdamW for the rest, in one optimizer (as
    Keller Jordan's MuonWithAuxAdam): groups with ``use_muon=False`` are
    stepped by AdamW. ``muonlab.optim.param_groups(model)`` builds both kinds
    from a model. AdamW's defaults: ``adamw_lr``, ``adamw_betas``,
    ``adamw_eps``, ``adamw_weight_decay`` (the TOML keys), or per group
    ``lr``, ``betas``, ``eps``, ``weight_decay``."""

    _allows_adamw = True

    def __init__(self, params, lr=None, variant="muon", adamw_lr=None, adamw_betas=None, adamw_eps=None,
                 adamw_weight_decay=None, process_group=None, nonfinite="ignore", **options):
        if variant not in _VARIANTS:
            raise ValueError(f"option variant={variant!r}: expected one of {', '.join(map(repr, _VARIANTS))}")
        self._variant = variant
        adamw = {k: v for k, v in (("lr", adamw_lr), ("betas", adamw_betas), ("eps", adamw_eps),
                                   ("weight_decay", adamw_weight_decay)) if v is not None}
        super().__init__(params, lr=lr, adamw_options=adamw, process_group=process_group, nonfinite=nonfinite,
                         **options)


# Keller Jordan's muon package (github.com/KellerJordan/Muon), under its
# names and with its defaults, so that a script written for it switches by
# the import alone. The update is the same: Nesterov EMA momentum, five
# Newton-Schulz steps of his coefficients, the sqrt(max(1, rows/cols))
# scale, decoupled weight decay, and for the other groups Adam with bias
# correction and decoupled weight decay.
_KELLER_JORDAN_MUON = {"lr": 0.02, "momentum": 0.95, "weight_decay": 0}
_KELLER_JORDAN_ADAM = {"adamw_lr": 3e-4, "adamw_betas": (0.9, 0.95), "adamw_eps": 1e-10, "adamw_weight_decay": 0}


class SingleDeviceMuon(Muon):
    """Keller Jordan's ``SingleDeviceMuon(params, lr=0.02, weight_decay=0,
    momentum=0.95)``: muonlab's Muon with that package's defaults. His
    Newton-Schulz always runs in bf16; ``ns_dtype="auto"`` picks bf16 where
    the device multiplies it natively. His distributed ``Muon`` is this class
    with ``process_group=True``."""

    def __init__(self, params, lr=0.02, weight_decay=0, momentum=0.95, **options):
        super().__init__(params, lr, weight_decay=weight_decay, momentum=momentum, **options)


class SingleDeviceMuonWithAuxAdam(MuonWithAuxAdamW):
    """Keller Jordan's ``SingleDeviceMuonWithAuxAdam(param_groups)``: groups
    with ``use_muon=True`` are stepped by Muon (defaults lr 0.02, momentum
    0.95, weight_decay 0), those with ``use_muon=False`` by Adam (lr 3e-4,
    betas (0.9, 0.95), eps 1e-10, weight_decay 0); a group's own values
    override them, as there."""

    def __init__(self, param_groups, **options):
        super().__init__(param_groups, **{**_KELLER_JORDAN_MUON, **_KELLER_JORDAN_ADAM, **options})


class MuonWithAuxAdam(SingleDeviceMuonWithAuxAdam):
    """Keller Jordan's ``MuonWithAuxAdam(param_groups)``, for data-parallel
    training: SingleDeviceMuonWithAuxAdam whose Newton-Schulz work is shared
    among the ranks of torch.distributed's default group where it is
    initialized (``process_group=True``), as his is; each rank then keeps the
    state of the matrices it steps."""

    def __init__(self, param_groups, **options):
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        options.setdefault("process_group", True if distributed else None)
        super().__init__(param_groups, **options)


class _MuonShards:
    """Muon's work split over the ranks of a torch.distributed process group,
    for data-parallel training where every rank holds the same averaged
    gradients (DistributedDataParallel): each matrix is owned by one rank,
    which alone keeps its state and runs its Newton-Schulz, then broadcasts
    the new weights. Owners are balanced by size, the same on every rank."""

    def __init__(self, process_group):
        import torch.distributed as dist

        self._dist = dist
        self._group = None if process_group is True else process_group
        self._rank = dist.get_rank(self._group)
        self._world = dist.get_world_size(self._group)
        self._owner = None

    def assign(self, muon_groups):
        if self._owner is not None:
            return
        params = [p for group in muon_groups for p in group["params"]]
        load = [0] * self._world
        self._owner = {}
        for p in sorted(params, key=lambda q: -q.numel()):  # stable: ties keep group order
            rank = min(range(self._world), key=lambda r: load[r])
            self._owner[p] = rank
            load[rank] += p.numel()

    def owns(self, p):
        return self._owner is None or self._owner[p] == self._rank

    def share_updates(self, params):
        handles = [self._dist.broadcast(p.data, src=self._global_rank(self._owner[p]), group=self._group,
                                        async_op=True) for p in params]
        for handle in handles:
            handle.wait()

    def _global_rank(self, group_rank):
        if self._group is None:
            return group_rank
        get = getattr(self._dist, "get_global_rank", None) or self._dist.distributed_c10d._get_global_rank
        return get(self._group, group_rank)


# Group keys that are neither Muon nor AdamW options: torch's, schedulers',
# the head layouts and the weights' orientation.
_GROUP_KEYS = {"params", "use_muon", "heads", "param_names", "initial_lr", "name", "role", "roles", "transposed"}


def _param_name(group, index, i):
    names = group.get("param_names")
    if names is not None and i < len(names):
        return names[i]
    return f"param_groups[{index}]['params'][{i}]"


def _normalized_heads(group):
    """The group's heads as one plain tuple (or None) per parameter, so that
    state_dict() holds only what torch.load(weights_only=True) accepts."""
    heads = group.get("heads")
    params = group["params"]
    if heads is None:
        return [None] * len(params)
    if isinstance(heads, HeadLayout) or (isinstance(heads, tuple) and heads and isinstance(heads[0], str)):
        heads = [heads] * len(params)
    heads = list(heads)
    if len(heads) != len(params):
        raise ValueError(f"group option heads: {len(heads)} layouts for {len(params)} parameters; give one "
                         "HeadLayout for all, or one (or None) per parameter")
    return [None if h is None else HeadLayout.from_value(h).as_tuple() for h in heads]


def _normalized_transposed(group):
    """The group's transposed flags as one bool per parameter."""
    flags, params = group["transposed"], group["params"]
    if isinstance(flags, bool):
        return [flags] * len(params)
    flags = list(flags)
    if len(flags) != len(params) or not all(isinstance(f, bool) for f in flags):
        raise ValueError(f"group option transposed: {flags!r} for {len(params)} parameters; give one bool for all, "
                         "or one per parameter (True where the weight is stored [in, out], as transformers' Conv1D)")
    return flags


def _tag(group, i):
    """(role, layout, transposed) for the C++ step: the head layout's role
    and its (num_heads, head_dim, axis, segments) along the stored axes, or
    a role and None; and whether the weight is stored [in, out]."""
    transposed = bool(group["transposed"][i]) if group.get("transposed") else False
    layout = group["heads"][i] if group.get("heads") else None
    roles = group.get("roles")
    if layout is None:
        return (roles[i] if roles else group.get("role", "matrix")), None, transposed
    head_layout = HeadLayout.from_value(layout)
    return head_layout.role, head_layout.cpp_layout(transposed), transposed


def _check_adamw_state(p, name, state):
    for buffer in ("exp_avg", "exp_avg_sq"):
        if buffer not in state:
            raise ValueError(f"parameter '{name}': the state has no buffer '{buffer}' (AdamW); was it saved by "
                             "another optimizer?")
        if tuple(state[buffer].shape) != tuple(p.shape):
            raise ValueError(f"parameter '{name}': state buffer '{buffer}' has shape {list(state[buffer].shape)}, "
                             f"expected {list(p.shape)}")
    extra = sorted(set(state) - {"step", "exp_avg", "exp_avg_sq"})
    if extra:
        raise ValueError(f"parameter '{name}': the state holds buffer '{extra[0]}', which AdamW does not keep")

