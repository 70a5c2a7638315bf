"""Functional transforms with JAX's signatures: grad, value_and_grad, vjp, jvp, jacobian
(jacrev), jacfwd, hessian.

They compose to any order: each wraps its inputs as tensors connected to any enclosing graph,
and the engine records a backward pass only when an enclosing transform needs it. Inside vmap
they work on the physical (batched) tensors (see `batching.py`); jacobian and jacfwd are vmaps
of vjp and jvp over the basis. Imports NumPy, `tensor`, `composite` and `batching` only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule import ops
from chainrule.backward import _depends_outside, _relevant_order, backprop
from chainrule.batching import physical, rewrap, vmap
from chainrule.mode import _GradMode, _state
from chainrule.tensor import Tensor, _as_array

Fn = Callable[..., Any]


def _argnums(argnums: int | Sequence[int], nargs: int, where: str) -> tuple[tuple[int, ...], bool]:
    single = isinstance(argnums, int)
    nums: tuple[int, ...] = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    for i in nums:
        if not -nargs <= i < nargs:
            raise ValueError(
                f"{where}: argnums {i} is out of range for {nargs} positional arguments"
            )
    return tuple(i % nargs for i in nums), single


def _wrap(a: Any, i: int, where: str) -> tuple[Tensor, Tensor]:
    """A tensor to differentiate with respect to, still connected to any enclosing graph, and
    the view f sees (the same tensor, or inside vmap a BatchTensor over it)."""
    a, levels = physical(a) if _state.levels else (a, ())
    x = _wrap_physical(a, i, where)
    return x, rewrap(x, levels)


def _wrap_physical(a: Any, i: int, where: str) -> Tensor:
    arr = a.data if isinstance(a, Tensor) else _as_array(a)
    if arr.dtype.kind not in "fc":
        raise TypeError(
            f"{where}: argument {i} has dtype {arr.dtype}; only floating-point inputs can be "
            "differentiated (an index or a count has no derivative)"
        )
    if isinstance(a, Tensor) and a.requires_grad and _state.grad_enabled:
        return ops.reshape(a, shape=a.shape)  # identity op: gradients flow on to `a`
    return Tensor._leaf(arr, True)


def _call(
    f: Fn, args: Sequence[Any], nums: tuple[int, ...], where: str, kwargs: dict[str, Any]
) -> tuple[Any, list[Tensor]]:
    outer = _state.grad_enabled
    with _GradMode(True):
        with _GradMode(outer):
            pairs = [_wrap(args[i], i, where) for i in nums]
        full = list(args)
        for i, (_, view) in zip(nums, pairs):
            full[i] = view
        return f(*full, **kwargs), [x for x, _ in pairs]


def _as_tensor_output(out: Any, where: str, path: str = "") -> Tensor:
    if isinstance(out, Tensor):
        return out
    if isinstance(out, (int, float, np.ndarray, np.generic)):
        return Tensor._leaf(np.asarray(out), False)
    if path:
        raise TypeError(
            f"{where}: f must return a Tensor (or dicts, lists, tuples of them), got "
            f"{type(out).__name__} at output{path}"
        )
    raise TypeError(f"{where}: f must return a Tensor, got {type(out).__name__}")


def _detached_unless_needed(out: Tensor, xs: Sequence[Tensor]) -> Tensor:
    """The transform's own input wrappers are private: cut them off unless an enclosing graph
    (an outer transform or a closed-over tensor that requires grad) still needs `out`."""
    if not out.requires_grad or not _state.grad_enabled:
        return out.detach() if out.requires_grad else out
    stop = {id(x) for x in xs}
    order = _relevant_order([out], stop)
    # An `out` that requires grad but has no path to xs depends on an outside tensor only.
    if not order or _depends_outside(order, [], stop):
        return out
    return out.detach()


def _pullback(
    outs: Sequence[Tensor], seeds: Sequence[Any], xs: Sequence[Tensor], retain: bool
) -> list[Tensor]:
    """d sum_k <seeds[k], outs[k]>/dx for each x in xs (zeros where no output depends on x)."""
    live = [(o, s) for o, s in zip(outs, seeds) if o.requires_grad]
    if not live:
        return [C.zeros_like(x) for x in xs]
    got = backprop(
        [o for o, _ in live],
        [s for _, s in live],
        retain_graph=retain,
        create_graph=None,
        accumulate=False,
        inputs=xs,
    )
    res = []
    for x in xs:
        g = got.get(id(x))
        if g is None:
            res.append(C.zeros_like(x))
        else:
            res.append(g if isinstance(g, Tensor) else Tensor._leaf(np.asarray(g, x.dtype), False))
    return res


# --------------------------------------------------------------------------- pytrees
# JAX's pytrees: dicts, lists and tuples (namedtuples too) are nodes, everything else a leaf.
# One exception keeps chainrule.tensor's reading: a list of plain numbers is one array leaf.


def _is_tree(a: Any) -> bool:
    """Whether `a` is a pytree node: a dict, or a list or tuple holding tensors, arrays or
    nodes (a list of Python numbers stays one array, as `chainrule.tensor` reads it)."""
    if isinstance(a, dict):
        return True
    return isinstance(a, (list, tuple)) and any(
        isinstance(v, (Tensor, np.ndarray)) or _is_tree(v) for v in a
    )


def _children(tree: Any) -> list[tuple[Any, Any]]:
    return list(tree.items()) if isinstance(tree, dict) else list(enumerate(tree))


def _leaves(tree: Any) -> tuple[list[Any], Callable[[Sequence[Any]], Any]]:
    """A pytree's leaves (as JAX's: dicts, lists and tuples are nodes) and the function that
    builds the same structure from new leaves."""
    if not _is_tree(tree):
        return [tree], lambda new: new[0]
    parts = [_leaves(v) for v in (tree.values() if isinstance(tree, dict) else tree)]
    counts = [len(leaves) for leaves, _ in parts]

    def rebuild(new: Sequence[Any]) -> Any:
        out, at = [], 0
        for (_, build), n in zip(parts, counts):
            out.append(build(new[at : at + n]))
            at += n
        if isinstance(tree, dict):
            return dict(zip(tree.keys(), out))
        return type(tree)(*out) if hasattr(tree, "_fields") else type(tree)(out)

    return [x for leaves, _ in parts for x in leaves], rebuild


def _paths(tree: Any, path: str = "") -> list[str]:
    """Where each leaf sits (`['w'][0]`), in `_leaves`' order, for error messages."""
    if not _is_tree(tree):
        return [path]
    return [p for k, v in _children(tree) for p in _paths(v, f"{path}[{k!r}]")]


