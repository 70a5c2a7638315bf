"""`compile(fn)`: trace a training step (or a transform) once, then replay it on NumPy arrays.

Owns the trace (every `apply`; every sweep on arrays, `backward()` or a transform's, as the
events of the engine's one reverse sweep, `backward.sweep`, recorded through its hooks while
this thread's `mode._state.recorder` is set; every `replayed` call such as `optimizer.step()`;
every draw from `chainrule.random`), the replay plan, its cache key and its guards. A plan is
written out as the source of one Python function (`_Codegen`) that builds no Tensors and walks
no graph: it calls the same forwards, vjps and replayed functions, and sums gradients in the
same order, as the traced call did. What is covered and refused: docs/compile.md.
"""

from __future__ import annotations

import builtins
import enum
import functools
import importlib
import keyword
import linecache
import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeAlias

import numpy as np

from chainrule import random as _random
from chainrule.backward import (
    SweepHooks,
    _depends_outside,
    _relevant_order,
    accumulate_leaf_array,
    vjp_rule,
)
from chainrule.mode import _state
from chainrule.ops import NUMPY_NS, OpDef
from chainrule.tensor import Tensor

__all__ = ["CompileError", "compile", "recomputed", "replayed"]

# The module, not `chainrule.tensor` the function that the package namespace exports.
_tensor = importlib.import_module("chainrule.tensor")

_MAX_PLANS = 8  # traces kept per function (one per argument signature), oldest dropped


class CompileError(RuntimeError):
    """The function cannot be replayed faithfully (what was frozen or unsupported is named)."""


def compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Trace `fn` on its first call and replay the recorded ops on later calls (as `jax.jit`).

    The first call runs `fn` normally while recording every op, every `backward()` sweep, every
    optimizer/scheduler call and every random draw; the second call runs it again and checks
    that the trace is the same; later calls with arguments of the same shapes and dtypes (and
    modules in the same train/eval mode) replay the recorded forwards and vjps on plain arrays,
    write every leaf's `.grad` exactly as `backward()` would, make the optimizer's `zero_grad()`
    and `step()` again, draw Dropout's masks again, and return the same outputs (as detached
    tensors), bitwise equal to eager mode. New shapes, dtypes or Python-value arguments trace
    again. Transforms compile too: `compile(hessian(f))`, `compile(vmap(grad(f)))`.

    What may change between calls: the values of the Tensor/ndarray arguments, the `.data` of
    tensors `fn` uses by reference (parameters updated in place are read fresh), optimizer
    state and hyper-parameters (a scheduler's lr). What is frozen at trace time, as under
    `jax.jit`: Python control flow and Python numbers. Reading a traced value into Python
    (`.item()`, `if x > 0:`) raises `CompileError`; NumPy on `.data` is frozen, and the check
    on the second call raises `CompileError` when such a value changed. See docs/compile.md.

    Parameters
    ----------
    fn : callable
        Takes Tensors, ndarrays and Python scalars positionally; returns None, a Tensor or a
        tuple/list of Tensors. May call `backward()` (not `create_graph=True` into `.grad`),
        optimizers, schedulers and the transforms.

    Raises
    ------
    CompileError
        When the trace cannot be replayed (a traced value read into Python, an in-place update
        outside an optimizer step, a non-Tensor result, `create_graph` into `.grad`, a frozen
        value that changed between the first two calls); the message names the cause.

    Examples
    --------
    >>> import chainrule as cr
    >>> w = cr.tensor([1.0, 2.0], requires_grad=True)
    >>> @cr.compile
    ... def step(x):
    ...     loss = (w * x).sum()
    ...     loss.backward()
    ...     return loss
    >>> [step(cr.tensor([3.0, 4.0])).item() for _ in range(3)]
    [11.0, 11.0, 11.0]
    >>> w.grad.tolist()  # accumulated over the three calls, as backward() does
    [9.0, 12.0]
    """
    return functools.wraps(fn)(_Compiled(fn))


class _Compiled:
    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        # (argument key, variant) -> plan; variants of one key differ in their guards (a module
        # in train or eval mode, a parameter's new shape), like torch.compile's guarded entries
        self.plans: dict[tuple[Any, int], _Plan] = {}

    def __call__(self, *args: Any) -> Any:
        if _state.hooked:  # inside another trace, or detecting anomalies: run eagerly
            return self.fn(*args)
        key = (_state.grad_enabled, *map(_arg_key, args))
        plans, plan, n = self.plans, None, 0
        while (key, n) in plans:
            if plans[key, n].guards_hold():
                plan = plans[key, n]
                break
            n += 1
        if plan is not None and plan.checked:
            return plan.replay(args)
        result, new = _trace(self.fn, args)
        if plan is not None:
            if not plan.same_as(new):
                raise CompileError(
                    f"compile({getattr(self.fn, '__name__', 'fn')}): the second call recorded a "
                    f"different computation than the first ({plan.difference(new)}). Something "
                    "computed from array values outside chainrule ops (a mask from x.data, "
                    ".item(), a random Dropout mask) or value-dependent control flow is frozen "
                    "by tracing; run this function eagerly"
                )
            plan.checked = True
        else:
            if len(plans) >= _MAX_PLANS:
                plans.pop(next(iter(plans)))
            plans[key, n] = new
        return result


def _arg_key(a: Any) -> Any:
    if isinstance(a, Tensor):
        return ("T", a.data.shape, a.data.dtype, a.requires_grad)  # (dtype.str builds a str)
    if isinstance(a, np.ndarray):
        return ("A", a.shape, a.dtype)
    if a is None or isinstance(a, (bool, int, float, complex, str)):
        return ("V", type(a), a)
    raise TypeError(
        f"compile: arguments must be Tensors, ndarrays or Python scalars, got {type(a).__name__}"
    )


# --------------------------------------------------------------------------- the trace


class Kind(enum.Enum):
    """Where a value of the environment comes from; `Slot.value` says which one."""

    ARG = "argument"  # the call's argument at position `value`, read fresh on every replay
    CAP = "captured tensor"  # a tensor from outside (a parameter): `value`, its .data read fresh
    CONST = "constant"  # `value` itself, frozen at trace time
    OUT = "op result"  # the result of the instruction at program position `value`
    ALIAS = "leaf over a traced value"  # a new leaf on slot `value`'s array (a transform's input)
    GRAD = "gradient result"  # a gradient that the sweep at program position `value` returned


@dataclass(frozen=True)
class Slot:
    """One value of the environment: its kind and the argument position, tensor or object."""

    kind: Kind
    value: Any


@dataclass(frozen=True)
class Ref:
    """A value read from environment slot `j` at replay (a result, a label array param)."""

    j: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor argument of a `CallStep`: slot `j`'s array, wrapped as a detached tensor."""

    j: int


@dataclass(frozen=True)
class ArgRef:
    """A tensor argument of a `CallStep`: the call's own argument at position `i`."""

    i: int


@dataclass(frozen=True)
class OpStep:
    """`slot[out] = op.forward(*slot[srcs], **params)`."""

    op: OpDef
    srcs: tuple[int, ...]
    params: dict[str, Any]
    out: int


@dataclass(frozen=True)
class CallStep:
    """`fn(*args, **kwargs)`, made again by every replay: a `replayed` side effect (`out` None;
    `seen` slots existed then; every tensor's `.data` is read again after it), or a random
    draw, a NumPy ufunc on one or a `recomputed` function (`slot[out]` is its result)."""

    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    out: int | None
    seen: int = 0


@dataclass(frozen=True)
class Seed:
    """The sweep starts: slot `seed` is the upstream gradient of slot `root`."""

    root: int
    seed: int


@dataclass(frozen=True)
class NodeGrad:
    """The gradient of op result `node` is complete; its `EdgeGrad`s follow."""

    node: int


@dataclass(frozen=True)
class EdgeGrad:
    """Op result `node` sends its vjp for input `argnum` back to that input."""

    node: int
    argnum: int


@dataclass(frozen=True)
class LeafGrad:
    """The gradient of leaf (or `inputs=` stop node) `leaf` is complete: added into its `.grad`
    if `write`, and slot `out` (a `Kind.GRAD`) if the sweep returns it to its caller."""

    leaf: int
    write: bool = True
    out: int | None = None


SweepEvent: TypeAlias = Seed | NodeGrad | EdgeGrad | LeafGrad


@dataclass
class Sweep:
    """One reverse sweep on arrays (`backward()`, or a transform's `grad`), as the events of
    `backward.sweep` in the order it ran them."""

    events: list[SweepEvent]


class Refusal(enum.Enum):
    """A computation inside the traced function that a replay could not reproduce."""

    UNSUPPORTED = (
        "compile: backward(create_graph=True) into .grad is not supported inside a compiled "
        "function (chainrule.grad, hessian and the other transforms are)"
    )
    OUTSIDE = "compile: backward() reached a graph built outside the compiled function"
    RETAIN_GRAD = "compile: retain_grad() on intermediate tensors is not supported"
    MUTATED = (
        "compile: the function changed a tensor it uses in place outside optimizer.step() "
        "(or another `chainrule.compile.replayed` call); replaying would skip that update"
    )
    GRAD_RESET = (
        "compile: a tensor's .grad was replaced inside the function (p.grad = None?); use "
        "optimizer.zero_grad() or module.zero_grad(), which replays do again"
    )
    INNER_LEAF_GRAD = (
        "compile: backward() into the .grad of a leaf tensor created inside the function from a "
        "traced value is not supported"
    )
    SCALAR_DRAW = (
        "compile: a random draw of one Python number (generator().random() without size=) is "
        "frozen by tracing; draw an array"
    )
    DRAW_NUMPY = (
        "compile: a random draw went through NumPy code that compile does not record (only "
        "elementwise ufuncs, astype and reshape); apply chainrule ops to it instead"
    )
    RESEEDED = (
        "compile: manual_seed or set_rng_state inside a compiled function is not replayed; "
        "seed outside it"
    )


Instruction: TypeAlias = OpStep | CallStep | Sweep
# What the function returned: None, a result slot, or a tuple/list of those.
OutSpec: TypeAlias = "Ref | tuple[OutSpec, ...] | list[OutSpec] | None"


def replayed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark `fn`, a side effect on state outside the graph, as a call that `compile` replays.

    Inside a trace, `fn` runs eagerly (its own ops are not recorded) and the plan records the
    call; every replay calls it again at the same point, with the same Python arguments and the
    fresh values of traced tensors. `Optimizer.step` and `zero_grad`, `Module.zero_grad`,
    schedulers' `step`, `clip_grad_norm_` and BatchNorm's running-statistics update are marked,
    so they evolve exactly as in eager mode (the step count, Adam's moments, a new lr). A value
    `fn` returns is not replayed: if it feeds the traced computation it is frozen, and the
    check on the second call compares it.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.compile import replayed
    >>> seen = []
    >>> log = replayed(seen.append)
    >>> f = cr.compile(lambda x: log("called") or x * 2)
    >>> [f(cr.tensor(1.0)).item() for _ in range(3)], len(seen)
    ([2.0, 2.0, 2.0], 3)
    """

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        rec = _state.recorder
        if rec is None:
            return fn(*args, **kwargs)
        return rec.call(fn, args, kwargs)

    return call


def recomputed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark `fn`, a NumPy function of tensors' values (arrays in, an array or a tuple of
    arrays out, no side effects), as one that `compile` computes again on every replay.

    Code that reads `.data` is frozen by a trace; an index computed from values (max pooling's
    argmax) must instead be recomputed from the fresh arrays, as `jax.pure_callback` does.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> from chainrule.compile import recomputed
    >>> first_max = recomputed(lambda a: np.argmax(a))
    >>> f = cr.compile(lambda x: x[first_max(x.data)])
    >>> [f(cr.tensor(v)).item() for v in ([1.0, 3.0], [5.0, 2.0], [0.0, 4.0])]
    [3.0, 5.0, 4.0]
    """

    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        rec = _state.recorder
        if rec is None:
            return fn(*args, **kwargs)
        _state.recorder = None
        try:
            out = fn(*args, **kwargs)
        finally:
            _state.recorder = rec
        return rec.computed(fn, args, kwargs, out, plain=True)

    return call


def _trace(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, _Plan]:
    rec = _Recorder(args)
    real = _random._generator
    draws: Any = _Draws(real, rec)
    _random._generator = draws
    _state.recorder = rec
    try:
        result = fn(*args)
    finally:
        _state.recorder = None
        if _random.generator() is draws:
            _random._generator = real
        else:  # manual_seed or set_rng_state ran inside
            rec.refusals.append(Refusal.RESEEDED)
        plain: Any = Tensor
        for t in (*rec.keep, *rec.masks):
            if type(t) is _Traced:
                t.__class__ = plain
    plan = rec.finish(result)
    return _build(plan.out, [t.data if isinstance(t, Tensor) else t for t in rec.keep]), plan


class _Traced(Tensor):
    """An op result or tensor argument while a trace runs: reading its value into Python
    would freeze it (the replay does not run the Python code that used it), so it refuses."""

    __slots__ = ()

    def item(self) -> Any:
        _frozen(self, "item()")
        return Tensor.item(self)

    def tolist(self) -> Any:
        _frozen(self, "tolist()")
        return Tensor.tolist(self)

    def __bool__(self) -> bool:
        _frozen(self, "bool() (Python control flow on a tensor's value)")
        return Tensor.__bool__(self)

    __hash__ = Tensor.__hash__  # (defining __eq__ below would otherwise unset it)


def _compare(f: Any) -> Callable[[Tensor, Any], Tensor]:
    """A comparison of a traced tensor (a mask): recorded, so that a replay compares the fresh
    values, and itself traced, so that `if x > 0:` is refused."""
    name = f"__{f.__name__}__"

    def method(self: Tensor, other: Any) -> Tensor:
        t = getattr(Tensor, name)(self, other)  # (looked up late: composite attaches it)
        rec = _state.recorder
        if rec is not None:
            o = other.data if isinstance(other, Tensor) else other
            rec.computed(f, (self.data, o), {}, t.data, plain=True)
            t.__class__ = _Traced
            rec.masks.append(t)  # (its class is restored with the others')
        return t

    return method


for _f in (operator.lt, operator.le, operator.gt, operator.ge, operator.eq, operator.ne):
    setattr(_Traced, f"__{_f.__name__}__", _compare(_f))


def _frozen(t: Tensor, what: str) -> None:
    if _state.recorder is not None:  # else a replayed call, or the trace is over
        raise CompileError(
            f"compile: {what} of a traced tensor of shape {t.shape} reads a value that tracing "
            "would freeze; do it outside the compiled function or use chainrule ops (where, "
            "maximum) instead"
        )


def _draw(name: str, *args: Any, **kwargs: Any) -> Any:
    """A replay's random draw: the same method on the generator of the moment (as eager)."""
    return getattr(_random.generator(), name)(*args, **kwargs)


class _Draws:
    """Stands in for `chainrule.random`'s generator while a trace runs: in the tracing thread a
    draw is recorded as a `CallStep` that every replay makes again, so Dropout's masks differ
    per call as they do eagerly; its result is a `_Drawn` array."""

    def __init__(self, generator: np.random.Generator, rec: _Recorder) -> None:
        self._generator = generator
        self._rec = rec

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._generator, name)
        if name.startswith("_") or not callable(attr) or _state.recorder is not self._rec:
            return attr  # another thread, or not a draw
        return functools.partial(self._rec.draw, attr, name)


class _Drawn(np.ndarray):
    """A random draw, or a NumPy ufunc of one, during a trace: each ufunc on it is recorded."""

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if any(isinstance(x, Tensor) for x in inputs):
            return NotImplemented  # Tensor's reflected operator records it as an op
        plain = [x.view(np.ndarray) if isinstance(x, _Drawn) else x for x in inputs]
        result = getattr(ufunc, method)(*plain, **kwargs)
        rec = _state.recorder
        if rec is None:
            return result
        if method != "__call__" or "out" in kwargs or type(result) is not np.ndarray:
            rec.refusals.append(Refusal.DRAW_NUMPY)
            return result
        return rec.computed(ufunc, tuple(inputs), kwargs, result)

    def astype(self, *args: Any, **kwargs: Any) -> Any:
        return self._method(np.ndarray.astype, args, kwargs)

    def reshape(self, *args: Any, **kwargs: Any) -> Any:
        return self._method(np.ndarray.reshape, args, kwargs)

    def _method(self, fn: Callable[..., Any], args: Any, kwargs: dict[str, Any]) -> Any:
        result = fn(self.view(np.ndarray), *args, **kwargs)
        rec = _state.recorder
        return result if rec is None else rec.computed(fn, (self, *args), kwargs, result)


class _Recorder:
    """Collects one call: an environment of values (arguments, captured tensors, constants,
    op results) addressed by slot index, and the program over it: op steps, calls, sweeps."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        self.index: dict[int, int] = {}  # id(Tensor or array) -> slot
        self.slots: list[Slot] = []
        self.keep: list[Any] = []  # keeps traced objects alive so their ids stay unique
        self.program: list[Instruction] = []
        self.refusals: list[Refusal] = []
        # traced tensors: (tensor, version, .grad) as last seen outside a replayed call
        self.seen: dict[int, tuple[Tensor, int, Any]] = {}
        self.modules: dict[int, tuple[Any, bool]] = {}  # nn.Modules called: (module, training)
        self.pending: list[Tensor] = []  # leaves a sweep is writing .grad into
        self.masks: list[Tensor] = []  # comparison results (their arrays have slots)
        for i, a in enumerate(args):
            if type(a) is Tensor:
                a.__class__ = _Traced
            self._new(Slot(Kind.ARG, i), a)
            if isinstance(a, Tensor):
                self.index.setdefault(id(a.data), len(self.slots) - 1)
                self.seen[id(a)] = (a, a._version, a.grad)

    def _new(self, slot: Slot, obj: Any) -> int:
        self.slots.append(slot)
        self.keep.append(obj)
        self.index[id(obj)] = len(self.slots) - 1
        return len(self.slots) - 1

    def source(self, a: Any) -> int:
        """The slot of an op input: known object, captured tensor, or frozen constant."""
        j = self.index.get(id(a))
        if j is not None:
            return j
        if isinstance(a, Tensor):
            k = self.index.get(id(a.data))
            if k is not None and not a.requires_grad:
                return k  # x.detach() of a traced value: the same array
            if k is not None and a._op is None:
                return self._new(Slot(Kind.ALIAS, k), a)  # a transform's leaf on a traced array
            self.seen[id(a)] = (a, a._version, a.grad)
            return self._new(Slot(Kind.CAP, a), a)
        if type(a) is _Drawn:
            self.refusals.append(Refusal.DRAW_NUMPY)
        return self._new(Slot(Kind.CONST, a), a)

    def apply(self, op: OpDef, args: tuple[Any, ...], params: dict[str, Any]) -> Tensor:
        self.settle()
        srcs = tuple(self.source(a) for a in args)
        dyn = {k: self._param(v) for k, v in params.items()}
        args = tuple(a.view(np.ndarray) if type(a) is _Drawn else a for a in args)
        params = {k: v.view(np.ndarray) if type(v) is _Drawn else v for k, v in params.items()}
        _state.recorder = None
        try:
            t = _tensor.apply(op, *args, **params)
        finally:
            _state.recorder = self
        if type(t) is Tensor:
            t.__class__ = _Traced
        self.seen[id(t)] = (t, t._version, None)  # an in-place change (add_) is refused
        j = self._new(Slot(Kind.OUT, len(self.program)), t)
        self.index.setdefault(id(t.data), j)
        self.program.append(OpStep(op, srcs, dyn, j))
        return t

    def _param(self, v: Any) -> Any:
        """An array param that is a traced array (labels, a mask) is read fresh at replay."""
        if isinstance(v, (np.ndarray, np.generic)) and id(v) in self.index:
            return Ref(self.index[id(v)])  # (np.generic: a recomputed NumPy scalar)
        if type(v) is _Drawn:
            self.refusals.append(Refusal.DRAW_NUMPY)
        if isinstance(v, tuple) and any(isinstance(e, np.ndarray) for e in v):
            return tuple(self._param(e) for e in v)
        return v

    def _call_arg(self, a: Any) -> Any:
        """How a replay passes `a` to a call: a traced tensor or array fresh, else frozen."""
        if isinstance(a, Tensor):
            j = self.index.get(id(a))
            if j is None and not a.requires_grad:
                j = self.index.get(id(a.data))
            if j is None or self.slots[j].kind is Kind.CAP:
                return a
            slot = self.slots[j]
            return ArgRef(slot.value) if slot.kind is Kind.ARG else TensorRef(j)
        if isinstance(a, (tuple, list)):
            return type(a)(self._call_arg(e) for e in a)
        return self._param(a)

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run a `replayed` function eagerly and record the call."""
        # an iterator (model.parameters()) would be spent by the first call: keep its items
        args = tuple(list(a) if isinstance(a, Iterator) else a for a in args)
        spec = tuple(self._call_arg(a) for a in args)
        kw = {k: self._call_arg(v) for k, v in kwargs.items()}
        self._check_seen()
        _state.recorder = None
        try:
            result = fn(*args, **kwargs)
        finally:
            _state.recorder = self
        for key, (t, _, _) in self.seen.items():  # what fn changed, replays change again
            self.seen[key] = (t, t._version, t.grad)
        self.program.append(CallStep(fn, spec, kw, None, len(self.slots)))
        return result

    def draw(self, method: Callable[..., Any], name: str, *args: Any, **kwargs: Any) -> Any:
        """A draw from the global generator (through `_Draws`), recorded to be drawn again."""
        out = method(*args, **kwargs)
        if type(out) is not np.ndarray:
            self.refusals.append(Refusal.SCALAR_DRAW)
            return out
        return self.computed(_draw, (name, *args), kwargs, out)

    def computed(
        self,
        fn: Callable[..., Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        out: Any,
        plain: bool = False,
    ) -> Any:
        """`out = fn(*args, **kwargs)` on traced arrays: a new slot, computed again by every
        replay (each array of a tuple result gets one too). A draw's result is `_Drawn`."""
        spec = tuple(self._call_arg(a) for a in args)
        kw = {k: self._call_arg(v) for k, v in kwargs.items()}
        for a in (*args, *kwargs.values()):
            if type(a) is _Drawn and id(a) not in self.index:
                self.refusals.append(Refusal.DRAW_NUMPY)
        result = out if plain else out.view(_Drawn)
        j = self._new(Slot(Kind.OUT, len(self.program)), result)
        self.program.append(CallStep(fn, spec, kw, j))
        if isinstance(out, tuple):
            for k, item in enumerate(out):
                jk = self._new(Slot(Kind.OUT, len(self.program)), item)
                self.program.append(CallStep(operator.getitem, (Ref(j), k), {}, jk))
        return result

    def module(self, m: Any) -> None:
        """An nn.Module is called: the plan holds only while its `training` flag is the same."""
        self.modules.setdefault(id(m), (m, m.training))

    def settle(self) -> None:
        """The `.grad` a recorded sweep wrote is the one the next sweep must find."""
        for t in self.pending:
            self.seen[id(t)] = (t, t._version, t.grad)
        self.pending.clear()

    def _check_seen(self) -> None:
        self.settle()
        for t, version, _ in self.seen.values():
            if t._version != version:
                self.refusals.append(Refusal.MUTATED)

    def sweep(
        self,
        roots: Sequence[Tensor],
        seeds: Sequence[Any],
        create_graph: bool | None,
        accumulate: bool,
        inputs: Sequence[Tensor] | None,
    ) -> SweepHooks:
        """Hooks that record the `backward.sweep` about to run (from `backward.backprop`)."""
        self.settle()
        stop = None if inputs is None else {id(t) for t in inputs}
        if create_graph is None:  # decided as `backprop` decides it, for the same graph
            order = _relevant_order(roots, stop)
            create_graph = _state.grad_enabled and _depends_outside(order, seeds, stop)
        if create_graph:
            if accumulate:
                self.refusals.append(Refusal.UNSUPPORTED)
            return SweepHooks()  # its vjps run as ops on Tensors, recorded as they run
        sweep = Sweep([])
        for r, s in zip(roots, seeds):
            root = self.index.get(id(r))
            if root is None:
                self.refusals.append(Refusal.OUTSIDE)
                return SweepHooks()
            sweep.events.append(Seed(root, self.source(s.data if isinstance(s, Tensor) else s)))
        self.program.append(sweep)
        returns = not accumulate or inputs is not None  # the caller reads the results
        return _SweepRecorder(self, sweep.events, stop, accumulate, returns)

    def finish(self, result: Any) -> _Plan:
        self._check_seen()
        if self.refusals:
            raise CompileError(self.refusals[0].value)
        return _Plan(self, result)


class _SweepRecorder(SweepHooks):
    """Fills one `Sweep` of the program, event by event as `backward.sweep` runs it."""

    def __init__(
        self,
        rec: _Recorder,
        events: list[SweepEvent],
        stop: set[int] | None,
        accumulate: bool,
        returns: bool,
    ) -> None:
        self.rec = rec
        self.events = events
        self.stop = stop
        self.accumulate = accumulate
        self.returns = returns
        self.node_slot = -1

    def node(self, node: Tensor, g: Any) -> None:
        rec = self.rec
        rec.settle()
        j = rec.index.get(id(node))
        if j is None or (node._op is not None and rec.slots[j].kind is not Kind.OUT):
            rec.refusals.append(Refusal.OUTSIDE)
            return
        if node._retains_grad:
            rec.refusals.append(Refusal.RETAIN_GRAD)
        self.node_slot = j
        if node._op is not None and (self.stop is None or id(node) not in self.stop):
            self.events.append(NodeGrad(j))
            return
        write = self.accumulate and node._op is None
        if write:
            kind = rec.slots[j].kind
            if kind is Kind.ALIAS:
                rec.refusals.append(Refusal.INNER_LEAF_GRAD)
            elif kind is Kind.CAP:
                if node.grad is not rec.seen[id(node)][2]:
                    rec.refusals.append(Refusal.GRAD_RESET)
                rec.pending.append(node)
        out = rec._new(Slot(Kind.GRAD, len(rec.program) - 1), g) if self.returns else None
        self.events.append(LeafGrad(j, write, out))

    def edge(self, node: Tensor, argnum: int, input: Tensor, g: Any) -> None:
        self.events.append(EdgeGrad(self.node_slot, argnum))


# --------------------------------------------------------------------------- the plan


class _Guard(NamedTuple):
    """A captured tensor must keep its shape, dtype and requires_grad for the plan to hold."""

    tensor: Tensor
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    requires_grad: bool


class _Plan:
    """A recorded call; on its first replay, written out as one Python function (`source`)."""

    def __init__(self, rec: _Recorder, result: Any) -> None:
        self.slots = rec.slots
        self.program = rec.program
        self.out = _out_spec(rec, result)
        self.checked = False
        caps = [s.value for s in rec.slots if s.kind is Kind.CAP]
        self.guards = [_Guard(t, t.data.shape, t.data.dtype, t.requires_grad) for t in caps]
        self.modules = list(rec.modules.values())
        self.shapes = [_shape(x) for x in rec.keep]
        self.tensor_args = {
            j
            for j, (s, x) in enumerate(zip(rec.slots, rec.keep))
            if s.kind is Kind.ARG and isinstance(x, Tensor)
        }
        self.source: str | None = None
        self._fn: Callable[[tuple[Any, ...]], Any] | None = None

    def guards_hold(self) -> bool:
        for m, training in self.modules:  # train() and eval() take other branches
            if m.training != training:
                return False
        for t, shape, dtype, rg in self.guards:
            data = t.data
            if data.shape != shape or t.requires_grad != rg:
                return False
            if data.dtype is not dtype and data.dtype != dtype:  # `is` first: `!=` is slow
                return False
        return True

    def replay(self, args: tuple[Any, ...]) -> Any:
        fn = self._fn
        if fn is None:
            self.source, namespace = _Codegen(self).run()
            name = f"<chainrule.compile replay {id(self):x}>"
            # registered so that a traceback through the replay shows the generated line
            linecache.cache[name] = (len(self.source), None, self.source.splitlines(True), name)
            exec(builtins.compile(self.source, name, "exec"), namespace)
            fn = self._fn = namespace["replay"]
        return fn(args)

    def same_as(self, new: _Plan) -> bool:
        return self.difference(new) is None

    def difference(self, new: _Plan) -> str | None:
        """The first way `new` differs from this trace, or None."""
        if len(self.slots) != len(new.slots) or [type(i) for i in self.program] != [
            type(i) for i in new.program
        ]:
            return "a different sequence of ops"
        written = {
            e.leaf
            for i in self.program
            if isinstance(i, Sweep)
            for e in i.events
            if isinstance(e, LeafGrad) and e.write
        }
        for j, (s1, s2) in enumerate(zip(self.slots, new.slots)):
            if s1.kind is not s2.kind or not _same_source(s1, s2, j in written):
                return (
                    f"a different {s1.kind.value} input"
                    if s1.kind is s2.kind
                    else "a different input"
                )
        for i1, i2 in zip(self.program, new.program):
            if isinstance(i1, OpStep) and isinstance(i2, OpStep):
                if (
                    i1.op is not i2.op
                    or i1.srcs != i2.srcs
                    or not _same_value(i1.params, i2.params)
                ):
                    return f"different inputs or parameters of {i1.op.name}"
            elif isinstance(i1, CallStep) and isinstance(i2, CallStep):
                if not (i1.fn is i2.fn or i1.fn == i2.fn) or not _same_value(
                    (i1.args, i1.kwargs, i1.out, i1.seen), (i2.args, i2.kwargs, i2.out, i2.seen)
                ):
                    return f"a different call of {getattr(i1.fn, '__qualname__', i1.fn)}"
            elif i1 != i2:
                return "a different backward sweep or result"
        if not _same_value(self.out, new.out):
            return "a different backward sweep or result"
        return None


class _Codegen:
    """Writes a plan as the source of one function `replay(A)` (A: the call's arguments).

    Slot values are locals `v<j>`, a sweep's gradients locals `g<sweep>_<j>`; forwards, vjps,
    captured tensors and frozen constants are globals. Replay then does no per-node dispatch,
    dict lookup or bookkeeping, yet makes the recorded sweep's calls in its order: every
    gradient sum adds the same operands in the same order, so results are bitwise equal.
    """

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.steps = {ins.out: ins for ins in plan.program if isinstance(ins, OpStep)}
        self.ns: dict[str, Any] = {
            "_nd": np.ndarray,
            "_asarray": np.asarray,
            "_out": Tensor._leaf,
            "_leaf_grad": accumulate_leaf_array,
            "_errstate": np.errstate,
            "_xp": NUMPY_NS,
            "_sum_to": NUMPY_NS.sum_to,
        }
        self.names: dict[int, str] = {}
        self.lines = ["def replay(A):"]

    def run(self) -> tuple[str, dict[str, Any]]:
        plan = self.plan
        for j, slot in enumerate(plan.slots):
            if slot.kind is Kind.ARG:
                self.emit(f"v{j} = A[{slot.value}]" + (".data" if j in plan.tensor_args else ""))
            elif slot.kind is Kind.CAP:
                self.emit(f"v{j} = {self.const(slot.value)}.data")
        sweeps = 0
        for ins in plan.program:
            if isinstance(ins, OpStep):
                self.op(ins)
            elif isinstance(ins, CallStep):
                self.call_step(ins)
            else:
                self.sweep(ins, sweeps)
                sweeps += 1
        self.emit(f"return {self.result(plan.out)}")
        return "\n".join(self.lines) + "\n", self.ns

    def emit(self, line: str, depth: int = 1) -> None:
        self.lines.append("    " * depth + line)

    def const(self, v: Any) -> str:
        """A global name bound to `v` (one per object)."""
        name = self.names.get(id(v))
        if name is None:
            name = self.names[id(v)] = f"_c{len(self.names)}"
            self.ns[name] = v
        return name

    def ref(self, j: int) -> str:
        slot = self.plan.slots[j]
        if slot.kind is Kind.ALIAS:
            return self.ref(slot.value)
        return self.const(slot.value) if slot.kind is Kind.CONST else f"v{j}"

    def param(self, v: Any) -> str:
        if isinstance(v, Ref):
            return self.ref(v.j)
        if isinstance(v, TensorRef):
            return f"_out({self.ref(v.j)}, False)"
        if isinstance(v, ArgRef):
            return f"A[{v.i}]"
        if isinstance(v, (tuple, list)) and _dynamic(v):
            items = "".join(f"{self.param(e)}, " for e in v)
            return f"({items})" if isinstance(v, tuple) else f"[{items}]"
        return self.const(v)

    def call_step(self, step: CallStep) -> None:
        """A recorded call made again; after a side effect, tensors' `.data` is read again
        (an update may have rebound it, as `clip_grad_norm_` does with gradients)."""
        args = [self.param(a) for a in step.args]
        call = self.call(step.fn, args, step.kwargs)
        if step.out is not None:
            self.emit(f"v{step.out} = {call}")
            return
        self.emit(call)
        for j, slot in enumerate(self.plan.slots):  # (also those first used after the call)
            if slot.kind is Kind.CAP:
                self.emit(f"v{j} = {self.const(slot.value)}.data")
            elif j in self.plan.tensor_args:
                self.emit(f"v{j} = A[{slot.value}].data")

    def call(self, fn: Any, args: list[str], params: dict[str, Any]) -> str:
        kw = [(n, self.param(v)) for n, v in params.items()]
        if all(n.isidentifier() and not keyword.iskeyword(n) for n, _ in kw):
            args = args + [f"{n}={e}" for n, e in kw]
        else:  # a name that cannot be a keyword argument: pass a dict
            args = [*args, "**{" + ", ".join(f"{n!r}: {e}" for n, e in kw) + "}"]
        return f"{self.const(fn)}({', '.join(args)})"

    def op(self, step: OpStep) -> None:
        j = step.out
        self.emit(
            f"v{j} = {self.call(step.op.forward, [self.ref(s) for s in step.srcs], step.params)}"
        )
        self.emit(f"if type(v{j}) is not _nd: v{j} = _asarray(v{j})")

    def sweep(self, sweep: Sweep, k: int) -> None:
        """The recorded sweep's events as straight-line code: `backward.sweep` and `pullback`
        with the order, the edges and every sum known in advance."""
        slots, g = self.plan.slots, f"g{k}_"
        # per gradient local: the expression saying whether another consumer may hold it
        shared: dict[int, str] = {}
        done: int | None = None  # the node whose edges were written last
        self.emit("with _errstate(divide='ignore'):")
        start = len(self.lines)
        for event in sweep.events:
            if done is not None and not isinstance(event, EdgeGrad):
                self.emit(f"del {g}{done}", 2)  # release as eager mode does
                done = None
            match event:
                case Seed(root=r, seed=s) if r in shared:
                    self.emit(f"{g}{r} = {g}{r} + {self.ref(s)}", 2)
                    shared[r] = "False"
                case Seed(root=r, seed=s):  # a seed may be the caller's own array
                    self.emit(f"{g}{r} = {self.ref(s)}", 2)
                    shared[r] = "True"
                case LeafGrad(leaf=j, write=write, out=out):
                    slot = slots[j]
                    if write:
                        leaf = (
                            f"A[{slot.value}]" if slot.kind is Kind.ARG else self.const(slot.value)
                        )
                        self.emit(f"_leaf_grad({leaf}, {g}{j}, {shared[j]})", 2)
                    if out is not None:  # what the sweep returns to a transform
                        self.emit(f"v{out} = {g}{j}", 2)
                case NodeGrad(node=j):
                    done = j
                case EdgeGrad(node=j, argnum=i):
                    self.edge(self.steps[j], i, k, shared)
        if done is not None:
            self.emit(f"del {g}{done}", 2)
        if len(self.lines) == start:
            self.emit("pass", 2)

    def edge(self, step: OpStep, i: int, k: int, shared: dict[int, str]) -> None:
        """`pullback`'s call of one vjp, its unbroadcast, and the sum into the input's local."""
        j, pj, g = step.out, step.srcs[i], f"g{k}_"
        rule, extra = vjp_rule(step.op, i)
        ins = [f"{g}{j}", f"v{j}", *(self.ref(s) for s in step.srcs), "_xp"]
        shape = self.const(self.plan.shapes[pj])
        self.emit(f"t = {self.call(rule, ins, {**extra, **step.params})}", 2)
        self.emit(f"if t.shape != {shape}: t = _sum_to(t, {shape})", 2)
        if pj in shared:
            self.emit(f"{g}{pj} = {g}{pj} + t", 2)
            shared[pj] = "False"
        elif self.plan.slots[pj].kind is not Kind.OUT:
            # An identity-like vjp may hand the upstream array on: the leaf must copy it.
            self.emit(f"{g}{pj} = t", 2)
            self.emit(f"s{k}_{pj} = t is {g}{j}", 2)
            shared[pj] = f"s{k}_{pj}"
        else:
            self.emit(f"{g}{pj} = t", 2)
            shared[pj] = "False"

    def result(self, spec: OutSpec) -> str:
        if spec is None:
            return "None"
        if isinstance(spec, Ref):
            return f"_out({self.ref(spec.j)}, False)"
        items = "".join(f"{self.result(s)}, " for s in spec)
        return f"[{items}]" if isinstance(spec, list) else f"({items})"


def _shape(x: Any) -> tuple[int, ...]:
    """A slot's shape, for unbroadcasting gradients into it; () for a non-array value."""
    if isinstance(x, Tensor):
        return tuple(x.data.shape)
    return tuple(x.shape) if isinstance(x, (np.ndarray, np.generic)) else ()


def _dynamic(v: Any) -> bool:
    if isinstance(v, (Ref, TensorRef, ArgRef)):
        return True
    return isinstance(v, (tuple, list)) and any(_dynamic(e) for e in v)


def _out_spec(rec: _Recorder, result: Any) -> OutSpec:
    if result is None:
        return None
    if isinstance(result, Tensor):
        return Ref(rec.source(result))
    if isinstance(result, tuple):
        return tuple(_out_spec(rec, r) for r in result)
    if isinstance(result, list):
        return [_out_spec(rec, r) for r in result]
    raise CompileError(
        f"compile: the function returned a {type(result).__name__}; return None, a Tensor or a "
        "tuple/list of Tensors (call .item() outside the compiled function)"
    )


def _build(spec: OutSpec, env: list[Any]) -> Any:
    if spec is None:
        return None
    if isinstance(spec, Ref):
        return Tensor._leaf(env[spec.j], False)
    if isinstance(spec, tuple):
        return tuple(_build(s, env) for s in spec)
    return [_build(s, env) for s in spec]


def _same_source(s1: Slot, s2: Slot, written: bool) -> bool:
    a, b = s1.value, s2.value
    if s1.kind is Kind.CAP and a is not b:
        # A constant tensor made inside the function is a new object every call: equal values.
        # So is a leaf made there whose .grad no sweep writes (jvp's dummy cotangent).
        if written or a._op is not None or b._op is not None:
            return False
        return a.requires_grad == b.requires_grad and _same_value(a.data, b.data)
    return a is b or _same_value(a, b)


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, (np.ndarray, np.generic)) or isinstance(b, (np.ndarray, np.generic)):
        a, b = np.asarray(a), np.asarray(b)
        return (
            a.dtype == b.dtype
            and a.shape == b.shape
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, (tuple, list)):
        return (
            type(a) is type(b) and len(a) == len(b) and all(_same_value(x, y) for x, y in zip(a, b))
        )
    if isinstance(a, dict):
        return (
            isinstance(b, dict) and a.keys() == b.keys() and all(_same_value(a[k], b[k]) for k in a)
        )
    if isinstance(a, Tensor):
        return a is b
    return type(a) is type(b) and (a == b or (a != a and b != b))
