"""`compile(fn)`: trace a static training step once, then replay it on plain NumPy arrays.

Owns the trace (every `apply` and the backward sweep, recorded through the hooks in `tensor.py`
and `backward.py` while this thread's `mode._state.recorder` is set), the replay plan and its
guards. A plan is written out as the
source of one Python function (`_Codegen`) that builds no Tensors and walks no graph: it calls
the same forwards and vjps, and sums gradients in the same order, as eager mode would.
"""

from __future__ import annotations

import builtins
import functools
import importlib
import keyword
import linecache
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.mode import _state
from chainrule.ops import NUMPY_NS
from chainrule.tensor import Tensor

__all__ = ["CompileError", "compile"]

# The module, not `chainrule.tensor` the function that the package namespace exports.
_tensor = importlib.import_module("chainrule.tensor")

_MAX_PLANS = 8  # traces kept per function (one per argument signature), oldest dropped


class CompileError(RuntimeError):
    """The function cannot be replayed faithfully (what was frozen or unsupported is named)."""


def compile(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Trace `fn` on its first call and replay the recorded ops on later calls (as `jax.jit`).

    The first call runs `fn` normally while recording every op and the `backward()` sweep; the
    second call runs it again and checks that the trace is the same; later calls with arguments
    of the same shapes and dtypes replay the recorded forwards and vjps on plain arrays, write
    every leaf's `.grad` exactly as `backward()` would, and return the same outputs (as
    detached tensors). New shapes, dtypes or Python-value arguments trace again.

    What may change between calls: the values of the Tensor/ndarray arguments, and the `.data`
    of tensors `fn` uses by reference (parameters updated in place by an optimizer are read
    fresh). What is frozen at trace time, as under `jax.jit`: Python control flow, Python
    numbers, and anything computed from array values outside chainrule ops (NumPy on `.data`,
    `.item()`, comparison masks, random draws such as Dropout's mask). The check on the second
    call raises `CompileError` when a frozen value changed. Keep `optimizer.zero_grad()` and
    `optimizer.step()` outside the compiled function.

    Parameters
    ----------
    fn : callable
        Takes Tensors, ndarrays and Python scalars positionally; returns None, a Tensor or a
        tuple/list of Tensors. May call `backward()` (plain: no create_graph, no inputs=).

    Raises
    ------
    CompileError
        When the trace cannot be replayed (an in-place update inside `fn`, a non-Tensor
        result, `create_graph`, a frozen value that changed between the first two calls).

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
        self.plans: dict[Any, _Plan] = {}

    def __call__(self, *args: Any) -> Any:
        if _state.recorder is not None or _state.anomaly:
            return self.fn(*args)  # inside another trace, or debugging: run eagerly
        key = (_state.grad_enabled, *map(_arg_key, args))
        plan = self.plans.get(key)
        if plan is not None and plan.checked and plan.guards_hold():
            return plan.replay(args)
        result, new = _trace(self.fn, args)
        if plan is not None and plan.guards_hold():
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
            if len(self.plans) >= _MAX_PLANS:
                self.plans.pop(next(iter(self.plans)))
            self.plans[key] = new
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


def _trace(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, _Plan]:
    rec = _Recorder(args)
    _state.recorder = rec
    try:
        result = fn(*args)
    finally:
        _state.recorder = None
    plan = rec.finish(result)
    return _build(plan.out, [t.data if isinstance(t, Tensor) else t for t in rec.keep]), plan


class _Recorder:
    """Collects one call: an environment of values (arguments, captured tensors, constants,
    op outputs) addressed by index, the op steps over it, and the backward sweeps."""

    def __init__(self, args: tuple[Any, ...]) -> None:
        self.args = args
        self.index: dict[int, int] = {}  # id(Tensor or array) -> env index
        self.kinds: list[tuple[str, Any]] = []  # per env index: ("arg", i) | ("cap", t) | ...
        self.keep: list[Any] = []  # keeps traced objects alive so their ids stay unique
        self.steps: list[tuple[Any, tuple[int, ...], dict[str, Any], int]] = []
        self.sweeps: list[Any] = []
        self.program: list[tuple[str, int]] = []  # ops and sweeps in the order they ran
        self.versions: dict[int, tuple[Tensor, int]] = {}
        for i, a in enumerate(args):
            self._new(("arg", i), a)
            if isinstance(a, Tensor):
                self.index.setdefault(id(a.data), len(self.kinds) - 1)

    def _new(self, kind: tuple[str, Any], obj: Any) -> int:
        self.kinds.append(kind)
        self.keep.append(obj)
        self.index[id(obj)] = len(self.kinds) - 1
        return len(self.kinds) - 1

    def source(self, a: Any) -> int:
        """The env index of an op input: known object, captured tensor, or frozen constant."""
        j = self.index.get(id(a))
        if j is not None:
            return j
        if isinstance(a, Tensor) and not a.requires_grad and id(a.data) in self.index:
            return self.index[id(a.data)]  # x.detach() of a traced value: the same array
        if isinstance(a, Tensor):
            self.versions[id(a)] = (a, a._version)
            return self._new(("cap", a), a)
        return self._new(("const", a), a)

    def apply(self, op: Any, args: tuple[Any, ...], params: dict[str, Any]) -> Tensor:
        srcs = tuple(self.source(a) for a in args)
        _state.recorder = None
        try:
            t = _tensor.apply(op, *args, **params)
        finally:
            _state.recorder = self
        dyn = {k: self._param(v) for k, v in params.items()}
        mask = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        j = self._new(("out", len(self.steps)), t)
        self.index.setdefault(id(t.data), j)
        self.steps.append((op, srcs, dyn, j, mask))
        self.program.append(("op", len(self.steps) - 1))
        return t

    def _param(self, v: Any) -> Any:
        """An array param that is an argument's own array (labels) is read fresh at replay."""
        if isinstance(v, np.ndarray) and id(v) in self.index:
            return _Ref(self.index[id(v)])
        if isinstance(v, tuple) and any(isinstance(e, np.ndarray) for e in v):
            return tuple(self._param(e) for e in v)
        return v

    def backward(self, roots: Any, seeds: Any, order: list[Tensor], *how: Any) -> None:
        create_graph, accumulate, inputs = how
        if create_graph is not False or not accumulate or inputs is not None:
            self.sweeps.append("unsupported")
            return
        nodes = []
        for t in order:
            j = self.index.get(id(t))
            if j is None or (t._op is not None and self.kinds[j][0] != "out"):
                self.sweeps.append("outside")
                return
            if t._retains_grad:
                self.sweeps.append("retain_grad")
                return
            nodes.append(j)
        root_idx = [self.index[id(r)] for r in roots]
        seed_idx = [self.source(s.data if isinstance(s, Tensor) else s) for s in seeds]
        self.sweeps.append((root_idx, seed_idx, nodes))
        self.program.append(("sweep", len(self.sweeps) - 1))

    def finish(self, result: Any) -> _Plan:
        for t, v in self.versions.values():
            if t._version != v:
                raise CompileError(
                    "compile: the function changed a tensor it uses in place (an optimizer step?); "
                    "replaying would skip that update. Call optimizer.step() and zero_grad() "
                    "outside the compiled function"
                )
        for s in self.sweeps:
            if isinstance(s, str):
                raise CompileError(_SWEEP_ERRORS[s])
        return _Plan(self, result)


_SWEEP_ERRORS = {
    "unsupported": "compile: only a plain backward() is supported inside a compiled function "
    "(not create_graph, inputs= or chainrule.grad)",
    "outside": "compile: backward() reached a graph built outside the compiled function",
    "retain_grad": "compile: retain_grad() on intermediate tensors is not supported",
}


class _Ref:
    """A param slot read from the environment at replay."""

    __slots__ = ("j",)

    def __init__(self, j: int) -> None:
        self.j = j

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Ref) and other.j == self.j

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------- the plan


