"""Functional transforms: grad, value_and_grad, vjp, jvp, jacobian, hessian, to any order."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr


def test_higher_derivatives_of_known_functions() -> None:
    f = lambda x: cr.sin(x) * cr.exp(x)
    x = 0.3
    d1 = cr.grad(f)
    d2 = cr.grad(d1)
    d3 = cr.grad(d2)
    s, c, e = np.sin(x), np.cos(x), np.exp(x)
    assert d1(np.float64(x)).item() == pytest.approx(e * (s + c), rel=1e-12)
    assert d2(np.float64(x)).item() == pytest.approx(2 * e * c, rel=1e-12)
    assert d3(np.float64(x)).item() == pytest.approx(2 * e * (c - s), rel=1e-12)


@pytest.mark.parametrize(
    ("f", "derivs"),
    [
        (lambda x: x**5, [lambda x: 5 * x**4, lambda x: 20 * x**3, lambda x: 60 * x**2]),
        (lambda x: cr.log(x), [lambda x: 1 / x, lambda x: -1 / x**2, lambda x: 2 / x**3]),
        (
            lambda x: cr.sigmoid(x),
            [
                lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s),
                lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s),
                lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 6 * s + 6 * s * s),
            ],
        ),
        (
            lambda x: cr.tanh(x),
            [
                lambda x: 1 - np.tanh(x) ** 2,
                lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
                lambda x: -2 * (1 - np.tanh(x) ** 2) * (1 - 3 * np.tanh(x) ** 2),
            ],
        ),
    ],
)
def test_first_three_derivatives(f, derivs) -> None:
    x = np.float64(0.8)
    g = f
    for k, expected in enumerate(derivs, start=1):
        g = cr.grad(g)
        assert g(x).item() == pytest.approx(expected(x), rel=1e-10), f"order {k}"


def test_hessian_of_quadratic_form(rng) -> None:
    a = rng.standard_normal((4, 4))
    b = rng.standard_normal(4)
    f = lambda x: 0.5 * (x @ (cr.tensor(a) @ x)) + cr.tensor(b) @ x
    h = cr.hessian(f)(rng.standard_normal(4))
    np.testing.assert_allclose(h.data, 0.5 * (a + a.T), rtol=1e-12)


def test_hessian_of_logsumexp(rng) -> None:
    x = rng.standard_normal(5)
    h = cr.hessian(lambda v: cr.logsumexp(v))(x)
    p = np.exp(x - np.log(np.sum(np.exp(x))))
    np.testing.assert_allclose(h.data, np.diag(p) - np.outer(p, p), rtol=1e-10, atol=1e-14)


def test_jvp_matches_jacobian_times_tangent(rng) -> None:
    w = rng.standard_normal((3, 4))
    f = lambda x: cr.tanh(cr.tensor(w) @ x) * cr.sum(x * x)
    x, v = rng.standard_normal(4), rng.standard_normal(4)
    out, tangent = cr.jvp(f, (x,), (v,))
    jac = cr.jacobian(f)(x)
    np.testing.assert_allclose(tangent.data, jac.data @ v, rtol=1e-10)
    np.testing.assert_allclose(out.data, f(cr.tensor(x)).data)


def test_vjp_matches_jacobian_transpose(rng) -> None:
    f = lambda x, y: cr.sin(x) * y
    x, y, u = rng.standard_normal(3), rng.standard_normal(3), rng.standard_normal(3)
    _, f_vjp = cr.vjp(f, x, y)
    gx, gy = f_vjp(u)
    np.testing.assert_allclose(gx.data, u * np.cos(x) * y)
    np.testing.assert_allclose(gy.data, u * np.sin(x))
    gx2, _ = f_vjp(2 * u)  # vjp_fn may be called again
    np.testing.assert_allclose(gx2.data, 2 * gx.data)


def test_jacobian_shapes_and_argnums(rng) -> None:
    f = lambda a, b: a[:, None] * b[None, :]
    a, b = rng.standard_normal(2), rng.standard_normal(3)
    ja, jb = cr.jacobian(f, argnums=(0, 1))(a, b)
    assert ja.shape == (2, 3, 2) and jb.shape == (2, 3, 3)
    np.testing.assert_allclose(ja.data[1, 2, 1], b[2])


def test_value_and_grad_with_argnums_and_aux() -> None:
    def f(x, y):
        loss = x * x * y
        return loss, {"note": "aux"}

    (value, aux), (gx, gy) = cr.value_and_grad(f, argnums=(0, 1), has_aux=True)(3.0, 2.0)
    assert value.item() == 18 and aux == {"note": "aux"}
    assert gx.item() == 12 and gy.item() == 9
    assert not value.requires_grad and not gx.requires_grad


def test_inputs_can_be_numbers_arrays_or_tensors() -> None:
    g = cr.grad(lambda x: cr.sum(x * x))
    for x in (2.0, np.array([2.0]), cr.tensor([2.0])):
        assert np.asarray(g(x)).ravel()[0] == 4.0


def test_grad_of_closure_over_outer_variable_composes() -> None:
    """d/dy [d/dx (x*y)] = 1: the inner result must stay connected to the outer y."""
    assert cr.grad(lambda y: cr.grad(lambda x: x * y)(1.0))(2.0).item() == 1.0
    # mixed partials of x^2 y^3 at (1, 2): d2/dxdy = 6 x y^2 = 24
    f = lambda x, y: x**2 * y**3
    assert cr.grad(lambda y: cr.grad(f, 0)(1.0, y))(2.0).item() == 24.0


def test_grad_through_jvp_and_jvp_through_grad() -> None:
    cube = lambda x: x**3
    assert cr.grad(lambda x: cr.jvp(cube, (x,), (1.0,))[1])(2.0).item() == 12.0
    assert cr.jvp(cr.grad(cube), (2.0,), (1.0,))[1].item() == 12.0


def test_grad_of_function_not_depending_on_input_is_zero() -> None:
    assert cr.grad(lambda x, y: y * 2.0)(1.0, 3.0).item() == 0.0


def test_transforms_do_not_touch_leaf_grads() -> None:
    w = cr.tensor(3.0, requires_grad=True)
    cr.grad(lambda x: x * w)(2.0)
    assert w.grad is None


def test_transforms_work_under_no_grad() -> None:
    with cr.no_grad():
        assert cr.grad(lambda x: x * x)(3.0).item() == 6.0


def test_transform_errors() -> None:
    with pytest.raises(ValueError, match="argnums 2 is out of range"):
        cr.grad(lambda x: x, argnums=2)(1.0)
    with pytest.raises(ValueError, match="cotangent has shape"):
        cr.vjp(lambda x: x * 2, cr.tensor([1.0, 2.0]))[1](cr.tensor([1.0]))
    with pytest.raises(ValueError, match="tangent 0 has shape"):
        cr.jvp(lambda x: x, (cr.tensor([1.0, 2.0]),), (cr.tensor([1.0]),))
    with pytest.raises(TypeError, match="f must return a Tensor"):
        cr.grad(lambda x: "nope")(1.0)
