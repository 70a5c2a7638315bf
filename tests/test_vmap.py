"""vmap: every op in the table batched (the generic elementwise rule or its own `batch=` rule)
equals a Python loop, under grad too; nesting, in_axes/out_axes trees, jacfwd/jacrev, errors."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule.ops import OPS, OpDef

B = 3  # examples per batch in the table-driven tests
TABLE = [op for op in OPS.values() if op.arity != 0]  # creation entries have nothing to batch
RULED = [op for op in TABLE if op.batch is not None]


def _floats(inputs: tuple[Any, ...]) -> list[int]:
    return [i for i, a in enumerate(inputs) if np.asarray(a).dtype.kind == "f"]


def _batch_of(op: OpDef, rng: np.random.Generator, a: Any) -> np.ndarray:
    """B examples shaped like `a`: the case's own value and draws from the op's domain."""
    shape = np.shape(a)
    return np.stack([a, *(op.domain.sample(rng, shape, np.float64) for _ in range(B - 1))])


def _why(op: OpDef) -> str:
    if op.batch is None:
        return (
            f"op {op.name!r} has no batching rule (OpDef.batch) and is not elementwise, so "
            "vmap's generic rule batches it wrongly: give its table entry batch= (a rule of "
            "its own, or ops.batch_loop, correct for any op and as slow as a loop)"
        )
    return f"op {op.name!r}: its batching rule disagrees with a loop over the examples"


def _cases(op: OpDef, rng: np.random.Generator) -> list[Any]:
    assert op.cases is not None, f"op {op.name!r} has no test cases (cases=), so vmap is untested"
    return op.cases(rng, np.float64, op)


def _differentiable(op: OpDef, out: cr.Tensor) -> bool:
    """Whether a gradient flows through op (isnan-like ops and integer results have none)."""
    return out.dtype.kind == "f" and not (op.primitive and all(v is None for v in op.vjps))


def _shared_subsets(floats: list[int], mixed: bool) -> list[tuple[int, ...]]:
    """The sets of float inputs given to every example alike (in_axes None): none, or with
    `mixed` each nonempty proper subset (at least one input stays batched)."""
    if not mixed:
        return [()]
    subsets = itertools.chain.from_iterable(
        itertools.combinations(floats, n) for n in range(1, len(floats))
    )
    return list(subsets)


def _check_vmap_grad(op: OpDef, rng: np.random.Generator, mixed: bool = False) -> None:
    """vmap(value_and_grad(f)) == [value_and_grad(f)(x_b) for b], f = sum(op(x) * w), with
    every float input differentiated; `mixed`: some of them shared by all examples instead,
    differentiated or constant."""
    for inputs, params in _cases(op, rng):
        floats = _floats(inputs)
        out = op(*inputs, **params)
        if not (floats and _differentiable(op, out)):
            continue  # test_vmap_of_each_input_alone_equals_a_loop checks its values
        w = cr.tensor(rng.standard_normal(out.shape))

        def f(*xs: Any) -> cr.Tensor:
            return cr.sum(op(*xs, **params) * w)  # noqa: B023  (one case at a time)

        for shared in _shared_subsets(floats, mixed):
            mapped = [i for i in floats if i not in shared]
            batch = [_batch_of(op, rng, a) if i in mapped else a for i, a in enumerate(inputs)]
            in_axes = tuple(0 if i in mapped else None for i in range(len(inputs)))
            # a shared input differentiated is copied per example, a constant one is not
            for argnums in dict.fromkeys((tuple(floats), tuple(mapped))):
                _compare_with_loop(op, cr.value_and_grad(f, argnums=argnums), batch, in_axes)


def _compare_with_loop(op: OpDef, df: Any, batch: list[Any], in_axes: tuple[Any, ...]) -> None:
    try:
        value, grads = cr.vmap(df, in_axes=in_axes)(*batch)
    except Exception as exc:
        raise AssertionError(f"{_why(op)} ({type(exc).__name__}: {exc})") from exc
    for b in range(B):
        want_value, want = df(*[a if ax is None else a[b] for a, ax in zip(batch, in_axes)])
        assert value.shape == (B,), _why(op)
        np.testing.assert_allclose(value.data[b], want_value.data, rtol=1e-10, err_msg=_why(op))
        for k in range(len(want)):
            np.testing.assert_allclose(
                grads[k].data[b], want[k].data, rtol=1e-10, atol=1e-12, err_msg=_why(op)
            )


@pytest.mark.parametrize("op", TABLE, ids=lambda op: op.name)
def test_vmap_grad_equals_a_loop_of_grad(op: OpDef, rng: np.random.Generator) -> None:
    """Per-example gradients through every op of the table (its rule, or the generic one)."""
    _check_vmap_grad(op, rng)


@pytest.mark.parametrize("op", TABLE, ids=lambda op: op.name)
def test_vmap_of_each_input_alone_equals_a_loop(op: OpDef, rng: np.random.Generator) -> None:
    """One input batched (along its last axis), the others shared: the unbatched paths."""
    for inputs, params in _cases(op, rng):
        for i in _floats(inputs) or [0]:  # an op of integers only: its first input, repeated
            float_input = np.asarray(inputs[i]).dtype.kind == "f"
            one = _batch_of(op, rng, inputs[i]) if float_input else np.stack([inputs[i]] * B)
            batch = np.moveaxis(one, 0, -1)
            in_axes = tuple(-1 if k == i else None for k in range(len(inputs)))
            args = [batch if k == i else a for k, a in enumerate(inputs)]
            try:
                got = cr.vmap(lambda *xs: op(*xs, **params), in_axes=in_axes)(*args)  # noqa: B023
            except Exception as exc:
                raise AssertionError(f"{_why(op)} ({type(exc).__name__}: {exc})") from exc
            for b in range(B):
                one = [batch[..., b] if k == i else a for k, a in enumerate(inputs)]
                want = op(*one, **params).data
                np.testing.assert_allclose(got.data[b], want, rtol=1e-12, err_msg=_why(op))


@pytest.mark.parametrize("op", RULED, ids=lambda op: op.name)
def test_vmap_grad_with_shared_inputs_equals_a_loop(op: OpDef, rng: np.random.Generator) -> None:
    """Per-example gradients with some differentiated inputs shared by every example (in_axes
    None, as a model's weights in vmap(grad(loss))): each rule's paths for a mix of batched
    and shared operands, such as matmul's vectors times per-example matrices (whose weight
    gradient is an outer product)."""
    _check_vmap_grad(op, rng, mixed=True)


def test_an_op_without_a_rule_that_is_not_elementwise_is_caught(rng) -> None:
    """The completeness check fails, naming the op, for a reduction that forgot its rule."""
    forgot = OpDef(
        "sum_without_rule",
        lambda x: np.sum(x),
        (lambda g, out, x, xp: xp.broadcast_to(g, x.shape),),
        nosym="test op",
        cases=lambda rng, dtype, op: [((rng.standard_normal((2, 3)),), {})],
    )
    with pytest.raises(AssertionError, match="'sum_without_rule' has no batching rule"):
        _check_vmap_grad(forgot, rng)


def test_the_loop_rule_batches_any_op(rng) -> None:
    """ops.batch_loop, the rule that fits every op, passes the same check."""
    from dataclasses import replace

    from chainrule.ops import batch_loop

    looped = replace(OPS["max"], name="max_by_loop", batch=batch_loop)
    _check_vmap_grad(looped, rng)
    xent = replace(OPS["softmax_cross_entropy"], name="xent_by_loop", batch=batch_loop)
    z, y = rng.standard_normal((4, 2, 3)), np.array([[0, 2], [1, 1], [2, 2], [0, 1]])
    got = cr.vmap(lambda z, y: xent(z, labels=y))(z, y)  # a batched parameter too
    want = [OPS["softmax_cross_entropy"](z[b], labels=y[b]).data for b in range(4)]
    np.testing.assert_allclose(got.data, want, rtol=1e-12)


def _nodes(t: cr.Tensor) -> int:
    """The number of recorded ops in t's graph."""
    seen, stack = set(), [t]
    while stack:
        u = stack.pop()
        if id(u) in seen or not isinstance(u, cr.Tensor):
            continue
        seen.add(id(u))
        stack.extend(a for p in u._parents for a in (p if isinstance(p, (list, tuple)) else [p]))
    return len(seen)


