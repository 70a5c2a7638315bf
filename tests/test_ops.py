"""The op table drives these tests: every primitive is gradchecked (orders 1 and 2) on its own
cases, checked against SymPy's derivative, and checked for completeness."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F
from chainrule.ops import NUMPY_NS, OPS, OpDef

ALL = [op for op in OPS.values() if not op.user]
DIFFERENTIABLE = [op for op in ALL if op.differentiable]
CONSTANT = [op for op in ALL if not op.differentiable]
PRIMITIVES = [op for op in ALL if op.primitive]
SYM = [op for op in PRIMITIVES if op.sym is not None]
COMPOSITES = [op for op in ALL if not op.primitive]
NAMED_COMPOSITES = [op for op in COMPOSITES if op.sym is not None]


def _cases(op: OpDef, rng: np.random.Generator, dtype=np.float64):
    assert op.cases is not None, f"{op.name} has no test cases"
    return op.cases(rng, dtype, op)


def _applied(op: OpDef, params: dict):
    return lambda *xs: op(*xs, **params)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_vjp_matches_central_differences(op: OpDef, rng: np.random.Generator) -> None:
    for inputs, params in _cases(op, rng):
        assert cr.gradcheck(_applied(op, params), list(inputs), order=1)


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_vjp_of_vjp_matches_central_differences(op: OpDef, rng: np.random.Generator) -> None:
    """Second order: the vjps, run on Tensors, are themselves differentiated correctly."""
    for inputs, params in _cases(op, rng)[:2]:
        assert cr.gradcheck(_applied(op, params), list(inputs), order=2)


@pytest.mark.parametrize("op", SYM, ids=lambda op: op.name)
def test_vjp_matches_sympy(op: OpDef, rng: np.random.Generator) -> None:
    """With g = 1, input i's vjp is the partial derivative SymPy computes from the twin."""
    sp = pytest.importorskip("sympy")
    symbols = sp.symbols(f"s0:{op.arity}", real=True)
    expr = op.sym(sp, *symbols)
    for i, s in enumerate(symbols):
        deriv = sp.lambdify(symbols, _partial(op, expr, s), "numpy")
        for _ in range(5):
            xs = [op.domain.sample(rng, (), np.float64) for _ in symbols]
            out = op.forward(*xs)
            g = op.vjps[i](np.ones_like(out), out, *xs, NUMPY_NS)
            np.testing.assert_allclose(
                g, deriv(*xs), rtol=1e-10, atol=1e-12, err_msg=f"{op.name}: d/d input {i} at {xs}"
            )


def _partial(op: OpDef, expr, s):
    """SymPy's derivative; for a step function (no derivative SymPy can print: floor's is
    unevaluated, sign's a DiracDelta) the table's dsym, 0 away from the jumps."""
    sp = pytest.importorskip("sympy")
    d = sp.diff(expr, s)
    if d.has(sp.Derivative, sp.DiracDelta):
        assert op.dsym is not None and op.kink, f"{op.name}: a jump needs dsym and a kink note"
        from chainrule.symbolic.functions import F

        return op.dsym(sp, F, s)
    return d


