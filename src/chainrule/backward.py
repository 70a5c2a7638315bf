"""The reverse sweep: topological order, one per-node pullback, accumulation, graph freeing.

The only reverse sweep in chainrule: eager `backward()`, the transforms, `compile` (which
records it through hooks and replays the record) and viz's per-edge gradients all run `sweep`,
which walks the graph iteratively (no recursion) and calls `pullback` on each node: the vjps
on plain arrays (fast path) or on Tensors (when the backward pass is recorded), unbroadcast
once. Knows ops only through `op.vjps`, `op.variadic` and `op.name`. Imports NumPy and `tensor`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Sequence
from heapq import heappop, heappush
from operator import attrgetter
from typing import Any

import numpy as np

import chainrule.tensor as _tensor
from chainrule.mode import _state
from chainrule.tensor import Tensor, _arrays, _freed_message

# inf from a division is a legitimate gradient (sqrt at 0, as torch): the sweeps run with
# NumPy's division warnings off (under detect_anomaly, every non-finite value is reported by op
# name instead).
_QUIET: dict[str, Any] = {"divide": "ignore"}


def toposort(roots: Iterable[Tensor]) -> list[Tensor]:
    """Nodes reachable from `roots` through tensors that require grad, in the order they were
    made (their clock stamps; leaves, stamped 0, first, in the order found).

    A node is made after its inputs, so this is a topological order, and the one eager
    `backward()` sweeps in (newest first, see `_plain_loop`) without computing it: every sweep
    adds up a node's incoming gradients in the same order, which keeps `compile`'s replay and
    the transforms bitwise equal to eager. Iterative (an explicit stack), so a chain of a
    million ops does not hit the recursion limit.
    """
    found: list[Tensor] = []
    # Keyed by the tensors themselves: Tensor hashes by identity (a C slot), faster than id().
    seen: set[Tensor] = set()
    stack: list[Tensor] = list(roots)
    push, pop = stack.append, stack.pop
    while stack:
        node = pop()
        if node in seen:
            continue
        seen.add(node)
        found.append(node)
        if node._op is None:
            continue
        parents = node._parents
        if parents is None:
            raise RuntimeError(_freed_message(node))
        for p in parents:
            # `type(p) is Tensor` first: it spares the isinstance call in the common case
            if (type(p) is Tensor or isinstance(p, Tensor)) and p.requires_grad and p not in seen:
                push(p)
    found.sort(key=_stamp)  # stable: leaves keep the order they were found in
    return found


_stamp = attrgetter("_clock")


def _check_versions(node: Tensor) -> None:
    """Refuse `node` if it or an input changed in place after its op ran (its vjps read them).

    The caller skips nodes stamped after the last in-place change anywhere: nothing changed.
    """
    made = node._clock
    for t in (node, *(node._parents or ())):
        vc = t._vc if isinstance(t, Tensor) else None
        if vc is not None and vc.stamp > made:
            raise RuntimeError(
                f"{node._op.name}: one of the tensors it needs for its gradient was modified "
                "in place after the op ran; the gradient would be silently wrong"
            )


class SweepHooks:
    """Observers of a reverse sweep, told every node's gradient and every edge's contribution.

    Subclass and override what you need. Eager `backward()` runs with none; `chainrule.compile`
    records the sweep it replays through them, `viz` keeps every intermediate gradient with
    them, and `detect_anomaly` checks each contribution. The gradients passed are the sweep's
    own arrays (Tensors under `create_graph`): read them, never mutate them.
    """

    def node(self, node: Tensor, g: Any) -> None:
        """`node`'s gradient is complete (sum over its consumers), before it moves on."""

    def edge(self, node: Tensor, argnum: int, input: Tensor, g: Any) -> None:
        """`node` sends `g` (unbroadcast to the input's shape) back to its input `argnum`."""


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
    if inputs is None and create_graph is False and not _state.hooked:
        # eager backward(): plain arrays, no observers; the plain loop finds its own order
        return sweep(None, roots, seeds, None, retain_graph, False, accumulate)
    stop = {id(t) for t in inputs} if inputs is not None else None
    order = toposort(roots) if stop is None else _relevant_order(roots, stop)
    hooks: list[SweepHooks] = []
    if _state.hooked:  # this thread is tracing for chainrule.compile, or detecting anomalies
        if _state.recorder is not None:  # compile records the sweep it replays
            hooks.append(_state.recorder.sweep(roots, seeds, create_graph, accumulate, inputs))
        if _state.anomaly:
            hooks.append(_AnomalyHooks())
    if create_graph is None:
        create_graph = _state.grad_enabled and _depends_outside(order, seeds, stop)
        retain_graph = retain_graph or create_graph
    return sweep(order, roots, seeds, stop, retain_graph, create_graph, accumulate, hooks)