def _batched_graph(op: OpDef, inputs: tuple[Any, ...], params: dict[str, Any], size: int) -> int:
    rng = np.random.default_rng(1)
    floats = _floats(inputs)
    batch = [
        cr.tensor(
            np.stack([op.domain.sample(rng, np.shape(a), np.float64)] * size), requires_grad=True
        )
        if i in floats
        else a
        for i, a in enumerate(inputs)
    ]
    in_axes = tuple(0 if i in floats else None for i in range(len(inputs)))
    return _nodes(cr.vmap(lambda *xs: op(*xs, **params), in_axes=in_axes)(*batch))


@pytest.mark.parametrize("op", RULED, ids=lambda op: op.name)
def test_the_rule_runs_the_op_once_not_per_example(op: OpDef, rng) -> None:
    """The graph of a batched call has as many ops for 2 examples as for 5: the entry's own
    rule ran, not a loop over the examples (ops.batch_loop, which no entry uses as its rule)."""
    from chainrule.ops import batch_loop

    assert op.batch is not batch_loop, f"{op.name}: batch_loop is a fallback, not a rule"
    for inputs, params in _cases(op, rng):
        if _floats(inputs):
            two, five = (_batched_graph(op, inputs, params, n) for n in (2, 5))
            assert two == five, f"{op.name}: {two} graph nodes for 2 examples, {five} for 5"