@pytest.mark.parametrize("op", NAMED_COMPOSITES, ids=lambda op: op.name)
def test_composite_matches_its_twin_and_its_derivative(op: OpDef, rng: np.random.Generator):
    """A composite's value and gradient equal its SymPy twin's and the twin's derivative."""
    sp = pytest.importorskip("sympy")
    s = sp.Symbol("s", real=True)
    numpy = [{"erf": OPS["erf"].forward}, "numpy"]  # NumPy has no erf
    f = sp.lambdify([s], op.sym(sp, s), numpy)
    df = sp.lambdify([s], _partial(op, op.sym(sp, s), s), numpy)
    x = op.domain.sample(rng, (6,), np.float64)
    t = cr.tensor(x, requires_grad=True)
    y = op(t)
    y.sum().backward()
    np.testing.assert_allclose(y.data, f(x), rtol=1e-10, atol=1e-12, err_msg=op.name)
    np.testing.assert_allclose(t.grad.data, df(x), rtol=1e-9, atol=1e-12, err_msg=op.name)


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_table_entry_is_complete(op: OpDef) -> None:
    """Every field the rest of chainrule reads is there: doc, twin (or the reason for none),
    test cases, a vjp and a trace formula per input, and for a name the parser reads, a twin."""
    assert op.doc, f"{op.name} needs a one-line doc"
    assert op.sym is not None or op.nosym, f"{op.name} needs a SymPy twin or a reason"
    assert op.cases is not None
    if op.primitive:
        assert op.variadic or len(op.vjps) == op.arity
        assert len(op.local) == (1 if op.variadic else op.arity), (
            f"{op.name}: give local=(...), one trace formula per input: the local derivative "
            "in the input names and out ('out*(1 - out)'), or the vjp written with g ('g @ y^T')"
        )
        for vjp, formula in zip(op.vjps, op.local):
            assert (vjp is None) == (formula == ""), f"{op.name}: a formula per vjp"
    else:
        assert op.compose is not None and op.forward is None and not op.vjps
        # a composite is there for the parser (names and a twin), or it is an array function
        # built from the primitives (sort, diff) that the table's tests reach this way
        assert op.names or op.nosym, f"{op.name}: give parser names or say why there are none"
    assert all(n.isidentifier() for n in op.names), op.names
    assert not op.names or op.sym is not None
    assert not op.kink or op.names, f"{op.name}: a kink is stated by the explainer"


@pytest.mark.parametrize("op", DIFFERENTIABLE, ids=lambda op: op.name)
def test_float32_in_float32_out(op: OpDef, rng: np.random.Generator) -> None:
    """No silent upcast: float32 inputs give float32 values and float32 gradients."""
    inputs, params = _cases(op, rng, np.float32)[0]
    xs = [
        cr.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x
        for x in inputs
    ]
    out = op(*xs, **params)
    assert out.dtype == np.float32 or op.name == "astype"
    cr.sum(out * out).backward()
    for x in xs:
        if isinstance(x, cr.Tensor) and x.requires_grad:
            assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


@pytest.mark.parametrize("op", CONSTANT, ids=lambda op: op.name)
def test_an_op_without_a_derivative_gives_no_gradient(op: OpDef, rng) -> None:
    """What the table says: the result has the kind `returns` names, never requires grad
    (as PyTorch's), and a loss that uses it only as a mask gives its inputs no gradient."""
    assert op.returns and not op.vjps and op.nosym.startswith("not differentiable: returns")
    for inputs, params in _cases(op, rng):
        xs = [
            cr.tensor(a, requires_grad=True) if np.asarray(a).dtype.kind == "f" else a
            for a in inputs
        ]
        out = op(*xs, **params)
        assert ("bool" in op.returns) == (out.dtype == bool), (op.returns, out.dtype)
        assert op.returns.startswith("int64") == (out.dtype == np.int64), (op.returns, out.dtype)
        assert out.ndim == 0 or not op.returns.startswith("a 0-d")
        assert not out.requires_grad
        floats = [x for x in xs if isinstance(x, cr.Tensor)]
        if floats and out.shape == floats[0].shape:
            mask = out.astype(bool)
            with np.errstate(invalid="ignore"):  # the sum of an inf and a -inf is NaN
                cr.sum(cr.where(mask, 0.0, floats[0])).backward()  # where's gradient only
            np.testing.assert_array_equal(floats[0].grad.data, np.where(mask.data, 0.0, 1.0))


# How NumPy spells an entry's call where the table's inputs or parameters are not NumPy's own
# (a list where the entry takes inputs, a parameter NumPy names or places otherwise).
NUMPY_SPELLING = {
    "astype": lambda xs, p: xs[0].astype(p["dtype"]),
    "concatenate": lambda xs, p: np.concatenate(xs, **p),
    "column_stack": lambda xs, p: np.column_stack(xs),
    "row_stack": lambda xs, p: np.vstack(xs),  # NumPy 2 deprecates the name row_stack
    "einsum": lambda xs, p: np.einsum(p["subscripts"], *xs),
    "select": lambda xs, p: np.select(list(p["condlist"]), list(xs), p["default"]),
    "gradient": lambda xs, p: np.gradient(
        xs[0], p.get("spacing", 1.0), axis=p.get("axis", 0), edge_order=p.get("edge_order", 1)
    ),
    "sort": lambda xs, p: _descending(np.sort(xs[0], p["axis"]), p),
    "argsort": lambda xs, p: _descending(np.argsort(xs[0], p["axis"], kind="stable"), p),
}
# What of the result NumPy fixes: partition's order within each side is NumPy's choice.
NUMPY_FIXES = {
    "partition": lambda out, p: (
        np.sort(out, axis=p.get("axis", -1)),
        np.take(out, p["kth"], axis=p.get("axis", -1)),
    ),
}
NUMPY_NAMED = [
    op for op in ALL if op.arity != 0 and callable(getattr(np, op.name, None)) and op.cases
]


