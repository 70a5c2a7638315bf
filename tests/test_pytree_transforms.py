"""Transforms over pytrees (dicts, lists, tuples of tensors, nested) in and out, JAX's
semantics: each case below runs through chainrule, torch.func and JAX (each peer skipped when
absent) and the results must agree in structure and value. The cases are one table; every
transform runs on every case."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr

# torch.func.jacfwd scripts a helper with torch.jit on first use, which torch itself deprecates
pytestmark = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is deprecated:DeprecationWarning"
)


@dataclass(frozen=True)
class Case:
    """f(ns, *args): written once against an array namespace (cr, torch, jax.numpy)."""

    name: str
    f: Callable[..., Any]
    args: Callable[[np.random.Generator], tuple[Any, ...]]  # a pytree of arrays per argument
    argnums: int | tuple[int, ...] = 0
    scalar: bool = False  # f returns a scalar: hessian and grad apply


def _dict_in_dict_out(ns: Any, p: Any) -> Any:
    return {"u": ns.sin(p["a"]) * p["b"], "v": ns.sum(p["a"] ** 2)}


def _tuple_args_list_out(ns: Any, x: Any, y: Any) -> Any:
    return [x * y, ns.sum(ns.exp(x)) * y]


def _nested(ns: Any, p: Any, x: Any) -> Any:
    w, b = p["layer"]
    h = ns.tanh(ns.matmul(w, x) + b)
    return ({"h": h}, ns.sum(h) * p["scale"])


def _scalar_of_dict(ns: Any, p: Any) -> Any:
    return ns.sum(ns.sin(p["a"]) * p["b"]) + ns.sum(p["c"][0] ** 3 * p["c"][1])


def _scalar_of_two(ns: Any, x: Any, q: Any) -> Any:
    return ns.sum(ns.exp(x) * q[0]) + ns.sum(x * x) * ns.sum(q[1])


CASES = [
    Case(
        "dict-in-dict-out",
        _dict_in_dict_out,
        lambda r: ({"a": r.standard_normal(3), "b": r.standard_normal(3)},),
    ),
    Case(
        "tuple-argnums-list-out",
        _tuple_args_list_out,
        lambda r: (r.standard_normal(4), r.standard_normal(())),
        argnums=(0, 1),
    ),
    Case(
        "nested-tuple-in-dict",
        _nested,
        lambda r: (
            {
                "layer": (r.standard_normal((2, 3)), r.standard_normal(2)),
                "scale": r.standard_normal(()),
            },
            r.standard_normal(3),
        ),
    ),
    Case(
        "scalar-of-dict",
        _scalar_of_dict,
        lambda r: (
            {
                "a": r.standard_normal(3),
                "b": r.standard_normal(3),
                "c": [r.standard_normal(2), r.standard_normal(2)],
            },
        ),
        scalar=True,
    ),
    Case(
        "scalar-argnums-pair",
        _scalar_of_two,
        lambda r: (r.standard_normal(3), (r.standard_normal(3), r.standard_normal(2))),
        argnums=(0, 1),
        scalar=True,
    ),
]
SCALAR = [c for c in CASES if c.scalar]


# --------------------------------------------------------------------------- tree helpers


def _map(fn: Callable[[Any], Any], tree: Any) -> Any:
    if isinstance(tree, dict):
        return {k: _map(fn, v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return type(tree)(_map(fn, v) for v in tree)
    return fn(tree)


def _numpy(x: Any) -> np.ndarray:
    if isinstance(x, cr.Tensor):
        return x.data
    if hasattr(x, "detach"):  # torch
        return x.detach().numpy()
    return np.asarray(x)


def assert_same_tree(ours: Any, theirs: Any, where: str = "") -> None:
    """Same structure (dict keys, sequence kind and length) and the same values."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict) and ours.keys() == theirs.keys(), (where, ours, theirs)
        for k in theirs:
            assert_same_tree(ours[k], theirs[k], f"{where}[{k!r}]")
    elif isinstance(theirs, (list, tuple)):
        assert type(ours) is type(theirs) and len(ours) == len(theirs), (where, ours, theirs)
        for k, (a, b) in enumerate(zip(ours, theirs)):
            assert_same_tree(a, b, f"{where}[{k}]")
    else:
        assert isinstance(ours, cr.Tensor), (where, type(ours))
        a, b = _numpy(ours), _numpy(theirs)
        assert a.shape == b.shape, (where, a.shape, b.shape)
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12, err_msg=where)