def test_the_node_count_sees_a_loop(rng) -> None:
    from dataclasses import replace

    from chainrule.ops import batch_loop

    looped = replace(OPS["cumsum"], name="cumsum_by_loop", batch=batch_loop)
    x = np.ones((3, 4))
    assert _batched_graph(looped, (x,), {"axis": 1}, 2) < _batched_graph(
        looped, (x,), {"axis": 1}, 5
    )


# --------------------------------------------------------------------------- composition


def _mlp_loss(w1: Any, b1: Any, w2: Any, b2: Any, x: cr.Tensor, y: Any) -> cr.Tensor:
    h = cr.tanh(x @ w1 + b1)
    return cr.composite.softmax_cross_entropy(h @ w2 + b2, y)


def test_per_example_gradients_of_an_mlp_equal_a_loop(rng) -> None:
    params = [rng.standard_normal(s) for s in [(5, 7), (7,), (7, 3), (3,)]]
    xs, ys = rng.standard_normal((6, 5)), np.array([0, 2, 1, 1, 0, 2])
    per_example = cr.grad(_mlp_loss, argnums=(0, 1, 2, 3))
    got = cr.vmap(per_example, in_axes=(None, None, None, None, 0, 0))(*params, xs, ys)
    for b in range(6):
        want = per_example(*params, xs[b], ys[b])
        for k in range(4):
            np.testing.assert_allclose(got[k].data[b], want[k].data, rtol=1e-10)