def _descending(a: np.ndarray, p: dict) -> np.ndarray:
    return np.flip(a, p["axis"]) if p.get("descending") else a


@pytest.mark.parametrize("op", NUMPY_NAMED, ids=lambda op: op.name)
def test_an_entry_named_like_numpy_gives_numpys_values(op: OpDef, rng) -> None:
    """Every entry with a NumPy function's name, on its own cases, equals that function
    (called with the same inputs and parameters, or as NUMPY_SPELLING says NumPy spells it)."""
    fixes = NUMPY_FIXES.get(op.name, lambda out, p: (out,))
    for inputs, params in _cases(op, rng):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # np.cross of 2-vectors
            call = NUMPY_SPELLING.get(op.name, lambda xs, p: getattr(np, op.name)(*xs, **p))
            want = call(inputs, params)
        got = op(*inputs, **params).data
        assert np.shape(got) == np.shape(want), (op.name, params)
        for a, b in zip(fixes(got, params), fixes(want, params), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14, err_msg=op.name)


_M = cr.ones(3, 4)
NUMPY_REFUSALS = {
    "pad: negative width": (lambda: cr.pad(_M, -1), ValueError, "is negative"),
    "pad: pairs for 3 axes": (lambda: cr.pad(_M, ((1, 1),) * 3), ValueError, "does not fit a 2-d"),
    "pad: unknown mode": (lambda: cr.pad(_M, 1, mode="replicate"), ValueError, "mode must be"),
    "pad: an empty axis": (lambda: cr.pad(cr.ones(0, 2), 1, "edge"), ValueError, "empty axis"),
    "pad: per-axis values": (
        lambda: cr.pad(_M, 1, constant_values=(1, 2)),
        ValueError,
        "one number",
    ),
    "F.pad: numpy's mode": (lambda: F.pad(_M, (1, 1), mode="edge"), ValueError, "mode must"),
    "F.pad: reflect too wide": (lambda: F.pad(_M, (4, 0), "reflect"), ValueError, "size 4"),
    "rot90: one axis": (lambda: cr.rot90(_M, axes=(1, 1)), ValueError, "two different axes"),
    "fliplr: 1-d": (lambda: cr.fliplr(cr.ones(3)), ValueError, "at least a 2-d"),
    "cross: 4 components": (lambda: cr.cross(_M, _M), ValueError, "got 4 and 4"),
    "cross: axisc": (lambda: cr.cross(_M[:, :3], _M[:, :3], axisc=2), ValueError, "axisc 2"),
    "select: counts differ": (lambda: cr.select([_M > 0], [_M, _M]), ValueError, "1 conditions"),
    "select: float condition": (lambda: cr.select([_M], [_M]), TypeError, "boolean"),
    "partition: kth too large": (lambda: cr.partition(_M, 4), ValueError, "kth 4"),
    "gradient: too short": (lambda: cr.gradient(cr.ones(1)), ValueError, "size 1"),
    "gradient: coordinates": (lambda: cr.gradient(_M, [1.0, 2.0]), TypeError, "spacing"),
    "append: ranks differ": (lambda: cr.append(_M, cr.ones(4), axis=0), ValueError, "(3, 4)"),
    "rollaxis: start": (lambda: cr.rollaxis(_M, 0, 3), ValueError, "start 3"),
    "r_: a directive": (lambda: cr.r_["r", cr.ones(2)], ValueError, "'r'"),
    "array_split: no sections": (lambda: cr.array_split(_M, 0), ValueError, "got 0"),
    "split: unequal parts": (lambda: cr.split(_M, 3, axis=1), ValueError, "3 equal parts"),
    "vsplit: 1-d": (lambda: cr.vsplit(cr.ones(4), 2), ValueError, "at least a 2-d"),
    "dsplit: 2-d": (lambda: cr.dsplit(_M, 2), ValueError, "at least a 3-d"),
    "hsplit: float cuts": (lambda: cr.hsplit(_M, [1.5]), ValueError, "integers"),
}