def _numeric(a: Any) -> bool:
    if isinstance(a, (Tensor, np.ndarray)):
        return True
    try:
        return np.asarray(a).dtype.kind in "biufc"
    except (TypeError, ValueError):  # a ragged list
        return False


def _check_leaf(leaf: Any, where: str, what: str) -> None:
    """Refuse a leaf that is not a Tensor, an array or a number, naming where it sits."""
    if not _numeric(leaf):
        raise TypeError(
            f"{where}: {what} is a {type(leaf).__name__}; pytree leaves must be "
            "Tensors, arrays or numbers (dicts, lists and tuples hold them)"
        )


def _check_leaves(tree: Any, where: str, what: str) -> None:
    for path, leaf in zip(_paths(tree), _leaves(tree)[0]):
        _check_leaf(leaf, where, f"{what}{path}")


def _describe(a: Any) -> str:
    if isinstance(a, dict):
        return f"a dict with keys {sorted(map(str, a))}"
    if isinstance(a, (list, tuple)):
        return f"a {type(a).__name__} of {len(a)}"
    return f"a {type(a).__name__}"


def _leaves_like(ref: Any, tree: Any, where: str, what: str, ref_name: str) -> list[Any]:
    """`tree`'s leaves in `ref`'s order: a cotangent for an output, a tangent for a primal.
    Their structures must agree (a list may stand for a tuple, as the leaves are what count)."""
    pairs: list[Any] = []

    def walk(r: Any, t: Any, path: str) -> None:
        if not _is_tree(r):
            pairs.append(t)
            return
        same = (
            isinstance(t, dict) and t.keys() == r.keys()
            if isinstance(r, dict)
            else isinstance(t, (list, tuple)) and len(t) == len(r)
        )
        if not same:
            raise ValueError(
                f"{where}: {what}{path} is {_describe(t)}, but {ref_name}{path} is "
                f"{_describe(r)}; they must have the same structure"
            )
        for k, v in _children(r):
            walk(v, t[k], f"{path}[{k!r}]")

    walk(ref, tree, "")
    return pairs