def test_linear_with_per_example_weights(rng) -> None:
    from chainrule.composite import linear

    def loss(w: cr.Tensor, b: cr.Tensor, x: cr.Tensor) -> cr.Tensor:
        return cr.sum(cr.sin(linear(x, w, b)))

    w, bias, xs = rng.standard_normal((3, 4)), rng.standard_normal(3), rng.standard_normal((5, 4))
    got = cr.vmap(cr.grad(loss, argnums=(0, 1)), in_axes=(None, None, 0))(w, bias, xs)
    for b in range(5):
        want = cr.grad(loss, argnums=(0, 1))(w, bias, xs[b])
        np.testing.assert_allclose(got[0].data[b], want[0].data, rtol=1e-10)
        np.testing.assert_allclose(got[1].data[b], want[1].data, rtol=1e-10)


def test_nested_vmap_equals_a_double_loop(rng) -> None:
    a, v = rng.standard_normal((4, 3, 5)), rng.standard_normal(3)

    def f(x: cr.Tensor, u: cr.Tensor) -> cr.Tensor:
        return cr.logsumexp(x * u) + cr.sum(x[1:] ** 2)

    got = cr.vmap(cr.vmap(f, in_axes=(1, None)), in_axes=(0, None))(a, v)
    want = [[f(cr.tensor(a[i, :, j]), cr.tensor(v)).item() for j in range(5)] for i in range(4)]
    assert got.shape == (4, 5)
    np.testing.assert_allclose(got.data, want, rtol=1e-12)


def test_nested_vmap_of_grad(rng) -> None:
    xs = rng.standard_normal((2, 3, 4))
    f = lambda x: cr.sum(cr.softmax(x) * cr.arange(4.0))
    got = cr.vmap(cr.vmap(cr.grad(f)))(xs)
    for i in range(2):
        for j in range(3):
            np.testing.assert_allclose(got.data[i, j], cr.grad(f)(xs[i, j]).data, rtol=1e-10)


def test_vmap_of_hessian_jacobian_jvp_vjp(rng) -> None:
    xs = rng.standard_normal((3, 4))
    f = lambda x: cr.sum(cr.tanh(x) ** 3)
    g = lambda x: cr.sin(x) * cr.sum(x)
    hs = cr.vmap(cr.hessian(f))(xs)
    js = cr.vmap(cr.jacobian(g))(xs)
    jf = cr.vmap(cr.jacfwd(g))(xs)
    ts = cr.vmap(lambda x: cr.jvp(g, (x,), (cr.ones_like(x),))[1])(xs)
    vs = cr.vmap(lambda x: cr.vjp(g, x)[1](cr.ones_like(x))[0])(xs)
    for b in range(3):
        x = cr.tensor(xs[b])
        j = cr.jacobian(g)(x).data
        np.testing.assert_allclose(hs.data[b], cr.hessian(f)(x).data, rtol=1e-10)
        np.testing.assert_allclose(js.data[b], j, rtol=1e-10)
        np.testing.assert_allclose(jf.data[b], j, rtol=1e-10)
        np.testing.assert_allclose(ts.data[b], j.sum(axis=1), rtol=1e-10)
        np.testing.assert_allclose(vs.data[b], j.sum(axis=0), rtol=1e-10)


def test_grad_of_vmap_and_vmap_of_second_derivative(rng) -> None:
    w, xs = rng.standard_normal(3), rng.standard_normal((5, 3))
    outer = cr.grad(lambda w: cr.sum(cr.vmap(lambda x: cr.sum(cr.sin(w * x)), (0,))(xs)))(w)
    np.testing.assert_allclose(outer.data, (np.cos(w * xs) * xs).sum(axis=0), rtol=1e-12)
    x = rng.standard_normal(4)
    d2 = cr.vmap(cr.grad(cr.grad(lambda x: cr.sin(x) * x)))(x)
    np.testing.assert_allclose(d2.data, 2 * np.cos(x) - x * np.sin(x), rtol=1e-12)


