"""Edge semantics that need no PyTorch install (issue 9, item 5): the values PyTorch and NumPy
give, recorded here so the suite checks them everywhere; `test_torch_edges.py` compares
against PyTorch itself, on drawn special values, where it is installed.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F

INF, NAN = np.inf, np.nan


def _grads(f, *values):
    """f's value and the gradients of its float64 inputs, NumPy's warnings silenced."""
    xs = [cr.tensor(np.asarray(v, dtype=np.float64), requires_grad=True) for v in values]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        y = f(*xs)
        y.backward(np.ones(y.shape))
    return (y.data, *(x.grad.data for x in xs))


# PyTorch 2.13's x ** y at x = 0 (both operands tensors): torch.pow and its autograd.
POW_AT_ZERO = [
    # x, y, x ** y, d/dx, d/dy
    (0.0, 2.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 0.0, 1.0, 0.0),
    (0.0, 0.5, 0.0, INF, 0.0),
    (0.0, 0.0, 1.0, 0.0, 0.0),
    (0.0, -1.0, INF, -INF, -INF),
    (0.0, -0.5, INF, -INF, -INF),
    (-0.0, -1.0, -INF, -INF, INF),
    (0.0, INF, 0.0, NAN, 0.0),
    (0.0, -INF, INF, -INF, -INF),
    (-1.0, 2.0, 1.0, -2.0, NAN),
    (-1.0, 0.0, 1.0, 0.0, NAN),
    (1.0, -1.0, 1.0, -1.0, 0.0),
]


@pytest.mark.parametrize(("x", "y", "value", "dx", "dy"), POW_AT_ZERO)
def test_power_of_two_tensors_follows_torch_at_zero(x, y, value, dx, dy) -> None:
    got = _grads(lambda a, b: a**b, x, y)
    np.testing.assert_array_equal(got, [value, dx, dy])


@pytest.mark.parametrize(("y", "dx"), [(2.0, 0.0), (0.5, INF), (0.0, 0.0), (-1.0, -INF)])
def test_power_with_constant_exponent_at_zero(y, dx) -> None:
    np.testing.assert_array_equal(_grads(lambda a: a**y, 0.0)[1], dx)


def test_power_with_constant_base_zero_differentiates_the_exponent_as_torch() -> None:
    np.testing.assert_array_equal(_grads(lambda b: 0.0**b, [2.0, 0.0, -1.0])[1], [0, 0, -INF])


def test_std_gradient_at_zero_variance_is_zero() -> None:
    for ddof in (0, 1):
        value, grad = _grads(lambda x, d=ddof: cr.std(x, ddof=d), [3.0, 3.0, 3.0])
        assert value == 0 and (grad == 0).all()
    # per slice: the constant row gets 0, the other row its usual gradient
    _, grad = _grads(lambda x: cr.std(x, axis=1).sum(), [[2.0, 2.0], [1.0, 3.0]])
    np.testing.assert_allclose(grad, [[0, 0], [-0.5, 0.5]])


def test_std_is_still_twice_differentiable_away_from_zero_variance() -> None:
    cr.gradcheck(lambda x: cr.std(x, axis=0), [cr.tensor([[1.0, 2.0], [3.0, 5.0]])], order=2)


@pytest.mark.parametrize(
    ("x", "ddof", "axis", "expected"),
    [
        ([1.0, 2.0], 2, None, INF),  # ddof = N: NumPy/PyTorch's inf, not -0 or negative
        ([1.0, 2.0], 5, None, INF),  # ddof > N: still inf, never negative
        ([1.0, 1.0], 2, None, NAN),  # 0 / 0
        (np.zeros((0, 3)), 0, 0, [NAN, NAN, NAN]),  # an empty axis
        ([[1.0, 2.0], [3.0, 3.0]], 2, 1, [INF, NAN]),
    ],
)
def test_var_with_no_degrees_of_freedom_is_inf_or_nan(x, ddof, axis, expected) -> None:
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # NumPy's own dof <= 0 warning
        reference = np.var(x, axis=axis, ddof=ddof)
    np.testing.assert_array_equal(reference, expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and ours computes it without a warning
        np.testing.assert_array_equal(cr.var(cr.tensor(x), axis, ddof).data, expected)
        np.testing.assert_array_equal(cr.std(cr.tensor(x), axis, ddof).data, np.sqrt(expected))


def test_mean_over_an_empty_axis_is_nan_without_warning() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isnan(cr.mean(cr.zeros(0)).item())
        assert cr.mean(cr.zeros(2, 0), axis=0).shape == (0,)


@pytest.mark.parametrize("f", [cr.mean, cr.var, cr.std])
def test_float16_reductions_accumulate_in_float32(f) -> None:
    x = np.full(70_000, 1.5, dtype=np.float16)
    t = cr.tensor(x, requires_grad=True)
    y = f(t)
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y.data, f(cr.tensor(x.astype(np.float32))).data.astype("f2"))
    y.backward()
    assert t.grad.dtype == np.float16 and np.isfinite(t.grad.data).all()


@pytest.mark.parametrize(
    ("f", "x", "y", "dx", "dy"),
    [
        # torch.maximum/minimum: where either input is NaN, both receive the full gradient
        (cr.maximum, [1.0, NAN, 3.0, 2.0], [2.0, 2.0, NAN, 2.0], [0, 1, 1, 0.5], [1, 1, 1, 0.5]),
        (cr.minimum, [1.0, NAN, 3.0, 2.0], [2.0, 2.0, NAN, 2.0], [1, 1, 1, 0.5], [0, 1, 1, 0.5]),
    ],
)
def test_elementwise_extrema_keep_the_gradient_of_a_nan(f, x, y, dx, dy) -> None:
    _, gx, gy = _grads(f, x, y)
    np.testing.assert_array_equal(gx, dx)
    np.testing.assert_array_equal(gy, dy)


@pytest.mark.parametrize("f", [cr.max, cr.min])
def test_reduction_extrema_propagate_nan_into_the_gradient(f) -> None:
    # torch.amax/amin and autograd: a slice whose result is NaN has a NaN gradient throughout
    value, grad = _grads(lambda x: f(x, axis=1), [[1.0, NAN, 3.0], [1.0, 3.0, 1.0]])
    assert np.isnan(value[0]) and np.isnan(grad[0]).all()
    assert np.isfinite(grad[1]).all() and grad[1].sum() == 1


def test_cross_entropy_with_probability_targets_differentiates_the_target() -> None:
    rng = np.random.default_rng(0)
    z = cr.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    p = cr.tensor(rng.dirichlet(np.ones(4), size=3), requires_grad=True)
    F.cross_entropy(z, p).backward()
    # d/dp of mean_i(-sum_j p_ij log_softmax(z)_ij) = -log_softmax(z) / N
    np.testing.assert_allclose(p.grad.data, -cr.log_softmax(z).data / 3, rtol=1e-12)
    cr.gradcheck(lambda z, p: F.cross_entropy(z, p), [z.detach(), p.detach()], order=2)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ((), (3,)),
        ((3,), (3,)),
        ((2, 3), (3, 4)),
        ((2, 3, 4), (4,)),
        ((4,), (2, 4, 3)),
        ((2, 3, 4), (5, 4, 6)),
        ((2, 4), (3, 4, 5)),
        ((2, 1, 3), (4, 3, 2)),
    ],
)
def test_dot_is_numpy_dot(a, b, rng) -> None:
    x, y = rng.normal(size=a), rng.normal(size=b)
    np.testing.assert_allclose(cr.dot(x, y).data, np.dot(x, y), rtol=1e-12)
    cr.gradcheck(cr.dot, [cr.tensor(x), cr.tensor(y)], order=2)


def test_dot_names_the_misaligned_axes() -> None:
    with pytest.raises(
        ValueError, match=r"dot: shapes \(2, 3, 4\) and \(5, 3, 6\) are not aligned"
    ):
        cr.dot(np.ones((2, 3, 4)), np.ones((5, 3, 6)))


# ---------------------------------------------------------------------------- lists of tensors


def test_mean_of_a_list_of_tensors_is_differentiable() -> None:
    assert cr.grad(lambda x: cr.mean([x, x + 2]))(0.0).item() == 1


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (lambda x: cr.tensor([x, 2 * x]).sum(), 3.0),  # autograd's np.array([x, 2 * x])
        (lambda x: cr.tensor([[x, 1.0], (3.0, x * x)]).sum(), 1 + 2 * 1.5),  # nested, mixed
        (lambda x: cr.sum(cr.add(x, [x, 2 * x])), 2 + 3),  # an op's other operand
        (lambda x: cr.sum(cr.exp([x, x])), 2 * np.exp(1.5)),  # a function's argument
        (lambda x: cr.sum(cr.maximum((x, -x), 0.0)), 1.0),
        (lambda x: cr.sum(cr.stack([x, [x, x]][1])), 2.0),
    ],
)
def test_a_list_of_tensors_is_stacked_differentiably(f, expected) -> None:
    np.testing.assert_allclose(cr.grad(f)(cr.tensor(1.5, dtype=np.float64)).item(), expected)


def test_a_stacked_list_keeps_dtype_name_and_shape_errors() -> None:
    x = cr.tensor([1.0, 2.0], dtype=np.float64, requires_grad=True)
    t = cr.tensor([x, x * 3], dtype=np.float32, name="rows")
    assert t.shape == (2, 2) and t.dtype == np.float32 and t.name == "rows" and t.requires_grad
    with pytest.raises(ValueError, match="stack: all tensors must have the same shape"):
        cr.tensor([x, cr.tensor([1.0, 2.0, 3.0])])


def test_a_list_of_constants_or_no_grad_tensors_stays_a_leaf() -> None:
    x = cr.tensor(2.0)
    t = cr.tensor([x, 3.0], requires_grad=True)
    assert t.is_leaf and t.requires_grad and t.tolist() == [2.0, 3.0]


def test_tensor_of_a_tensor_that_requires_grad_stays_connected() -> None:
    assert cr.grad(lambda x: cr.tensor(x) * x)(cr.tensor(3.0)).item() == 6
    x = cr.tensor(2.0, requires_grad=True)
    copy = cr.tensor(x)
    assert not copy.is_leaf and copy.data is not x.data  # a copy, still on the graph
    assert cr.tensor(x.detach()).is_leaf


def test_grad_of_a_complex_output_is_an_error() -> None:
    with pytest.raises(TypeError, match="grad: f must return a real scalar, got complex128"):
        cr.grad(lambda x: x * (1.0 + 0.2j))(cr.tensor(1.0, dtype=np.float64))


def test_log_softmax_keeps_its_digits_for_large_logits_and_nan_for_inf() -> None:
    big = cr.tensor([1e10, 1e10], dtype=np.float64)
    np.testing.assert_array_equal(cr.softmax(big).data, [0.5, 0.5])
    np.testing.assert_array_equal(cr.log_softmax(big).data, [-np.log(2), -np.log(2)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # inf - inf
        value, grad = _grads(lambda z: cr.log_softmax(z), [0.0, INF])
    assert np.isnan(value).all() and np.isnan(grad).all()  # as torch: the slice is undefined
    assert cr.softmax(cr.zeros(2, 0)).shape == (2, 0)
    assert cr.logsumexp(cr.zeros(2, 0), axis=1).tolist() == [-INF, -INF]


def test_a_list_of_tensors_is_stacked_under_compile_too() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)

    @cr.compile
    def step(x):
        loss = (x * [w[0], w[1] * 2]).sum()
        loss.backward()
        return loss

    for k in range(3):  # trace, check, replay
        w.grad = None
        loss = step(cr.tensor([3.0, 4.0 + k]))
        assert loss.item() == 3 + 4 * (4 + k)
        assert w.grad.tolist() == [3.0, 2 * (4 + k)]