class _Plan:
    """A recorded call; on its first replay, written out as one Python function (`source`)."""

    def __init__(self, rec: _Recorder, result: Any) -> None:
        self.kinds = rec.kinds
        self.steps = rec.steps
        self.sweeps = rec.sweeps
        self.program_spec = rec.program
        self.out = _out_spec(rec, result)
        self.checked = False
        self.caps = [t for k, t in rec.kinds if k == "cap"]
        self.guards = [(t, t.data.shape, t.data.dtype, t.requires_grad) for t in self.caps]
        self.shapes = [np.shape(x.data if isinstance(x, Tensor) else x) for x in rec.keep]
        self.tensor_args = {j for j, (k, _) in enumerate(rec.kinds) if k == "arg"}
        self.tensor_args &= {j for j, x in enumerate(rec.keep) if isinstance(x, Tensor)}
        self.source: str | None = None
        self._fn: Callable[[tuple[Any, ...]], Any] | None = None

    def guards_hold(self) -> bool:
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
        if len(self.kinds) != len(new.kinds) or self.program_spec != new.program_spec:
            return "a different sequence of ops"
        for (k1, v1), (k2, v2) in zip(self.kinds, new.kinds):
            if k1 != k2 or not _same_source(k1, v1, v2):
                return f"a different {k1} input" if k1 == k2 else "a different input"
        for (op1, s1, p1, _, m1), (op2, s2, p2, _, m2) in zip(self.steps, new.steps):
            if op1 is not op2 or s1 != s2 or m1 != m2 or not _same_value(p1, p2):
                return f"different inputs or parameters of {op1.name}"
        if self.sweeps != new.sweeps or not _same_value(self.out, new.out):
            return "a different backward sweep or result"
        return None