def _like(tree: Any, rng: np.random.Generator) -> Any:
    """A random pytree of float64 arrays with `tree`'s structure and leaf shapes."""
    return _map(lambda t: rng.standard_normal(np.shape(_numpy(t))), tree)


# --------------------------------------------------------------------------- the peers


@dataclass(frozen=True)
class Peer:
    """A library's namespace, its array constructor and its transforms."""

    ns: Any
    array: Callable[[np.ndarray], Any]
    jacrev: Callable[..., Any]
    jacfwd: Callable[..., Any]
    hessian: Callable[..., Any]
    grad: Callable[..., Any]
    vjp: Callable[..., Any]
    jvp: Callable[..., Any]


def _chainrule() -> Peer:
    return Peer(cr, cr.tensor, cr.jacrev, cr.jacfwd, cr.hessian, cr.grad, cr.vjp, cr.jvp)


def _torch() -> Peer:
    torch = pytest.importorskip("torch")
    fn = torch.func
    return Peer(torch, torch.tensor, fn.jacrev, fn.jacfwd, fn.hessian, fn.grad, fn.vjp, fn.jvp)


def _jax() -> Peer:
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    return Peer(jnp, jnp.asarray, jax.jacrev, jax.jacfwd, jax.hessian, jax.grad, jax.vjp, jax.jvp)


PEERS = {"torch": _torch, "jax": _jax}


def _run(peer: Peer, case: Case, transform: str, rng: np.random.Generator) -> Any:
    """One transform of `case` through `peer`, on the same random inputs for every peer."""
    args = case.args(rng)
    f = lambda *a: case.f(peer.ns, *a)
    xs = [_map(peer.array, a) for a in args]
    if transform in ("jacrev", "jacfwd", "hessian", "grad"):
        return getattr(peer, transform)(f, argnums=case.argnums)(*xs)
    out = f(*xs)
    if transform == "vjp":
        _, pullback = peer.vjp(f, *xs)
        return pullback(_map(peer.array, _like(out, rng)))
    tangents = tuple(_map(peer.array, _like(x, rng)) for x in xs)
    return peer.jvp(f, tuple(xs), tangents)


def _transforms(case: Case) -> list[str]:
    return ["jacrev", "jacfwd", "vjp", "jvp"] + (["hessian", "grad"] if case.scalar else [])


PAIRS = [(c, t) for c in CASES for t in _transforms(c)]


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize(("case", "transform"), PAIRS, ids=[f"{c.name}-{t}" for c, t in PAIRS])
def test_transform_of_pytrees_equals_peer(case: Case, transform: str, peer: str) -> None:
    """The same pytree structure and values as torch.func's and JAX's transforms."""
    theirs = _run(PEERS[peer](), case, transform, np.random.default_rng(7))
    ours = _run(_chainrule(), case, transform, np.random.default_rng(7))
    if peer == "jax" and transform == "jvp":
        theirs = tuple(theirs)  # JAX's jvp returns a list (primal_out, tangent_out)
    assert_same_tree(ours, theirs)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_jacfwd_equals_jacrev_on_pytrees(case: Case, rng) -> None:
    """Without any peer: forward and reverse mode give the same Jacobian pytree."""
    args = [_map(cr.tensor, a) for a in case.args(rng)]
    f = lambda *a: case.f(cr, *a)
    assert_same_tree(cr.jacfwd(f, case.argnums)(*args), cr.jacrev(f, case.argnums)(*args))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_vmap_of_jacrev_on_pytrees_equals_a_loop(case: Case, rng) -> None:
    """vmap(jacrev(f)) over a batch of pytrees (in_axes a prefix of them) is the loop."""
    batch = [_map(lambda a: np.stack([a, a + 0.5, a * 2]), a) for a in case.args(rng)]
    f = lambda *a: case.f(cr, *a)
    batched = cr.vmap(cr.jacrev(f, case.argnums))(*_map(cr.tensor, batch))
    for b in range(3):
        one = cr.jacrev(f, case.argnums)(*_map(lambda a: cr.tensor(a[b]), batch))  # noqa: B023
        assert_same_tree(_map(lambda t: t[b], batched), one)  # noqa: B023