def sweep(
    order: list[Tensor] | None,
    roots: Sequence[Tensor],
    seeds: Sequence[Any],
    stop: set[int] | None = None,
    retain_graph: bool = False,
    create_graph: bool = False,
    accumulate: bool = True,
    hooks: Sequence[SweepHooks] = (),
) -> dict[int, Any]:
    """The one reverse sweep over `order` (from `toposort`; emptied as it goes): every node's
    gradient is the sum of what its consumers' `pullback`s sent it, in reverse order. The
    plain-array loop (no hooks, no `create_graph`) goes newest node first by itself and needs
    no `order` (None); given one with `stop`, it sweeps only the nodes in it.

    Every consumer of gradients (eager `backward()`, the transforms, `compile`'s replay, viz)
    comes through here; what they do differently is in the flags and the `hooks`.
    """
    xp = _namespaces()[1 if create_graph else 0]
    # Keyed by the tensors themselves: Tensor hashes by identity (a C slot), faster than id().
    grads: dict[Tensor, Any] = {}
    for r, s in zip(roots, seeds):
        if create_graph or type(s) is not np.ndarray:
            s = _to_mode(s, create_graph)
        # Seeds may be the caller's own arrays: never let them become a leaf's .grad uncopied.
        grads[r] = (s if create_graph else (s,)) if r not in grads else _plus(grads[r], s)
    results: dict[int, Any] = {}
    last_inplace = _tensor._inplace_last
    # Grad mode is set and restored by hand rather than with _GradMode: a context manager
    # object per backward() is a measurable part of a small step (benchmarks/ W2).
    state = _state
    was_enabled = state.grad_enabled
    state.grad_enabled = create_graph
    try:
        if not create_graph and not hooks:
            expand = None
            if stop is not None and order is not None:
                expand = {n for n in order if n._op is not None and id(n) not in stop}
            _plain_loop(grads, results, stop, expand, last_inplace, retain_graph, accumulate, xp)
            return results
        assert order is not None  # only the plain loop goes without
        quiet: dict[str, Any] = {"all": "ignore"} if state.hooked and state.anomaly else _QUIET
        with np.errstate(**quiet):
            pop = order.pop
            while order:
                node = pop()  # outputs first; popping releases each node as we go
                g = grads.pop(node, None)
                if g is None:
                    continue
                shared = type(g) is tuple
                if shared:
                    g = g[0]
                for h in hooks:
                    h.node(node, g)
                if node._op is None or (stop is not None and id(node) in stop):
                    results[id(node)] = g
                    if accumulate and node.requires_grad and node._op is None:
                        if create_graph:
                            _accumulate_leaf_tensor(node, g)
                        else:
                            arr = g.data if isinstance(g, Tensor) else g
                            accumulate_leaf_array(node, arr, shared)
                    continue
                if node._retains_grad and accumulate:
                    node.grad = g if create_graph else Tensor._leaf(np.array(g), False)
                if node._clock < last_inplace:  # else nothing changed in place since the op ran
                    _check_versions(node)
                for i, p, gi in pullback(node, g, xp, create_graph):
                    for h in hooks:
                        h.edge(node, i, p, gi)
                    acc = grads.get(p)
                    if acc is None:
                        # An identity-like vjp may hand the same array to several inputs.
                        grads[p] = gi if (create_graph or gi is not g) else (gi,)
                    else:
                        grads[p] = _plus(acc, gi)
                if not retain_graph:
                    node._parents = None
    finally:
        state.grad_enabled = was_enabled
    return results


def _quietly(loop: Callable[..., None]) -> Callable[..., None]:
    """`loop` run under `np.errstate(**_QUIET)`. On NumPy 2 by errstate's own decorator: a
    context-variable token per call (thread-safe and reentrant), half the cost of a `with`
    block per backward(). NumPy 1's decorator keeps the state it restores on its one shared
    object, which a second thread or a nested sweep would overwrite: a `with` block there."""
    if np.lib.NumpyVersion(np.__version__) >= "2.0.0":
        return np.errstate(**_QUIET)(loop)

    @functools.wraps(loop)
    def quiet(*args: Any) -> None:
        with np.errstate(**_QUIET):
            loop(*args)

    return quiet