def test_second_order_compositions_agree(rng) -> None:
    """grad of a jacobian, jacfwd of jacrev and jacfwd of grad against hessian."""
    x = rng.standard_normal(3)
    f = lambda v: cr.sin(v) * cr.sum(v**2)
    h = cr.hessian(lambda v: cr.sum(f(v)))(x).data
    g = cr.grad(lambda v: cr.sum(cr.jacobian(f)(v)))(x).data
    np.testing.assert_allclose(g, h.sum(axis=0), rtol=1e-12)
    np.testing.assert_allclose(cr.jacfwd(cr.jacrev(lambda v: cr.sum(f(v))))(x).data, h)
    np.testing.assert_allclose(cr.jacfwd(cr.grad(lambda v: cr.sum(f(v))))(x).data, h)


def test_keyword_arguments_are_batched_along_axis_0(rng) -> None:
    a, b = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    got = cr.vmap(lambda x, *, y: cr.sum(x * y))(a, y=b)
    np.testing.assert_allclose(got.data, (a * b).sum(axis=1), rtol=1e-12)


@pytest.mark.parametrize("chunk_size", [1, 2, 5])
def test_jacobians_in_chunks_are_the_same(rng, chunk_size: int) -> None:
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    f = lambda a, b: cr.tanh(a @ b) * cr.sum(a)
    for jac in (cr.jacrev, cr.jacfwd):
        whole = jac(f, argnums=(0, 1))(a, b)
        parts = jac(f, argnums=(0, 1), chunk_size=chunk_size)(a, b)
        for w, p in zip(whole, parts):
            np.testing.assert_allclose(p.data, w.data, rtol=1e-12)
    with pytest.raises(ValueError, match="chunk_size must be a positive int"):
        cr.jacobian(f, chunk_size=0)(a, b)


def test_jacfwd_equals_jacrev(rng) -> None:
    a, b = rng.standard_normal((2, 3)), rng.standard_normal(3)
    f = lambda a, b: cr.tanh(a @ b) * cr.sum(a)
    for k in (0, 1):
        np.testing.assert_allclose(
            cr.jacfwd(f, argnums=k)(a, b).data, cr.jacrev(f, argnums=k)(a, b).data, rtol=1e-10
        )


def test_in_axes_and_out_axes_trees(rng) -> None:
    p = {"a": rng.standard_normal((2, 4)), "b": rng.standard_normal(2)}
    xs = [rng.standard_normal((3, 2)), rng.standard_normal((2, 3))]

    def f(p: dict[str, Any], pair: list[Any]) -> tuple[cr.Tensor, cr.Tensor]:
        u, v = pair
        return cr.tensor(p["a"]).T @ (u * v), cr.sum(u) + p["b"]

    first, second = cr.vmap(f, in_axes=({"a": None, "b": None}, [0, 1]), out_axes=(1, 0))(p, xs)
    assert first.shape == (4, 3) and second.shape == (3, 2)
    for b in range(3):
        want = f(p, [xs[0][b], xs[1][:, b]])
        np.testing.assert_allclose(first.data[:, b], want[0].data, rtol=1e-12)
        np.testing.assert_allclose(second.data[b], want[1].data, rtol=1e-12)