def test_vmap_of_vjp_and_jvp_with_dict_outputs(rng) -> None:
    ps = {"a": rng.standard_normal((4, 3)), "b": rng.standard_normal((4, 3))}
    f = lambda p: _dict_in_dict_out(cr, p)
    ct = {"u": cr.ones(3), "v": cr.tensor(2.0)}
    got = cr.vmap(lambda p: cr.vjp(f, p)[1](ct)[0])(_map(cr.tensor, ps))
    tan = cr.vmap(lambda p: cr.jvp(f, (p,), ({"a": cr.ones(3), "b": cr.zeros(3)},))[1])(
        _map(cr.tensor, ps)
    )
    for b in range(4):
        p = {k: cr.tensor(v[b]) for k, v in ps.items()}
        assert_same_tree(_map(lambda t: t[b], got), cr.vjp(f, p)[1](ct)[0])  # noqa: B023
        want = cr.jvp(f, (p,), ({"a": cr.ones(3), "b": cr.zeros(3)},))[1]
        assert_same_tree(_map(lambda t: t[b], tan), want)  # noqa: B023


def test_grad_has_aux_with_pytrees_and_argnums() -> None:
    torch = pytest.importorskip("torch")

    def loss(ns: Any, p: Any, x: Any) -> Any:
        y = ns.tanh(p["w"] * x) + p["b"][0]
        return ns.sum(y * y), {"y": y}

    rng = np.random.default_rng(3)
    p = {"w": rng.standard_normal(3), "b": [rng.standard_normal(3)]}
    x = rng.standard_normal(3)
    ours = cr.grad(lambda p, x: loss(cr, p, x), argnums=(0, 1), has_aux=True)(
        _map(cr.tensor, p), cr.tensor(x)
    )
    theirs = torch.func.grad(lambda p, x: loss(torch, p, x), argnums=(0, 1), has_aux=True)(
        _map(torch.tensor, p), torch.tensor(x)
    )
    assert_same_tree(ours, theirs)


@pytest.mark.parametrize("name", ["jacrev", "jacfwd", "hessian"])
def test_has_aux_returns_the_aux_beside_the_jacobian(name: str) -> None:
    torch = pytest.importorskip("torch")

    def f(ns: Any, p: Any) -> Any:
        y = ns.sum(ns.sin(p["a"]) * p["b"])
        return y, {"y": y}

    rng = np.random.default_rng(5)
    p = {"a": rng.standard_normal(3), "b": rng.standard_normal(3)}
    ours = getattr(cr, name)(lambda p: f(cr, p), has_aux=True)(_map(cr.tensor, p))
    fn = torch.func
    peer = {  # torch.func.hessian has no has_aux: it is jacfwd of jacrev
        "jacrev": fn.jacrev,
        "jacfwd": fn.jacfwd,
        "hessian": lambda g, has_aux: fn.jacfwd(fn.jacrev(g, has_aux=True), has_aux=True),
    }[name]
    theirs = peer(lambda p: f(torch, p), has_aux=True)(_map(torch.tensor, p))
    assert_same_tree(ours, theirs)


def test_each_jacobian_leaf_keeps_its_output_dtype() -> None:
    """The leaves are joined into one vector (one promoted dtype); each Jacobian gets its
    own dtype back."""
    x = cr.tensor([1.0, 2.0], dtype="float32")
    f = lambda x: {"y": x * 2, "z": cr.sum(x.double())}
    for jac in (cr.jacrev(f)(x), cr.jacfwd(f)(x)):
        assert (jac["y"].dtype, jac["z"].dtype) == (np.float32, np.float64)
        np.testing.assert_array_equal(jac["z"].data, [1.0, 1.0])


def test_a_list_of_numbers_is_one_leaf() -> None:
    """chainrule.tensor's reading: [1.0, 2.0] is one array, so its Jacobian is one matrix."""
    j = cr.jacobian(lambda v: [v * v])([1.0, 2.0])
    assert isinstance(j, list) and j[0].shape == (2, 2)
    np.testing.assert_allclose(j[0].data, np.diag([2.0, 4.0]))


def test_an_empty_output_tree_has_an_empty_jacobian() -> None:
    assert cr.jacrev(lambda x: ())(cr.ones(2)) == ()
    assert cr.jacfwd(lambda x: {})(cr.ones(2)) == {}


# --------------------------------------------------------------------------- properties

_LEAF = st.lists(st.integers(1, 3), max_size=2).map(np.zeros)  # stands for a leaf's shape
_TREES = st.recursive(
    _LEAF,
    lambda kids: st.one_of(
        st.lists(kids, min_size=1, max_size=3),
        st.lists(kids, min_size=1, max_size=3).map(tuple),
        st.dictionaries(st.sampled_from("abc"), kids, min_size=1, max_size=3),
    ),
    max_leaves=5,
)