@_quietly
def _plain_loop(
    grads: dict[Tensor, Any],
    results: dict[int, Any],
    stop: set[int] | None,
    expand: set[Tensor] | None,
    last_inplace: int,
    retain_graph: bool,
    accumulate: bool,
    xp: Any,
) -> None:
    """`sweep`'s loop on plain arrays with no observers: the fast path of eager `backward()`
    and of the transforms. The same steps as the general loop, with `pullback` written out
    (no triples; one argument tuple for all of a node's vjps): W2's backward spent about 1 us
    per node on that bookkeeping, a fifth of its time.

    It needs no `order`: the nodes waiting for their turn (those that have received a
    gradient) sit in a heap by their clock stamp, and the newest goes next. A node is made
    after its inputs, so every consumer of a node, being newer, has sent its share before the
    node comes off the heap. The separate toposort this replaces was W2's largest item of
    bookkeeping (~3 us of a ~45 us backward). With `expand` (the transforms' nodes that lead
    to a `stop` tensor, stop tensors excluded) only those are swept; without it, every node
    that receives a gradient. What is left in `grads` afterwards are the leaves (and stops).
    """
    # (-stamp, id, node): a copy of a node (copy.copy, deepcopy) keeps its stamp, and two
    # nodes of one stamp are never each other's input, so either may go first; the id breaks
    # the tie before the tuples' comparison could reach the Tensors (elementwise `<`).
    heap: list[tuple[int, int, Tensor]] = []
    for r in grads:  # the roots
        if r._op is not None and (expand is None or r in expand):
            heappush(heap, (-r._clock, id(r), r))
    take, get = grads.pop, grads.get
    while heap:
        node = heappop(heap)[2]  # the newest waiting node; popping releases it as we go
        g = take(node)
        shared = type(g) is tuple
        if shared:
            g = g[0]
        op = node._op
        parents: Any = node._parents
        if parents is None:
            raise RuntimeError(_freed_message(node))
        if node._retains_grad and accumulate:
            node.grad = Tensor._leaf(np.array(g), False)
        if node._clock < last_inplace:  # else nothing changed in place since the op ran
            _check_versions(node)
        n = len(parents)
        if n == 2:  # `_arrays` without its call, for the two commonest counts
            x, y = parents
            args: tuple[Any, ...] = (
                g,
                node.data,
                x.data if isinstance(x, Tensor) else x,
                y.data if isinstance(y, Tensor) else y,
                xp,
            )
        elif n == 1:
            x = parents[0]
            args = (g, node.data, x.data if isinstance(x, Tensor) else x, xp)
        else:
            args = (g, node.data, *_arrays(parents), xp)
        params = node._params
        vjps = None if op.variadic else op.vjps
        i = -1
        for p in parents:
            i += 1
            # `type(p) is Tensor` first: it spares the isinstance call in the common case
            if not (type(p) is Tensor or isinstance(p, Tensor)) or not p.requires_grad:
                continue
            rule = vjps[i] if vjps is not None else None
            if rule is None:
                rule, extra = vjp_rule(op, i)
                gi = rule(*args, **extra, **(params or _NO_PARAMS))
            elif params:
                gi = rule(*args, **params)
            else:
                gi = rule(*args)
            shape = p.data.shape
            if gi.shape != shape:
                gi = xp.sum_to(gi, shape)
            acc = get(p)
            if acc is None:  # an identity-like vjp may hand the same array to several inputs
                grads[p] = gi if gi is not g else (gi,)
                if p._op is not None and (expand is None or p in expand):
                    heappush(heap, (-p._clock, id(p), p))
            else:
                grads[p] = _plus(acc, gi)
        if not retain_graph:
            node._parents = None
    for t, g in grads.items():
        if stop is not None and id(t) not in stop:
            continue  # a leaf or node that leads to no stop tensor
        shared = type(g) is tuple
        if shared:
            g = g[0]
        results[id(t)] = g
        if accumulate and t._op is None and t.requires_grad:
            accumulate_leaf_array(t, g, shared)


_NAMESPACES: tuple[Any, Any] | None = None


def _namespaces() -> tuple[Any, Any]:
    """(NUMPY_NS, TENSOR_NS) from ops.py, imported once (ops imports this module's tensor.py,
    so the import cannot be at the top; an import statement per sweep costs a microsecond)."""
    global _NAMESPACES
    if _NAMESPACES is None:
        from chainrule.ops import NUMPY_NS, TENSOR_NS

        _NAMESPACES = (NUMPY_NS, TENSOR_NS)
    return _NAMESPACES