def _per_example_matmul(w: Any, xs: Any, dtype: Any, order: str = "xw") -> Any:
    f = (lambda w, x: cr.sum(x @ w)) if order == "xw" else (lambda w, x: cr.sum(w @ x))
    return cr.vmap(cr.grad(f), in_axes=(None, 0))(np.ones(w), np.ones(xs, dtype))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cr.vmap(cr.sin, in_axes=(0,))(np.ones(2), np.ones(2)), "positional"),
        (lambda: cr.vmap(lambda a, b: a * b)(np.ones(2), np.ones(3)), "different sizes"),
        (lambda: cr.vmap(cr.sin, in_axes=None)(np.ones(2)), "batches no argument"),
        (lambda: cr.vmap(cr.sin, in_axes=2)(np.ones((2, 3))), "out of range"),
        (lambda: cr.vmap(cr.sin, in_axes=((0, 0),))(np.ones(2)), "does not match"),
        (lambda: cr.vmap(lambda x: 1.0 if x > 0 else 0.0)(np.ones(2)), "control flow"),
        (lambda: cr.vmap(lambda x: x.data)(np.ones(2)), "values of a batched"),
        (lambda: cr.vmap(cr.sin, out_axes=None)(np.ones(2)), "out_axes None"),
        # per-example weights (vmap of grad): matmul's batch rule keeps matmul's own errors
        (lambda: _per_example_matmul((3, 4), (5, 3), np.float32), "matmul: dtypes"),
        (lambda: _per_example_matmul((3, 4), (5, 2), np.float64), "matmul: shapes"),
        (lambda: _per_example_matmul((4, 3), (5, 2), np.float64, "wx"), "matmul: shapes"),
    ],
)
def test_bad_vmap_calls_say_what_is_wrong(call: Any, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        call()


@given(
    shape=st.lists(st.integers(1, 3), min_size=1, max_size=4),
    data=st.data(),
    seed=st.integers(0, 2**16),
)
def test_vmap_of_a_reduction_along_any_axis(shape: list[int], data: Any, seed: int) -> None:
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    k = len(shape) - 1  # one example's rank
    reduce_axis = data.draw(st.one_of(st.none(), st.integers(-k, k - 1))) if k else None
    x = np.random.default_rng(seed).standard_normal(shape)

    def f(r: cr.Tensor) -> cr.Tensor:
        return cr.max(cr.exp(r), axis=reduce_axis) * 2.0 + cr.mean(r)

    got = cr.vmap(f, in_axes=axis)(x)
    want = np.stack([f(cr.tensor(np.take(x, b, axis=axis))).data for b in range(shape[axis])])
    np.testing.assert_allclose(got.data, want, rtol=1e-12)


def test_the_vmap_page_examples_run() -> None:
    """docs/vmap.md's `>>>` examples print what the page says."""
    import doctest
    from pathlib import Path

    page = Path(__file__).resolve().parent.parent / "docs" / "vmap.md"
    result = doctest.testfile(
        str(page),
        module_relative=False,
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
    )
    assert result.attempted > 10 and result.failed == 0, f"{result} in docs/vmap.md"


# --------------------------------------------------------------------------- pytrees, nn models


def _model_and_params(conv: bool, rng):
    from chainrule import nn

    cr.manual_seed(0)
    if conv:
        model = nn.Sequential(nn.Conv1d(2, 3, 3), nn.Tanh(), nn.Flatten(0), nn.Linear(12, 2))
        xs = rng.standard_normal((5, 2, 6))
    else:
        model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 2))
        xs = rng.standard_normal((5, 4))
    params = {k: cr.tensor(v.data.astype(np.float64)) for k, v in model.named_parameters()}
    return model, params, xs, rng.standard_normal((5, 2))