def test_take_along_axis_broadcasts_as_numpys(rng) -> None:
    x, idx = rng.normal(size=(1, 4)), np.array([[1], [3], [3]])
    got = cr.take_along_axis(cr.tensor(x), idx, axis=1)
    np.testing.assert_array_equal(got.data, np.take_along_axis(x, idx, axis=1))
    g = cr.grad(lambda t: cr.sum(cr.take_along_axis(t, idx, axis=1)))(cr.tensor(x)).data
    np.testing.assert_array_equal(g, [[0, 1, 0, 2]])


SPLITS = [
    ("split", (3, 4), (2,), {"axis": 1}),
    ("split", (5, 2), ([1, 3],), {}),
    ("split", (5, 2), ([-2, 9],), {}),  # cut points past the ends clamp, as NumPy's slices
    ("array_split", (7,), (3,), {}),
    ("array_split", (4, 7, 2), (4,), {"axis": 1}),
    ("vsplit", (4, 3), (2,), {}),
    ("hsplit", (6,), (3,), {}),
    ("hsplit", (2, 6, 1), ([2],), {}),
    ("dsplit", (2, 2, 6), ([1, 4],), {}),
]


@pytest.mark.parametrize("name, shape, args, kwargs", SPLITS)
def test_the_split_family_gives_numpys_pieces_and_gradients(name, shape, args, kwargs, rng):
    """Lists of pieces: NumPy's values, and the gradient of a weighted sum of the pieces puts
    each piece's weights back in its place."""
    x = rng.normal(size=shape)
    want = getattr(np, name)(x, *args, **kwargs)
    got = getattr(cr, name)(cr.tensor(x), *args, **kwargs)
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        np.testing.assert_array_equal(a.data, b)
    weights = [rng.normal(size=b.shape) for b in want]

    def f(t):
        pieces = getattr(cr, name)(t, *args, **kwargs)
        return cr.sum(cr.stack([cr.sum(p * w) for p, w in zip(pieces, weights, strict=True)]))

    g = cr.grad(f)(cr.tensor(x)).data
    axis = {"vsplit": 0, "hsplit": 0 if len(shape) == 1 else 1, "dsplit": 2}.get(
        name, kwargs.get("axis", 0)
    )
    np.testing.assert_array_equal(g, np.concatenate(weights, axis=axis))


@pytest.mark.parametrize("name", list(NUMPY_REFUSALS))
def test_numpy_functions_refuse_bad_input_in_one_line(name: str) -> None:
    call, kind, fragment = NUMPY_REFUSALS[name]
    with pytest.raises(kind) as info:
        call()
    assert fragment in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("shapes", [((7, 1, 40), (7, 40, 100)), ((100, 40), (40, 1))])
def test_matmul_gradients_of_one_term_products_are_matmuls_floats(shapes, rng) -> None:
    """An inner size of 1 (vmap's per-example vector-matrix products) is an outer product in
    matmul's vjps: the same floats as the matmul it replaces, bit for bit."""
    x, y = (rng.standard_normal(s).astype(np.float32) for s in shapes)
    g = rng.standard_normal(np.matmul(x, y).shape).astype(np.float32)
    gx, gy = (rule(g, None, x, y, NUMPY_NS) for rule in OPS["matmul"].vjps)
    assert np.array_equal(gx, np.matmul(g, np.swapaxes(y, -1, -2)))
    assert np.array_equal(gy, np.matmul(np.swapaxes(x, -1, -2), g))


def test_defop_rejects_duplicates_and_wrong_arity() -> None:
    from chainrule.ops import defop

    with pytest.raises(ValueError, match="already defined"):
        defop("sin", np.sin, lambda g, out, x, xp: g, sym=lambda sp, x: x)
    with pytest.raises(ValueError, match="2 vjps for 1 inputs"):
        defop("bad_arity_op", np.sin, None, None, arity=1, sym=lambda sp, x: x)
    with pytest.raises(ValueError, match="SymPy twin"):
        defop("no_sym_op", np.sin, None)
    with pytest.raises(ValueError, match="the name 'ln' is log's"):
        defop("other_log", np.log, None, sym=lambda sp, x: sp.log(x), names=("ln",))
    with pytest.raises(ValueError, match="2 trace formulas for 1 inputs"):
        defop("bad_local_op", np.sin, None, sym=lambda sp, x: x, local=("1", "1"))
    assert not {"bad_arity_op", "no_sym_op", "other_log", "bad_local_op"} & set(OPS)