def pullback(
    node: Tensor, g: Any, xp: Any, create_graph: bool, argnum: int | None = None
) -> list[tuple[int, Tensor, Any]]:
    """What `node` sends back to each input that requires grad, for upstream gradient `g`.

    Returns `(argnum, input, gradient)` triples, each gradient unbroadcast to its input's
    shape (the engine does this once, so vjps never have to). The vjps run on plain arrays
    with `xp = NUMPY_NS`, or on Tensors (`node` itself as `out`) when `create_graph`, so that
    the backward pass is recorded. With `argnum`, only that input.
    """
    op = node._op
    parents: Any = node._parents
    params = node._params or _NO_PARAMS
    if create_graph:
        inputs: Sequence[Any] = parents
        out: Any = node
    else:
        inputs = _arrays(parents)
        out = node.data
    sent = []
    vjps = None if op.variadic else op.vjps
    i = -1
    for p in parents:
        i += 1
        # `type(p) is Tensor` first: it spares the isinstance call in the common case
        if not (type(p) is Tensor or isinstance(p, Tensor)) or not p.requires_grad:
            continue
        if argnum is not None and i != argnum:
            continue
        rule = vjps[i] if vjps is not None else None
        if rule is not None:  # the common case, without a call to vjp_rule (W3 measures it)
            gi = rule(g, out, *inputs, xp, **params)
        else:
            rule, extra = vjp_rule(op, i)
            gi = rule(g, out, *inputs, xp, **extra, **params)
        shape = p.data.shape
        if gi.shape != shape:
            gi = xp.sum_to(gi, shape)
        sent.append((i, p, gi))
    return sent


def vjp_rule(op: Any, argnum: int) -> tuple[Callable[..., Any], dict[str, Any]]:
    """The vjp of `op` for input `argnum` and the keywords it takes besides the op's params:
    a variadic op has one vjp for all inputs, told which with `argnum=`."""
    if op.variadic:
        return op.vjps[0], {"argnum": argnum}
    rule = op.vjps[argnum]
    if rule is None:
        raise RuntimeError(f"{op.name}: input {argnum} is not differentiable")
    return rule, _NO_PARAMS


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
    order.sort(key=_stamp)  # the order every sweep goes in (see `toposort`)
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
    if type(g) is np.ndarray:
        return g
    return g.data if isinstance(g, Tensor) else np.asarray(g)


_NO_PARAMS: dict[str, Any] = {}


# A gradient array that another consumer may also hold (a seed, what an identity vjp passed
# through) sits in the sweep's gradient dict wrapped in a 1-tuple: copy it before it becomes a
# leaf's `.grad`. A tuple rather than a small class: a class instance with an __init__ cost
# 0.2 us, a few per W2 backward. Gradients themselves are never tuples.


def _plus(acc: Any, gi: Any) -> Any:
    a = acc[0] if type(acc) is tuple else acc
    b = gi[0] if type(gi) is tuple else gi
    return a + b


def _accumulate_leaf_tensor(leaf: Tensor, g: Any) -> None:
    """Add `g` into `leaf.grad` as a Tensor, so the sum is recorded (create_graph)."""
    g = g if isinstance(g, Tensor) else Tensor._leaf(np.asarray(g), False)
    leaf.grad = g if leaf.grad is None else leaf.grad + g


def accumulate_leaf_array(leaf: Tensor, g: np.ndarray, shared: bool) -> None:
    """Add gradient array `g` into `leaf.grad` (a new `.grad` if there is none), in the leaf's
    dtype. `shared`: another consumer may hold `g` (a seed, an identity vjp's result), so a new
    `.grad` gets a copy; an array of its own becomes the `.grad` uncopied. `compile`'s replay
    calls this too."""
    dtype = leaf.data.dtype
    if g.dtype is not dtype and g.dtype != dtype:  # `is` first: `!=` is slow
        g = g.astype(dtype)  # a new array: no longer shared
        shared = False
    grad = leaf.grad
    if grad is None:
        if shared or g.base is not None or not g.flags.writeable:
            g = np.array(g)
        leaf.grad = Tensor._leaf(g, False)
    else:
        grad.data = grad.data + g  # a sum never aliases g, shared or not


class _AnomalyHooks(SweepHooks):
    """detect_anomaly: the first contribution with a NaN/inf is reported by the op that made it."""

    def edge(self, node: Tensor, argnum: int, input: Tensor, g: Any) -> None:
        arr = g.data if isinstance(g, Tensor) else np.asarray(g)
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            raise FloatingPointError(
                f"{node._op.name}: backward produced NaN/inf in the gradient of its input "
                f"(shape {arr.shape})"
            )