def _build(shapes: Any, rng: np.random.Generator) -> Any:
    if isinstance(shapes, dict):
        return {k: _build(v, rng) for k, v in shapes.items()}
    if isinstance(shapes, list):
        return [_build(v, rng) for v in shapes]
    if isinstance(shapes, tuple):
        return tuple(_build(v, rng) for v in shapes)
    return cr.tensor(rng.standard_normal(shapes.shape))


@settings(max_examples=25, deadline=None)
@given(shapes=_TREES, seed=st.integers(0, 2**16))
def test_vjp_and_jvp_of_an_elementwise_tree_map(shapes: Any, seed: int) -> None:
    """f = sin on every leaf: the vjp is cos(x) * ct and the jvp cos(x) * t, leaf by leaf, in
    the input's structure, whatever it is."""
    rng = np.random.default_rng(seed)
    p, ct, t = (_build(shapes, rng) for _ in range(3))
    f = lambda q: _map(cr.sin, q)
    out, pullback = cr.vjp(f, p)
    assert_same_tree(out, _map(cr.sin, p))
    (got,) = pullback(ct)
    want = _leafwise(lambda x, c: cr.cos(x) * c, p, ct)
    assert_same_tree(got, want)
    assert_same_tree(cr.jvp(f, (p,), (t,))[1], _leafwise(lambda x, c: cr.cos(x) * c, p, t))


def _leafwise(fn: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    if isinstance(a, dict):
        return {k: _leafwise(fn, a[k], b[k]) for k in a}
    if isinstance(a, (list, tuple)):
        return type(a)(_leafwise(fn, x, y) for x, y in zip(a, b))
    return fn(a, b)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: cr.grad(lambda p: cr.sum(p["w"]))({"w": cr.ones(2), "tag": "x"}),
            TypeError,
            r"grad: argument 0\['tag'\] is a str; pytree leaves must be Tensors",
        ),
        (
            lambda: cr.jacrev(lambda p: p[0])([cr.ones(2), None]),
            TypeError,
            r"jacobian: argument 0\[1\] is a NoneType",
        ),
        (
            lambda: cr.vjp(lambda x: {"a": x, "b": x}, cr.ones(2))[1]({"a": cr.ones(2)}),
            ValueError,
            r"vjp: cotangent is a dict with keys \['a'\], but the output is a dict with "
            r"keys \['a', 'b'\]; they must have the same structure",
        ),
        (
            lambda: cr.vjp(lambda x: [x, (x, x)], cr.ones(2))[1]([cr.ones(2), (cr.ones(2),)]),
            ValueError,
            r"vjp: cotangent\[1\] is a tuple of 1, but the output\[1\] is a tuple of 2",
        ),
        (
            lambda: cr.vjp(lambda x: (x, x), cr.ones(2))[1](cr.ones(2)),
            ValueError,
            r"vjp: cotangent is a Tensor, but the output is a tuple of 2",
        ),
        (
            lambda: cr.vjp(lambda x: {"a": x}, cr.ones(2))[1]({"a": cr.ones(3)}),
            ValueError,
            r"vjp: cotangent\['a'\] has shape \(3,\), the output\['a'\] has \(2,\)",
        ),
        (
            lambda: cr.vjp(lambda x: [x], cr.ones(2))[1](["one"]),
            TypeError,
            r"vjp: cotangent\[0\] is a str",
        ),
        (
            lambda: cr.jvp(lambda p: p["a"], ({"a": cr.ones(2)},), ({"b": cr.ones(2)},)),
            ValueError,
            r"jvp: tangent 0 is a dict with keys \['b'\], but primal 0 is a dict with keys",
        ),
        (
            lambda: cr.jvp(lambda p: p[0], ([cr.ones(2)],), ([cr.ones(3)],)),
            ValueError,
            r"jvp: tangent 0\[0\] has shape \(3,\), primal has \(2,\)",
        ),
        (
            lambda: cr.jacrev(lambda x: {"a": x, "b": "label"})(cr.ones(2)),
            TypeError,
            r"jacobian: f must return a Tensor \(or dicts, lists, tuples of them\), got str "
            r"at output\['b'\]",
        ),
    ],
)
def test_pytree_errors_are_one_line_and_name_the_place(call, error, message) -> None:
    with pytest.raises(error, match=message) as info:
        call()
    assert "\n" not in str(info.value)
