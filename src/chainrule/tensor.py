"""Tensor: a NumPy array plus the edge to the op that made it, and the reverse-mode engine.

Owns: the Tensor class, grad mode (`no_grad`), `apply` (run an op and record it) and `backprop`
(an iterative reverse topological walk). It knows ops only through the OpDef interface
(`forward`, `vjps`, `name`); the op table itself lives in `ops.py`. Imports NumPy only.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from contextlib import ContextDecorator
from typing import Any

import numpy as np

# --------------------------------------------------------------------------- grad mode


class _State(threading.local):
    grad_enabled = True
    anomaly = False


_state = _State()
# Incremented by every in-place change to a Tensor; while it is 0 backward skips version checks.
_inplace_count = 0


class _GradMode(ContextDecorator):
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._prev: list[bool] = []

    def __enter__(self) -> None:
        self._prev.append(_state.grad_enabled)
        _state.grad_enabled = self.enabled

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._prev.pop()


def no_grad() -> _GradMode:
    """Disable graph recording (thread-local), as a context manager or a decorator.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True)
    >>> with cr.no_grad():
    ...     y = x * 3
    >>> y.requires_grad
    False
    """
    return _GradMode(False)


def enable_grad() -> _GradMode:
    """Re-enable graph recording inside a `no_grad` block."""
    return _GradMode(True)


def is_grad_enabled() -> bool:
    """Whether new ops are recorded for backward in this thread."""
    return _state.grad_enabled


class detect_anomaly(ContextDecorator):
    """Check every op's forward result and every gradient for NaN/inf, and name the first bad op.

    Slow (one `isfinite` per op); meant for debugging. Raises `FloatingPointError`.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([-1.0, 4.0], requires_grad=True)
    >>> with cr.detect_anomaly():
    ...     cr.sqrt(x)
    Traceback (most recent call last):
    ...
    FloatingPointError: sqrt: forward produced NaN/inf from finite inputs (output shape (2,))
    """

    def __enter__(self) -> None:
        self._prev = _state.anomaly
        _state.anomaly = True

    def __exit__(self, *exc: object) -> None:
        _state.anomaly = self._prev


# --------------------------------------------------------------------------- dtypes


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """NumPy array for `data`; Python floats become float32, NumPy float64 stays float64."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def _check_float(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "fc":
        raise TypeError(
            f"{what}: only floating-point tensors can require gradients, got dtype {arr.dtype}"
        )


# --------------------------------------------------------------------------- Tensor