def _out_is_tree(out: Any) -> bool:
    """Whether f's output is a pytree (an empty tuple or list too: a tree without leaves)."""
    return _is_tree(out) or (isinstance(out, (list, tuple)) and not out)


def _outputs(out: Any, where: str) -> tuple[list[Tensor], Callable[[Sequence[Any]], Any]]:
    """f's output as its leaves, each a Tensor, and the function that rebuilds its structure."""
    if isinstance(out, (list, tuple)) and not out:
        return [], lambda new: out
    leaves, rebuild = _leaves(out)
    paths = _paths(out) if _is_tree(out) else [""]
    return [_as_tensor_output(o, where, p) for o, p in zip(leaves, paths)], rebuild


def _flat_args(
    f: Fn, args: Sequence[Any], nums: tuple[int, ...], where: str
) -> tuple[Fn, list[Any], tuple[int, ...], Callable[[list[Any]], list[Any]]]:
    """f as a function of the differentiated arguments' leaves first, then the others, so a
    gradient with respect to a dict, list or tuple of tensors is one per leaf; and the
    function that puts the leaves' gradients back into each argument's structure."""
    for i in nums:
        _check_leaves(args[i], where, f"argument {i}")
    if not any(_is_tree(args[i]) for i in nums):
        return f, list(args), nums, lambda gs: gs
    trees = [_leaves(args[i]) for i in nums]
    counts = [len(leaves) for leaves, _ in trees]
    flat = [x for leaves, _ in trees for x in leaves]

    others = [k for k in range(len(args)) if k not in nums]

    def f_flat(*xs: Any, **kwargs: Any) -> Any:
        full: list[Any] = [None] * len(args)
        for k, a in zip(others, xs[len(flat) :]):
            full[k] = a
        for i, tree in zip(nums, regroup(list(xs[: len(flat)]))):
            full[i] = tree
        return f(*full, **kwargs)

    def regroup(gs: list[Any]) -> list[Any]:
        out, at = [], 0
        for (_, build), n in zip(trees, counts):
            out.append(build(gs[at : at + n]))
            at += n
        return out

    return f_flat, [*flat, *(args[k] for k in others)], tuple(range(len(flat))), regroup


def _physical_all(ts: Sequence[Tensor]) -> tuple[list[Tensor], tuple[int, ...]]:
    """The physical tensors of outputs inside vmap (each batched at every active level), and
    those levels; (ts, ()) outside vmap."""
    if not _state.levels:
        return list(ts), ()
    return [physical(t)[0] for t in ts], tuple(level for level, _ in _state.levels)