class _Codegen:
    """Writes a plan as the source of one function `replay(A)` (A: the call's arguments).

    Env values are locals `v<j>`, a sweep's gradients locals `g<sweep>_<j>`; forwards, vjps,
    captured tensors and frozen constants are globals. Replay then does no per-node dispatch,
    dict lookup or bookkeeping, yet makes eager mode's calls in eager mode's order: every
    gradient sum adds the same operands in the same order, so results are bitwise equal.
    """

    def __init__(self, plan: _Plan) -> None:
        self.plan = plan
        self.by_out = {st[3]: st for st in plan.steps}
        self.ns: dict[str, Any] = {
            "_nd": np.ndarray,
            "_asarray": np.asarray,
            "_out": Tensor._leaf,
            "_leaf_grad": _leaf_grad,
            "_errstate": np.errstate,
            "_xp": NUMPY_NS,
            "_sum_to": NUMPY_NS.sum_to,
        }
        self.names: dict[int, str] = {}
        self.lines = ["def replay(A):"]

    def run(self) -> tuple[str, dict[str, Any]]:
        plan = self.plan
        for j, (kind, v) in enumerate(plan.kinds):
            if kind == "arg":
                self.emit(f"v{j} = A[{v}].data" if j in plan.tensor_args else f"v{j} = A[{v}]")
            elif kind == "cap":
                self.emit(f"v{j} = {self.const(v)}.data")
        for kind, k in plan.program_spec:
            self.op(k) if kind == "op" else self.sweep(k)
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
        kind, v = self.plan.kinds[j]
        return self.const(v) if kind == "const" else f"v{j}"

    def param(self, v: Any) -> str:
        if isinstance(v, _Ref):
            return self.ref(v.j)
        if isinstance(v, tuple) and _dynamic(v):
            return "(" + "".join(f"{self.param(e)}, " for e in v) + ")"
        return self.const(v)

    def call(self, fn: Any, args: list[str], params: dict[str, Any]) -> str:
        kw = [(n, self.param(v)) for n, v in params.items()]
        if all(n.isidentifier() and not keyword.iskeyword(n) for n, _ in kw):
            args = args + [f"{n}={e}" for n, e in kw]
        else:  # a name that cannot be a keyword argument: pass a dict
            args = [*args, "**{" + ", ".join(f"{n!r}: {e}" for n, e in kw) + "}"]
        return f"{self.const(fn)}({', '.join(args)})"

    def op(self, k: int) -> None:
        op, srcs, params, j, _ = self.plan.steps[k]
        self.emit(f"v{j} = {self.call(op.forward, [self.ref(s) for s in srcs], params)}")
        self.emit(f"if type(v{j}) is not _nd: v{j} = _asarray(v{j})")

    def sweep(self, k: int) -> None:
        """backward.backprop's loop with the order, the edges and every sum known in advance."""
        roots, seeds, nodes = self.plan.sweeps[k]
        kinds, g = self.plan.kinds, f"g{k}_"
        shared: dict[int, str] = {}  # per gradient that reaches a leaf: may another hold it?
        self.emit("with _errstate(divide='ignore'):")
        start = len(self.lines)
        for r, s in zip(roots, seeds):
            if r in shared:
                self.emit(f"{g}{r} = {g}{r} + {self.ref(s)}", 2)
                shared[r] = "False"
            else:  # a seed may be the caller's own array
                self.emit(f"{g}{r} = {self.ref(s)}", 2)
                shared[r] = "True"
        for j in reversed(nodes):
            if j not in shared:
                continue  # no gradient reached it
            kind, v = kinds[j]
            if kind != "out":
                leaf = f"A[{v}]" if kind == "arg" else self.const(v)
                self.emit(f"_leaf_grad({leaf}, {g}{j}, {shared[j]})", 2)
                continue
            op, srcs, params, _, mask = self.by_out[j]
            ins = [f"{g}{j}", f"v{j}", *(self.ref(s) for s in srcs), "_xp"]
            for i in (i for i, m in enumerate(mask) if m):
                vjp = op.vjps[0] if op.variadic else op.vjps[i]
                kw = {"argnum": i, **params} if op.variadic else params
                pj, shape = srcs[i], self.const(self.shapes(srcs[i]))
                self.emit(f"t = {self.call(vjp, ins, kw)}", 2)
                self.emit(f"if t.shape != {shape}: t = _sum_to(t, {shape})", 2)
                if pj in shared:
                    self.emit(f"{g}{pj} = {g}{pj} + t", 2)
                    shared[pj] = "False"
                elif kinds[pj][0] != "out":
                    self.emit(f"{g}{pj} = t", 2)
                    self.emit(f"s{k}_{pj} = t is {g}{j}", 2)
                    shared[pj] = f"s{k}_{pj}"
                else:
                    self.emit(f"{g}{pj} = t", 2)
                    shared[pj] = "False"
            self.emit(f"del {g}{j}", 2)  # release as eager mode does
        if len(self.lines) == start:
            self.emit("pass", 2)

    def shapes(self, j: int) -> tuple[int, ...]:
        return self.plan.shapes[j]

    def result(self, spec: Any) -> str:
        if spec is None:
            return "None"
        if isinstance(spec, _Ref):
            return f"_out({self.ref(spec.j)}, False)"
        items = "".join(f"{self.result(s)}, " for s in spec)
        return f"[{items}]" if isinstance(spec, list) else f"({items})"


