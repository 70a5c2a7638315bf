"""Property-based tests (hypothesis) on random shapes and values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr
from chainrule.ops import NUMPY_NS, OPS

FLOATS = st.floats(-3, 3, allow_nan=False, width=64)
SETTINGS = settings(max_examples=40, deadline=None)
BINARY = [OPS[n] for n in ("add", "sub", "mul", "div", "maximum", "minimum")]


@SETTINGS
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4),
    op=st.sampled_from(BINARY),
    data=st.data(),
)
def test_gradient_shape_equals_input_shape_under_broadcasting(shapes, op, data) -> None:
    a, b = (
        data.draw(hnp.arrays(np.float64, s, elements=st.floats(0.5, 3)))
        for s in shapes.input_shapes
    )
    x, y = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    out = op(x, y)
    assert out.shape == shapes.result_shape
    cr.sum(out).backward()
    assert x.grad.shape == a.shape and y.grad.shape == b.shape


@SETTINGS
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=5), elements=FLOATS),
    data=st.data(),
)
def test_composites_match_numpy(x, data) -> None:
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    t = cr.tensor(x)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    np.testing.assert_allclose(
        cr.softmax(t, axis).data, e / e.sum(axis=axis, keepdims=True), rtol=1e-12, atol=1e-15
    )
    np.testing.assert_allclose(
        cr.log_softmax(t, axis).data,
        np.log(e / e.sum(axis=axis, keepdims=True)),
        rtol=1e-10,
        atol=1e-12,
    )
    np.testing.assert_allclose(cr.mean(t, axis).data, x.mean(axis=axis), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(cr.var(t, axis).data, x.var(axis=axis), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(cr.std(t, axis).data, x.std(axis=axis), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(cr.max(t, axis).data, x.max(axis=axis))
    np.testing.assert_allclose(
        cr.logsumexp(t, axis).data, np.log(np.exp(x).sum(axis=axis)), rtol=1e-12, atol=1e-14
    )


@SETTINGS
@given(
    op=st.sampled_from(
        [op for op in OPS.values() if op.primitive and op.arity == 1 and op.sym is not None]
    ),
    alpha=st.floats(-2, 2),
    beta=st.floats(-2, 2),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_vjp_is_linear_in_the_upstream_gradient(op, alpha, beta, seed, data) -> None:
    lo, hi = op.domain.lo, op.domain.hi  # sample where the op is defined
    x = data.draw(
        hnp.arrays(np.float64, hnp.array_shapes(max_dims=2, max_side=4), elements=st.floats(lo, hi))
    )
    rng = np.random.default_rng(seed)
    out = op.forward(x)
    g1, g2 = rng.standard_normal(out.shape), rng.standard_normal(out.shape)
    vjp = lambda g: op.vjps[0](g, out, x, NUMPY_NS)
    np.testing.assert_allclose(
        vjp(alpha * g1 + beta * g2), alpha * vjp(g1) + beta * vjp(g2), rtol=1e-9, atol=1e-9
    )


@settings(max_examples=25, deadline=None)
@given(
    a=hnp.arrays(np.float64, st.tuples(st.integers(1, 4), st.integers(1, 4)), elements=FLOATS),
    data=st.data(),
)
def test_matmul_gradient_matches_closed_form(a, data) -> None:
    b = data.draw(
        hnp.arrays(np.float64, (a.shape[1], data.draw(st.integers(1, 4))), elements=FLOATS)
    )
    x, y = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    g = np.ones((a.shape[0], b.shape[1]))
    (x @ y).backward(g)
    np.testing.assert_allclose(x.grad.data, g @ b.T)
    np.testing.assert_allclose(y.grad.data, a.T @ g)


@settings(max_examples=25, deadline=None)
@given(
    x=hnp.arrays(np.float64, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=FLOATS)
)
def test_random_composite_expressions_pass_gradcheck(x) -> None:
    f = lambda v: cr.sum(cr.tanh(v) * cr.sigmoid(2 * v) + cr.softplus(-v) ** 2) / (1 + v.size)
    assert cr.gradcheck(f, [x])


@pytest.mark.parametrize("shape", [(3,), (2, 3), (2, 1, 3)])
def test_sum_over_every_axis_subset(shape, rng) -> None:
    import itertools

    x = rng.standard_normal(shape)
    for r in range(len(shape) + 1):
        for axes in itertools.combinations(range(len(shape)), r):
            for keepdims in (False, True):
                f = lambda v, a=axes or None, k=keepdims: cr.sum(v, axis=a, keepdims=k)
                assert cr.gradcheck(f, [x])