def value_and_grad(f: Fn, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Fn:
    """Return a function computing (f(*args), df/dargs) in one forward and one backward pass.

    An argument differentiated may be a pytree (dicts, lists and tuples of tensors, as JAX's
    and torch.func's): its gradient has the same structure, one gradient per leaf. A list of
    Python numbers is one array, as `chainrule.tensor` reads it.

    Examples
    --------
    >>> import chainrule as cr
    >>> value, g = cr.value_and_grad(lambda x: (3 * x + 2) ** 2)(1.0)
    >>> value.item(), g.item()
    (25.0, 30.0)
    >>> cr.grad(lambda p: cr.sum(p["w"] * p["b"]))({"w": cr.tensor(2.0), "b": cr.tensor(3.0)})
    {'w': tensor(3.), 'b': tensor(2.)}
    """
    return _value_and_grad(f, argnums, has_aux, keep_value=True)


def _value_and_grad(f: Fn, argnums: int | Sequence[int], has_aux: bool, keep_value: bool) -> Fn:
    """`value_and_grad`; without `keep_value` the value is None (`grad` drops it, and making
    it costs a walk of the graph: ~17 us of W7's ~0.7 ms vmap(grad) step)."""

    def vg(*args: Any, **kwargs: Any) -> Any:
        nums, single = _argnums(argnums, len(args), "grad")
        f_flat, flat, flat_nums, regroup = _flat_args(f, args, nums, "grad")
        res, xs = _call(f_flat, flat, flat_nums, "grad", kwargs)
        out, aux = _split_aux(res, has_aux, "grad")
        out = _as_tensor_output(out, "grad")
        # as JAX and PyTorch: a complex value has no gradient in the real sense
        if out.dtype.kind == "c":
            raise TypeError(
                f"grad: f must return a real scalar, got {out.dtype}; differentiate its real "
                "and imaginary parts separately, or use vjp with a complex cotangent"
            )
        if out.size != 1:
            raise ValueError(
                f"grad: f must return a scalar, got shape {out.shape}; use jacobian, vjp or "
                "jvp for a vector output"
            )
        # inside vmap: one scalar per example, all seeded at once (examples never mix)
        out, levels = physical(out) if _state.levels else (out, ())
        value = rewrap(_detached_unless_needed(out, xs), levels) if keep_value else None
        gs = regroup(
            [rewrap(g, levels) for g in _pullback([out], [np.ones_like(out.data)], xs, False)]
        )
        out = value
        g = gs[0] if single else tuple(gs)
        return ((out, aux), g) if has_aux else (out, g)

    vg.__name__ = f"value_and_grad({getattr(f, '__name__', 'f')})"
    return vg


def grad(f: Fn, argnums: int | Sequence[int] = 0, has_aux: bool = False) -> Fn:
    """Return a function computing the gradient of scalar-valued `f` w.r.t. `argnums`.

    Compose freely: `grad(grad(f))` is the second derivative.

    Examples
    --------
    >>> import chainrule as cr
    >>> f = lambda x: x ** 3
    >>> d1 = cr.grad(f); d2 = cr.grad(d1); d3 = cr.grad(d2)
    >>> d1(2.0).item(), d2(2.0).item(), d3(2.0).item()
    (12.0, 12.0, 6.0)
    """
    vg = _value_and_grad(f, argnums, has_aux, keep_value=False)

    def g(*args: Any, **kwargs: Any) -> Any:
        (value, grads) = vg(*args, **kwargs)
        return (grads, value[1]) if has_aux else grads

    g.__name__ = f"grad({getattr(f, '__name__', 'f')})"
    return g


def _split_aux(res: Any, has_aux: bool, where: str) -> tuple[Any, Any]:
    if not has_aux:
        return res, None
    if not (isinstance(res, tuple) and len(res) == 2):
        raise TypeError(f"{where}: has_aux=True needs f to return a pair (output, aux)")
    return res


def vjp(f: Fn, *primals: Any, has_aux: bool = False) -> tuple[Any, ...]:
    """Evaluate f at `primals` and return (out, vjp_fn); vjp_fn(ct) = ct^T J, one per primal.

    As JAX's: a primal may be a pytree (dicts, lists, tuples of tensors) and so may f's
    output; the cotangent has the output's structure, and each gradient its primal's.

    Examples
    --------
    >>> import chainrule as cr
    >>> out, f_vjp = cr.vjp(lambda x: x * x, cr.tensor([1.0, 2.0]))
    >>> f_vjp(cr.tensor([1.0, 1.0]))[0]
    tensor([2., 4.])
    >>> out, f_vjp = cr.vjp(lambda p: {"s": p["a"] * p["b"]}, {"a": 2.0, "b": 3.0})
    >>> f_vjp({"s": 1.0})
    ({'a': tensor(3.), 'b': tensor(2.)},)
    """
    nums = tuple(range(len(primals)))
    f_flat, flat, flat_nums, regroup = _flat_args(f, primals, nums, "vjp")
    res, xs = _call(f_flat, flat, flat_nums, "vjp", {})
    out, aux = _split_aux(res, has_aux, "vjp")
    shown, rebuild = _outputs(out, "vjp")
    outs, levels = _physical_all(shown)

    def vjp_fn(cotangent: Any) -> tuple[Any, ...]:
        cts = _leaves_like(out, cotangent, "vjp", "cotangent", "the output")
        paths = _paths(out) if _is_tree(out) else [""]
        seeds = []
        for ct, s, path in zip(cts, shown, paths):
            _check_leaf(ct, "vjp", f"cotangent{path}")
            ct = ct if isinstance(ct, Tensor) else _as_array(ct, s.dtype)
            if ct.shape != s.shape:
                raise ValueError(
                    f"vjp: cotangent{path} has shape {ct.shape}, the output{path} has {s.shape}"
                )
            seeds.append(physical(ct)[0] if levels else ct)
        gs = _pullback(outs, seeds, xs, retain=True)
        return tuple(regroup([rewrap(g, levels) for g in gs]))

    value = rebuild([rewrap(_detached_unless_needed(o, xs), levels) for o in outs])
    return (value, vjp_fn, aux) if has_aux else (value, vjp_fn)


def jvp(f: Fn, primals: Sequence[Any], tangents: Sequence[Any]) -> tuple[Any, Any]:
    """Forward-mode product: (f(*primals), J @ tangents).

    Computed as the transpose of a vjp (the vjp is linear in its cotangent u, so
    d<vjp(u), t>/du = J t), which needs nothing beyond the op table's vjps. As JAX's, a
    primal may be a pytree (its tangent has its structure), and so may f's output (the
    output tangent has its structure).

    Examples
    --------
    >>> import chainrule as cr
    >>> out, t = cr.jvp(lambda x: cr.sin(x), (cr.tensor(0.0),), (cr.tensor(2.0),))
    >>> t.item()
    2.0
    >>> cr.jvp(lambda p: [p["a"] * p["b"]], ({"a": 2.0, "b": 3.0},), ({"a": 1.0, "b": 0.0},))[1]
    [tensor(3.)]
    """
    labelled = _tangent_leaves(primals, tangents)
    nums = tuple(range(len(primals)))
    f_flat, flat, flat_nums, _ = _flat_args(f, primals, nums, "jvp")
    res, xs = _call(f_flat, flat, flat_nums, "jvp", {})
    shown, rebuild = _outputs(res, "jvp")
    ts = []
    for (label, t), x, p in zip(labelled, xs, flat):
        t = t if isinstance(t, Tensor) else Tensor._leaf(_as_array(t, x.dtype), False)
        if t.shape != np.shape(p):
            raise ValueError(f"jvp: tangent {label} has shape {t.shape}, primal has {np.shape(p)}")
        ts.append(t)
    outs, levels = _physical_all(shown)
    if levels:  # inside vmap: tangents batched like the primals
        ts = [physical(t)[0] for t in ts]

    def zeros() -> Any:
        return rebuild([rewrap(C.zeros_like(o), levels) for o in outs])

    live = [o for o in outs if o.requires_grad]
    if not live:
        return rebuild(shown), zeros()
    us = [Tensor._leaf(np.zeros_like(o.data), True) for o in outs]
    s = _vjp_dot_tangents(outs, us, xs, ts)
    if s is None or not s.requires_grad:
        return rebuild(shown), zeros()
    value = rebuild([rewrap(_detached_unless_needed(o, xs), levels) for o in outs])
    tangent_outs = _pullback([s], [np.ones_like(s.data)], us, retain=False)
    return value, rebuild(
        [rewrap(_detached_unless_needed(t, [*xs, *us]), levels) for t in tangent_outs]
    )


def _tangent_leaves(primals: Sequence[Any], tangents: Sequence[Any]) -> list[tuple[str, Any]]:
    """Each tangent leaf, in the primals' leaf order, with the name an error gives it."""
    if len(primals) != len(tangents):
        raise ValueError(f"jvp: {len(primals)} primals but {len(tangents)} tangents")
    labelled = []
    for i, (p, t) in enumerate(zip(primals, tangents)):
        paths = _paths(p) if _is_tree(p) else [""]
        leaves = _leaves_like(p, t, "jvp", f"tangent {i}", f"primal {i}")
        for path, leaf in zip(paths, leaves):
            _check_leaf(leaf, "jvp", f"tangent {i}{path}")
            labelled.append((f"{i}{path}", leaf))
    return labelled


def _vjp_dot_tangents(
    outs: Sequence[Tensor], us: Sequence[Tensor], xs: Sequence[Tensor], ts: Sequence[Tensor]
) -> Tensor | None:
    """<vjp(u), t> summed over the inputs, recorded, so that its gradient in u is J t (None
    when no input reaches an output)."""
    live = [(o, u) for o, u in zip(outs, us) if o.requires_grad]
    with _GradMode(True):
        gs = backprop(
            [o for o, _ in live],
            [u for _, u in live],
            retain_graph=True,
            create_graph=True,
            accumulate=False,
            inputs=xs,
        )
        s = None
        for x, t in zip(xs, ts):
            if id(x) in gs:
                term = C.sum(gs[id(x)] * t)
                s = term if s is None else s + term
    return s


def jacobian(
    f: Fn, argnums: int | Sequence[int] = 0, chunk_size: int | None = None, *, has_aux: bool = False
) -> Fn:
    """Return a function computing the Jacobian, shape out.shape + arg.shape (reverse mode).

    One vjp per output element, batched by vmap over the rows of the identity: f runs on
    inputs repeated out.size times (plus once for the output's shape) instead of once per
    row in a Python loop. That holds out.size copies of f's intermediates at once;
    `chunk_size` (as torch.func.jacrev's) bounds it to that many rows per batch.

    Pytrees as in JAX's jacrev: for a dict, list or tuple output, the result has the
    output's structure, each leaf holding the argument's structure (a tuple of them for a
    tuple `argnums`), each Jacobian of shape out_leaf.shape + arg_leaf.shape. With
    `has_aux`, f returns (output, aux) and the result is (Jacobian, aux), as JAX's.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.jacobian(lambda x: x ** 2)(cr.tensor([1.0, 3.0]))
    tensor([[2., 0.],
            [0., 6.]])
    >>> cr.jacobian(lambda p: {"y": p["a"] * p["b"]})({"a": 2.0, "b": 3.0})
    {'y': {'a': tensor(3.), 'b': tensor(2.)}}
    """

    def jac(*args: Any) -> Any:
        nums, single = _argnums(argnums, len(args), "jacobian")
        g, leaves, regroup = _restrict_leaves(f, args, nums, "jacobian")
        primals = [p if isinstance(p, Tensor) else C.tensor(p) for p in leaves]
        out, aux = _split_aux(g(*primals), has_aux, "jacobian")  # the output's structure
        shown, rebuild = _outputs(out, "jacobian")
        tree = _out_is_tree(out)
        g = _without_aux(g, has_aux, "jacobian")
        h = _joined(g, "jacobian") if tree else g
        shape = (sum(o.size for o in shown),) if tree else shown[0].shape
        dtype = np.result_type(*(o.dtype for o in shown)) if shown else np.float32
        basis = _basis(shape, dtype)
        if basis.shape[0] == 0:
            mats = [C.zeros((*shape, *np.shape(p)), dtype=dtype) for p in primals]
        else:
            rows = _vmap_rows(lambda ct: vjp(h, *primals)[1](ct), basis, chunk_size, "jacobian")
            mats = [C.reshape(r, (*shape, *np.shape(p))) for r, p in zip(rows, primals)]
        shapes, dtypes = [o.shape for o in shown], [o.dtype for o in shown]
        result = _assemble(mats, primals, shapes, dtypes, tree, regroup, single, rebuild)
        return (result, aux) if has_aux else result

    return jac


jacrev = jacobian


def jacfwd(
    f: Fn, argnums: int | Sequence[int] = 0, chunk_size: int | None = None, *, has_aux: bool = False
) -> Fn:
    """Return a function computing the Jacobian, shape out.shape + arg.shape (forward mode).

    vmap of jvp over the basis of each input: one batched evaluation per input, cheaper than
    jacobian (reverse mode) when the output is larger than the input. `chunk_size` bounds
    the columns per batch, as in `jacobian`; pytrees in and out and `has_aux` as in
    `jacobian` (the aux from one more call of f, outside the batch).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.jacfwd(lambda x: x ** 2)(cr.tensor([1.0, 3.0]))
    tensor([[2., 0.],
            [0., 6.]])
    """

    def jac(*args: Any) -> Any:
        nums, single = _argnums(argnums, len(args), "jacfwd")
        g, leaves, regroup = _restrict_leaves(f, args, nums, "jacfwd")
        primals = [p if isinstance(p, Tensor) else C.tensor(p) for p in leaves]
        seen: dict[str, Any] = {}  # the output's structure, read as f runs inside the vmap
        aux = _split_aux(g(*primals), True, "jacfwd")[1] if has_aux else None
        g = _without_aux(g, has_aux, "jacfwd")

        def h(*xs: Any) -> Any:
            out = g(*xs)
            shown, seen["rebuild"] = _outputs(out, "jacfwd")
            seen["shapes"], seen["tree"] = [o.shape for o in shown], _out_is_tree(out)
            seen["dtypes"] = [o.dtype for o in shown]
            return _join(shown) if seen["tree"] else shown[0]

        mats = []
        for k, p in enumerate(primals):
            basis = _basis(p.shape, p.dtype)

            def column(t: Tensor, k: int = k) -> Tensor:
                tangents = [t if i == k else C.zeros_like(q) for i, q in enumerate(primals)]
                return jvp(h, primals, tangents)[1]

            cols = _vmap_rows(column, basis, chunk_size, "jacfwd")  # (arg.size, *out.shape)
            out_shape = cols.shape[1:]
            moved = C.transpose(cols, (*range(1, cols.ndim), 0)) if cols.ndim > 1 else cols
            mats.append(C.reshape(moved, (*out_shape, *p.shape)))
        if not seen:  # no column ran (no argument, or only empty ones): run f for its structure
            h(*primals)
        shapes, dtypes, rebuild = seen["shapes"], seen["dtypes"], seen["rebuild"]
        result = _assemble(mats, primals, shapes, dtypes, seen["tree"], regroup, single, rebuild)
        return (result, aux) if has_aux else result

    return jac


def _restrict_leaves(
    f: Fn, args: Sequence[Any], nums: tuple[int, ...], where: str
) -> tuple[Fn, list[Any], Callable[[list[Any]], list[Any]]]:
    """f as a function of the differentiated arguments' leaves only (the others fixed), those
    leaves, and the function that puts per-leaf results back into each argument's structure."""
    f_flat, flat, flat_nums, regroup = _flat_args(f, args, nums, where)
    return _restrict(f_flat, flat, flat_nums), [flat[i] for i in flat_nums], regroup


def _without_aux(g: Fn, has_aux: bool, where: str) -> Fn:
    return (lambda *xs: _split_aux(g(*xs), True, where)[0]) if has_aux else g


def _cast(t: Tensor, dtype: Any) -> Tensor:
    return t if t.dtype == dtype else C.astype(t, dtype)


def _join(leaves: Sequence[Tensor]) -> Tensor:
    """An output pytree's leaves as one vector, so that one vmap covers every output."""
    if not leaves:
        return C.zeros((0,))
    return C.concatenate([C.reshape(o, (-1,)) for o in leaves], axis=0)


def _joined(g: Fn, where: str) -> Fn:
    return lambda *xs: _join(_outputs(g(*xs), where)[0])


def _assemble(
    mats: Sequence[Tensor],
    primals: Sequence[Any],
    out_shapes: Sequence[tuple[int, ...]],
    out_dtypes: Sequence[Any],
    tree: bool,
    regroup: Callable[[list[Any]], list[Any]],
    single: bool,
    rebuild: Callable[[Sequence[Any]], Any],
) -> Any:
    """JAX's Jacobian structure from one matrix per argument leaf (rows: the output, joined
    into one vector when it is a pytree): the output's structure, each leaf holding the
    arguments' structures (a tuple of them for a tuple argnums)."""
    per_out = [list(mats)]
    if tree:
        per_out, at = [], 0
        for shape, dtype in zip(out_shapes, out_dtypes):
            n = int(np.prod(shape))
            rows = [
                C.reshape(m[at : at + n], (*shape, *np.shape(p))) for m, p in zip(mats, primals)
            ]
            # joined, the leaves share one promoted dtype: each gets its own back
            per_out.append(
                [_cast(r, np.result_type(dtype, p.dtype)) for r, p in zip(rows, primals)]
            )
            at += n
    entries = [regroup(js) for js in per_out]
    return rebuild([e[0] if single else tuple(e) for e in entries])


def _vmap_rows(fn: Fn, basis: Tensor, chunk_size: int | None, where: str) -> Any:
    """vmap(fn)(basis), at most `chunk_size` rows at a time, the pieces joined along axis 0."""
    n = basis.shape[0]
    if chunk_size is None or chunk_size >= n:
        return vmap(fn)(basis)
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"{where}: chunk_size must be a positive int or None, got {chunk_size!r}")
    parts = [
        vmap(fn)(Tensor._leaf(basis.data[i : i + chunk_size], False))
        for i in range(0, n, chunk_size)
    ]
    if isinstance(parts[0], tuple):
        return tuple(C.concatenate(list(p), axis=0) for p in zip(*parts))
    return C.concatenate(parts, axis=0)