def test_ops_doc_is_generated_from_table() -> None:
    from pathlib import Path

    from chainrule.docs import ops_markdown

    path = Path(__file__).resolve().parents[1] / "docs" / "ops.md"
    if not path.exists():
        pytest.skip("docs/ops.md is not part of an installed package")
    assert path.read_text(encoding="utf-8") == ops_markdown(), (
        "docs/ops.md is stale: run `python -m chainrule.docs > docs/ops.md`"
    )


EINSUM_CASES = [
    params["subscripts"]
    for _, params in OPS["einsum"].cases(np.random.default_rng(0), np.float64, OPS["einsum"])
]


@pytest.mark.parametrize("k", range(len(EINSUM_CASES)), ids=EINSUM_CASES)
def test_einsum_matches_torch_values_and_gradients(k: int, rng: np.random.Generator) -> None:
    """The table's einsum cases ('...' broadcasting included) against torch.einsum."""
    torch = pytest.importorskip("torch")
    inputs, params = _cases(OPS["einsum"], rng)[k]
    ours = [cr.tensor(a, requires_grad=True) for a in inputs]
    theirs = [torch.tensor(a, requires_grad=True) for a in inputs]
    out, ref = cr.einsum(params["subscripts"], *ours), torch.einsum(params["subscripts"], *theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), rtol=1e-12, atol=1e-12)
    w = rng.standard_normal(out.shape)
    cr.sum(out * w).backward()
    (ref * torch.from_numpy(w)).sum().backward()
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("subscripts", "shapes", "message"),
    [
        ("...ij,...jk->...ik", [(2, 3, 4), (3, 4, 5)], r"the '\.\.\.' axes \[\(2,\), \(3,\)\]"),
        ("ijk", [(2, 3)], r"names 3 axes for an operand of shape \(2, 3\)"),
        ("i.j", [(2, 3)], "subscripts are letters and one '...'"),
    ],
)
def test_einsum_refuses_with_one_line(subscripts: str, shapes: list, message: str) -> None:
    with pytest.raises(ValueError, match=f"einsum: .*{message}"):
        cr.einsum(subscripts, *(np.ones(s) for s in shapes))


EINSUM_FORMS = [
    ("ii", [(3, 3)]),
    ("ii->i", [(3, 3)]),
    ("lli,il->l", [(3, 3, 4), (4, 3)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("iji->j", [(3, 2, 3)]),
]


@pytest.mark.parametrize(("subscripts", "shapes"), EINSUM_FORMS, ids=[s for s, _ in EINSUM_FORMS])
def test_einsum_repeated_indices_are_diagonals(subscripts, shapes, rng) -> None:
    """An index repeated within one operand (a diagonal; the trace when summed), as NumPy's,
    differentiable to order 2 (the diagonal is a getitem, whose gradient scatters)."""
    xs = [rng.standard_normal(s) for s in shapes]
    np.testing.assert_allclose(cr.einsum(subscripts, *xs).data, np.einsum(subscripts, *xs))
    assert cr.gradcheck(lambda *ts: cr.einsum(subscripts, *ts), [cr.tensor(x) for x in xs], order=2)


def test_einsum_takes_numpys_sublists(rng) -> None:
    a, b = rng.standard_normal((3, 3)), rng.standard_normal((3, 2))
    for args in ([a, [0, 1], b, [1, 2]], [a, [0, 1], b, [1, 2], [2]], [a, [Ellipsis, 1]]):
        np.testing.assert_allclose(cr.einsum(*args).data, np.einsum(*args), rtol=1e-12)
    with pytest.raises(ValueError, match=r"einsum: index 'i' of 'ii' has sizes 2 and 3"):
        cr.einsum("ii", np.ones((2, 3)))
    with pytest.raises(TypeError, match="einsum: give the subscripts string"):
        cr.einsum(a, "ij")