def _per_example(model, params, xs, ys):
    from chainrule.func import functional_call

    def loss(p, x, y):
        return cr.mean((functional_call(model, p, (x,)) - y) ** 2)

    return cr.vmap(cr.grad(loss), in_axes=(None, 0, 0))(params, xs, ys), cr.grad(loss)


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "cnn"])
def test_per_example_gradients_of_an_nn_model_equal_a_loop(conv: bool, rng) -> None:
    """vmap(grad) over functional_call: a dict of gradients, each (batch, *parameter shape),
    example b's equal to grad of example b alone; the module keeps its own parameters."""
    model, params, xs, ys = _model_and_params(conv, rng)
    own = {k: v.data.copy() for k, v in model.named_parameters()}
    got, one = _per_example(model, params, xs, ys)
    assert got.keys() == params.keys()
    for b in range(len(xs)):
        want = one(params, cr.tensor(xs[b]), cr.tensor(ys[b]))
        for k in params:
            assert got[k].shape == (len(xs), *params[k].shape)
            np.testing.assert_allclose(got[k].data[b], want[k].data, rtol=1e-10, atol=1e-12)
    assert all(np.array_equal(v.data, own[k]) for k, v in model.named_parameters())


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "cnn"])
def test_per_example_gradients_match_torch_func(conv: bool, rng) -> None:
    torch = pytest.importorskip("torch")
    model, params, xs, ys = _model_and_params(conv, rng)
    got, _ = _per_example(model, params, xs, ys)
    layers = (
        [torch.nn.Conv1d(2, 3, 3), torch.nn.Tanh(), torch.nn.Flatten(0), torch.nn.Linear(12, 2)]
        if conv
        else [torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2)]
    )
    tmodel = torch.nn.Sequential(*layers).double()
    tparams = {k: torch.from_numpy(v.data) for k, v in params.items()}

    def loss(p, x, y):
        return ((torch.func.functional_call(tmodel, p, (x,)) - y) ** 2).mean()

    want = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0, 0))(
        tparams, torch.from_numpy(xs), torch.from_numpy(ys)
    )
    for k in params:
        np.testing.assert_allclose(got[k].data, want[k].numpy(), rtol=1e-10, atol=1e-12)


def test_grad_of_a_pytree_keeps_its_structure(rng) -> None:
    w, b, x = rng.standard_normal((2, 3)), rng.standard_normal(2), rng.standard_normal(3)
    tree = {"layer": [cr.tensor(w), cr.tensor(b)], "scale": (cr.tensor(2.0, dtype=np.float64),)}

    def f(p, x):
        (w, b), (s,) = p["layer"], p["scale"]
        return cr.sum(cr.tanh(w @ x + b)) * s

    g = cr.grad(f)(tree, x)
    assert isinstance(g, dict) and isinstance(g["layer"], list) and isinstance(g["scale"], tuple)
    t = np.tanh(w @ x + b)
    np.testing.assert_allclose(g["layer"][1].data, 2 * (1 - t**2), rtol=1e-12)
    np.testing.assert_allclose(g["layer"][0].data, np.outer(2 * (1 - t**2), x), rtol=1e-12)
    np.testing.assert_allclose(g["scale"][0].data, t.sum(), rtol=1e-12)
    assert cr.grad(lambda v: cr.sum(v * v))([1.0, 2.0]).tolist() == [2.0, 4.0]  # numbers: one array


def test_functional_call_errors_name_the_key() -> None:
    from chainrule import nn
    from chainrule.func import functional_call

    model = nn.Sequential(nn.Linear(2, 2))
    with pytest.raises(KeyError, match=r"'1.weight' is not a parameter or buffer of Sequential"):
        functional_call(model, {"1.weight": cr.ones(2, 2)}, (cr.ones(2),))
    with pytest.raises(KeyError, match=r"strict, and .0\.bias. is not given"):
        functional_call(model, {"0.weight": cr.ones(2, 2)}, (cr.ones(2),), strict=True)
    with pytest.raises(KeyError, match=r"'0\.bias' is given twice"):
        functional_call(model, ({"0.bias": cr.ones(2)}, {"0.bias": cr.ones(2)}), cr.ones(2))


def test_compiled_vmap_of_grad_reads_a_closed_over_weight_fresh(rng) -> None:
    """grad copies a constant weight per example without dispatching ops, except while
    compile traces: the replay must read the weight again after it is rebound."""
    w, xs = cr.tensor(rng.standard_normal(3)), cr.tensor(rng.standard_normal((4, 3)))
    per_example = cr.vmap(cr.grad(lambda w, x: cr.sum(cr.tanh(x * w))), in_axes=(None, 0))
    compiled = cr.compile(lambda x: per_example(w, x))
    for _ in range(3):  # trace, check, replay
        compiled(xs)
    w.data = w.data * 2.0
    np.testing.assert_array_equal(compiled(xs).data, per_example(w, xs).data)