class Tensor:
    """An n-dimensional array that remembers how it was computed.

    Create one with :func:`chainrule.tensor`. `data` is the NumPy array, `grad` the gradient
    (a Tensor, filled in by :meth:`backward`), `requires_grad` whether gradients flow to it.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> y = x ** 2
    >>> y.backward()
    >>> x.grad
    tensor(6., dtype=float32)
    """

    __slots__ = (
        "__weakref__",
        "_op",
        "_params",
        "_parents",
        "_retains_grad",
        "_version",
        "_vsum",
        "data",
        "grad",
        "name",
        "requires_grad",
    )
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__
    __hash__ = object.__hash__  # == is elementwise, hashing is by identity

    def __init__(
        self, data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None
    ) -> None:
        arr = _as_array(data, dtype)
        if requires_grad:
            _check_float(arr, "tensor")
        self.data = arr
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._op: Any = None
        self._parents: tuple[Any, ...] | None = ()
        self._params: dict[str, Any] | None = None
        self._version = 0
        self._vsum = 0
        self._retains_grad = False

    # -- basic properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op that records a graph."""
        return self._op is None

    @property
    def op(self) -> Any:
        """The OpDef that produced this tensor, or None for a leaf."""
        return self._op

    @property
    def parents(self) -> tuple[Any, ...]:
        """The inputs of the op that produced this tensor (Tensors or constants)."""
        if self._parents is None:
            raise RuntimeError(_freed_message(self))
        return self._parents

    @property
    def params(self) -> dict[str, Any]:
        """The op's non-tensor arguments (axis, shape, index, ...)."""
        return self._params or {}

    def item(self) -> Any:
        """The single value as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements, expected 1")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied)."""
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut from the graph."""
        return Tensor._leaf(self.data, False)

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag:
            _check_float(self.data, "requires_grad_")
        if not self.is_leaf and not flag:
            raise RuntimeError("requires_grad_(False) is only allowed on leaves; use detach()")
        self.requires_grad = flag
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retains_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Any:
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = []
        if self.data.dtype != np.float32:
            extra.append(f"dtype={self.data.dtype}")
        if self.requires_grad:
            extra.append("requires_grad=True")
        if self.name:
            extra.append(f"name={self.name!r}")
        elif self._op is not None:
            extra.append(f"op={self._op.name}")
        return "tensor(" + ", ".join([body, *extra]) + ")"

    # -- fast constructors --------------------------------------------------------------
    @staticmethod
    def _leaf(data: np.ndarray, requires_grad: bool) -> Tensor:
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t.name = None
        t._op = None
        t._parents = ()
        t._params = None
        t._version = 0
        t._vsum = 0
        t._retains_grad = False
        return t

    # -- in-place ---------------------------------------------------------------------
    def __setitem__(self, index: Any, value: Any) -> None:
        global _inplace_count
        if _state.grad_enabled and self.requires_grad:
            raise RuntimeError(
                "in-place assignment to a tensor that requires grad would change the graph "
                "behind its back; build a new tensor (chainrule.where, concatenate) or assign "
                "under chainrule.no_grad()"
            )
        if isinstance(value, Tensor):
            if _state.grad_enabled and value.requires_grad:
                raise RuntimeError("in-place assignment of a tensor that requires grad")
            value = value.data
        self.data[_unwrap_index(index)] = value
        self._version += 1
        _inplace_count += 1

    def _bump_version(self) -> None:
        """Record an in-place change of `.data` made outside the graph (optimizers)."""
        global _inplace_count
        self._version += 1
        _inplace_count += 1

    # -- backward -----------------------------------------------------------------------
    def backward(
        self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, walking the graph once.

        Parameters
        ----------
        gradient : array_like, optional
            The upstream gradient (same shape as self); required unless self has one element.
        retain_graph : bool
            Keep the graph so backward can run through it again.
        create_graph : bool
            Record the backward pass itself, for higher-order derivatives.

        Raises
        ------
        RuntimeError
            If self does not require grad, or its graph was already freed.
        ValueError
            If self is not a scalar and no `gradient` is given, or shapes disagree.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph "
                "(were the inputs created with requires_grad=True? was it made under no_grad?)"
            )
        if gradient is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward(): output has shape {self.shape}; gradient can be implicit only "
                    "for a scalar output, pass gradient= of the same shape"
                )
            seed: Any = np.ones_like(self.data)
        else:
            seed = gradient if isinstance(gradient, Tensor) else _as_array(gradient, self.dtype)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward(): gradient has shape {seed.shape}, output has shape {self.shape}"
                )
        backprop(
            [self],
            [seed],
            retain_graph=retain_graph or create_graph,
            create_graph=create_graph,
            accumulate=True,
        )

    # Operators, math methods and indexing are attached in `composite.py`.


def _freed_message(t: Tensor) -> str:
    return (
        f"the graph behind {_label(t)} was freed by an earlier backward(); call "
        "backward(retain_graph=True) the first time to backward through it again"
    )


def _label(t: Tensor) -> str:
    if t.name:
        return f"tensor {t.name!r}"
    return f"the output of {t._op.name}" if t._op is not None else "a leaf tensor"


def _unwrap_index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# --------------------------------------------------------------------------- apply


def apply(op: Any, *args: Any, **params: Any) -> Tensor:
    """Run `op.forward` on the arrays of `args` and record the node if a gradient may flow.

    `args` are Tensors or constants (Python numbers, ndarrays); `params` are non-tensor
    arguments passed to forward and to every vjp.
    """
    arrays = [a.data if isinstance(a, Tensor) else a for a in args]
    try:
        out = op.forward(*arrays, **params)
    except (ValueError, TypeError, IndexError) as exc:
        if str(exc).startswith("shapes"):
            raise type(exc)(f"{op.name}: {exc}") from None
        shapes = ", ".join(str(np.shape(a)) for a in arrays)
        raise type(exc)(f"{op.name}: inputs of shapes {shapes}: {exc}") from None
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    t = object.__new__(Tensor)
    t.data = out
    t.grad = None
    t.name = None
    t._retains_grad = False
    t._version = 0
    if _state.grad_enabled:
        vsum = 0
        needs = False
        for a in args:
            if isinstance(a, Tensor):
                vsum += a._version
                if a.requires_grad:
                    needs = True
        if needs:
            t.requires_grad = True
            t._op = op
            t._parents = args
            t._params = params or None
            t._vsum = vsum
            if _state.anomaly:
                _check_forward(op, arrays, out)
            return t
    t.requires_grad = False
    t._op = None
    t._parents = ()
    t._params = None
    t._vsum = 0
    if _state.anomaly:
        _check_forward(op, arrays, out)
    return t


def _check_forward(op: Any, arrays: Sequence[Any], out: np.ndarray) -> None:
    if out.dtype.kind not in "fc" or np.isfinite(out).all():
        return
    if all(np.isfinite(np.asarray(a)).all() for a in arrays if np.asarray(a).dtype.kind in "fc"):
        raise FloatingPointError(
            f"{op.name}: forward produced NaN/inf from finite inputs (output shape {out.shape})"
        )


# --------------------------------------------------------------------------- backprop


def toposort(roots: Iterable[Tensor]) -> list[Tensor]:
    """Nodes reachable from `roots` through tensors that require grad, inputs before outputs.

    Iterative (an explicit stack), so a chain of a million ops does not hit the recursion limit.
    """
    order: list[Tensor] = []
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in roots]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        if node._op is None:
            continue
        parents = node._parents
        if parents is None:
            raise RuntimeError(_freed_message(node))
        for p in parents:
            if isinstance(p, Tensor) and p.requires_grad and id(p) not in visited:
                stack.append((p, False))
    return order


def _check_versions(node: Tensor) -> None:
    vsum = node._version
    for p in node._parents or ():
        if isinstance(p, Tensor):
            vsum += p._version
    if vsum != node._vsum:
        raise RuntimeError(
            f"{node._op.name}: one of the tensors it needs for its gradient was modified in "
            "place after the op ran; the gradient would be silently wrong"
        )


def backprop(
    roots: Sequence[Tensor],
    seeds: Sequence[Any],
    *,
    retain_graph: bool = False,
    create_graph: bool | None = False,
    accumulate: bool = True,
    inputs: Sequence[Tensor] | None = None,
) -> dict[int, Any]:
    """Reverse-mode sweep from `roots` with upstream gradients `seeds`.

    With `accumulate`, leaf gradients are added into `.grad`. With `inputs`, the sweep stops at
    those tensors (they act as leaves) and only nodes that lead to them are visited. Returns the
    gradients that reached `inputs` (or every leaf), keyed by `id(tensor)`. With `create_graph`
    the vjps run on Tensors (namespace `ops.TENSOR_NS`) so the result is itself differentiable;
    otherwise they run on plain arrays (`ops.NUMPY_NS`), the fast path. `create_graph=None`
    decides by itself: record only if the result depends on tensors outside the swept subgraph
    (an enclosing transform's inputs, a seed that requires grad), which is what lets
    `grad(grad(f))` compose while a lone `grad(f)` stays on the fast path.
    """
    from chainrule.ops import NUMPY_NS, TENSOR_NS

    stop = {id(t) for t in inputs} if inputs is not None else None
    order = _relevant_order(roots, stop)
    if create_graph is None:
        create_graph = _state.grad_enabled and _depends_outside(order, seeds, stop)
        retain_graph = retain_graph or create_graph
    xp = TENSOR_NS if create_graph else NUMPY_NS
    grads: dict[int, Any] = {}
    for r, s in zip(roots, seeds):
        s = _to_mode(s, create_graph)
        # Seeds may be the caller's own arrays: never let them become a leaf's .grad uncopied.
        grads[id(r)] = (s if create_graph else _Shared(s)) if id(r) not in grads else (
            _plus(grads[id(r)], s)
        )
    results: dict[int, Any] = {}
    check_versions = _inplace_count > 0
    with _GradMode(create_graph), np.errstate(divide="ignore"):
        for k in range(len(order) - 1, -1, -1):
            node = order[k]
            order[k] = None  # type: ignore[call-overload]  # release as we go
            g = grads.pop(id(node), None)
            if g is None:
                continue
            if node._op is None or (stop is not None and id(node) in stop):
                results[id(node)] = g.a if type(g) is _Shared else g
                if accumulate and node.requires_grad and node._op is None:
                    _accumulate_leaf(node, g, create_graph)
                continue
            if type(g) is _Shared:
                g = g.a
            if node._retains_grad and accumulate:
                node.grad = g if create_graph else Tensor._leaf(np.array(g), False)
            if check_versions:
                _check_versions(node)
            _propagate(node, g, xp, create_graph, grads)
            if _state.anomaly:
                _check_backward(node, grads)
            if not retain_graph:
                node._parents = None
    return results


def _relevant_order(roots: Sequence[Tensor], stop: set[int] | None) -> list[Tensor]:
    """Like `toposort`, but only nodes with a path to a stop node, not expanded past them."""
    if stop is None:
        return toposort(roots)
    order: list[Tensor] = []
    reaches: dict[int, bool] = {}
    visited: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(r, False) for r in roots]
    while stack:
        node, expanded = stack.pop()
        nid = id(node)
        if expanded:
            ok = nid in stop or any(
                reaches.get(id(p), False) for p in node._parents or () if isinstance(p, Tensor)
            )
            reaches[nid] = ok
            if ok:
                order.append(node)
            continue
        if nid in visited:
            continue
        visited.add(nid)
        stack.append((node, True))
        if nid in stop or node._op is None:
            continue
        if node._parents is None:
            raise RuntimeError(_freed_message(node))
        for p in node._parents:
            if isinstance(p, Tensor) and p.requires_grad and id(p) not in visited:
                stack.append((p, False))
    return order


def _depends_outside(order: list[Tensor], seeds: Sequence[Any], stop: set[int] | None) -> bool:
    if any(isinstance(s, Tensor) and s.requires_grad for s in seeds):
        return True
    inside = {id(n) for n in order}
    for node in order:
        if node._op is None or (stop is not None and id(node) in stop):
            if node._op is not None:
                return True  # an input that is itself computed from something else
            continue
        for p in node._parents or ():
            if isinstance(p, Tensor) and p.requires_grad and id(p) not in inside:
                return True
    return False


def _to_mode(g: Any, create_graph: bool) -> Any:
    if create_graph:
        return g if isinstance(g, Tensor) else Tensor._leaf(np.asarray(g), False)
    return g.data if isinstance(g, Tensor) else np.asarray(g)


def _propagate(
    node: Tensor, g: Any, xp: Any, create_graph: bool, grads: dict[int, Any]
) -> None:
    """Call each input's vjp with the upstream gradient and add the result to that input."""
    op = node._op
    parents = node._parents
    params = node._params or {}
    if create_graph:
        inputs: Sequence[Any] = parents  # type: ignore[assignment]
        out: Any = node
    else:
        inputs = [p.data if isinstance(p, Tensor) else p for p in parents]  # type: ignore[union-attr]
        out = node.data
    vjps = op.vjps
    for i, p in enumerate(parents):  # type: ignore[arg-type]
        if not isinstance(p, Tensor) or not p.requires_grad:
            continue
        vjp = vjps[0] if op.variadic else vjps[i]
        if vjp is None:
            raise RuntimeError(f"{op.name}: input {i} is not differentiable")
        gi = vjp(g, out, *inputs, xp, argnum=i, **params) if op.variadic else (
            vjp(g, out, *inputs, xp, **params)
        )
        if gi.shape != p.data.shape:
            gi = xp.sum_to(gi, p.data.shape)
        pid = id(p)
        acc = grads.get(pid)
        if acc is None:
            # An identity-like vjp may hand the same array to several inputs: mark it shared.
            grads[pid] = gi if (create_graph or gi is not g) else _Shared(gi)
        else:
            grads[pid] = _plus(acc, gi)


class _Shared:
    """A gradient array that another consumer may also hold; copy before mutating."""

    __slots__ = ("a",)

    def __init__(self, a: np.ndarray) -> None:
        self.a = a


def _plus(acc: Any, gi: Any) -> Any:
    a = acc.a if type(acc) is _Shared else acc
    b = gi.a if type(gi) is _Shared else gi
    return a + b


def _accumulate_leaf(leaf: Tensor, g: Any, create_graph: bool) -> None:
    if create_graph:
        g = g if isinstance(g, Tensor) else Tensor._leaf(np.asarray(g), False)
        leaf.grad = g if leaf.grad is None else leaf.grad + g
        return
    if type(g) is _Shared:
        g = g.a.copy()
    elif isinstance(g, Tensor):
        g = g.data
    if g.dtype != leaf.data.dtype:
        g = g.astype(leaf.data.dtype)
    if leaf.grad is None:
        if g.base is not None or not g.flags.writeable:
            g = np.array(g)
        leaf.grad = Tensor._leaf(g, False)
    else:
        leaf.grad.data = leaf.grad.data + g


def _check_backward(node: Tensor, grads: dict[int, Any]) -> None:
    for p in node._parents or ():
        if isinstance(p, Tensor) and id(p) in grads:
            g = grads[id(p)]
            arr = g.a if type(g) is _Shared else (g.data if isinstance(g, Tensor) else g)
            if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
                raise FloatingPointError(
                    f"{node._op.name}: backward produced NaN/inf in the gradient of its input "
                    f"(shape {arr.shape})"
                )


GradFn = Callable[..., Any]