def _leaf_grad(leaf: Tensor, g: Any, shared: bool) -> None:
    """backward._accumulate_leaf on arrays: a new `.grad`, or the sum with the one there."""
    if shared:
        g = g.copy()
    dtype = leaf.data.dtype
    if g.dtype is not dtype and g.dtype != dtype:
        g = g.astype(dtype)
    grad = leaf.grad
    if grad is None:
        if g.base is not None or not g.flags.writeable:
            g = np.array(g)
        leaf.grad = Tensor._leaf(g, False)
    else:
        grad.data = grad.data + g


def _dynamic(v: Any) -> bool:
    return isinstance(v, _Ref) or (isinstance(v, tuple) and any(_dynamic(e) for e in v))


def _out_spec(rec: _Recorder, result: Any) -> Any:
    if result is None:
        return None
    if isinstance(result, Tensor):
        return _Ref(rec.source(result))
    if isinstance(result, (tuple, list)):
        return type(result)(_out_spec(rec, r) for r in result)
    raise CompileError(
        f"compile: the function returned a {type(result).__name__}; return None, a Tensor or a "
        "tuple/list of Tensors (call .item() outside the compiled function)"
    )


def _build(spec: Any, env: list[Any]) -> Any:
    if spec is None:
        return None
    if isinstance(spec, _Ref):
        return Tensor._leaf(env[spec.j], False)
    return type(spec)(_build(s, env) for s in spec)


def _same_source(kind: str, a: Any, b: Any) -> bool:
    if kind == "cap" and a is not b:
        # a constant tensor made inside the function is a new object every call: equal values
        return not (a.requires_grad or b.requires_grad) and _same_value(a.data, b.data)
    return kind == "out" or a is b or _same_value(a, b)


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