def _restrict(f: Fn, args: Sequence[Any], nums: tuple[int, ...]) -> Fn:
    """f as a function of the arguments in `nums` only, the others fixed."""

    def g(*xs: Any) -> Any:
        full = list(args)
        for i, x in zip(nums, xs):
            full[i] = x
        return f(*full)

    return g


def _basis(shape: tuple[int, ...], dtype: Any) -> Tensor:
    """The rows of the identity, each shaped like one element of a tensor of `shape`."""
    n = int(np.prod(shape))
    return Tensor._leaf(np.eye(n, dtype=dtype).reshape(n, *shape), False)


def hessian(f: Fn, argnums: int | Sequence[int] = 0, *, has_aux: bool = False) -> Fn:
    """Return a function computing the Hessian of scalar `f`, shape arg.shape + arg.shape.

    The Jacobian of the gradient, so pytrees and tuple `argnums` nest as JAX's hessian
    does: the gradient's structure outside, the argument's inside. With `has_aux`, f
    returns (output, aux) and the result is (Hessian, aux).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.hessian(lambda x: (x[0] ** 2) * x[1])(cr.tensor([1.0, 2.0]))
    tensor([[4., 2.],
            [2., 0.]])
    """
    return jacobian(grad(f, argnums, has_aux), argnums, has_aux=has_aux)
