"""Engine semantics: broadcasting, multiple paths, graph freeing, in-place safety, stability,
conventions at kinks, dtypes, and the errors bad input gets."""

from __future__ import annotations

import gc
import threading
import weakref

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F


def leaf(x, dtype=np.float64):
    return cr.tensor(np.asarray(x, dtype=dtype), requires_grad=True)


# --------------------------------------------------------------------------- chain rule paths


def test_broadcast_operand_gets_gradient_of_its_own_shape() -> None:
    a, b = leaf(np.ones((2, 3))), leaf(np.arange(3.0))
    c = leaf([[2.0], [3.0]])
    cr.sum(a * b + c).backward()
    assert b.grad.shape == (3,) and c.grad.shape == (2, 1)
    np.testing.assert_allclose(b.grad.data, [2, 2, 2])
    np.testing.assert_allclose(c.grad.data, [[3], [3]])


def test_diamond_graph_sums_both_paths() -> None:
    """y = x*x + sin(x): dy/dx = 2x + cos x, one term per path (seed 001, section 2)."""
    x = leaf(0.7)
    y = x * x + cr.sin(x)
    y.backward()
    assert x.grad.item() == pytest.approx(2 * 0.7 + np.cos(0.7), rel=1e-15)


def test_value_used_many_times_accumulates() -> None:
    x = leaf(2.0)
    y = x
    for _ in range(10):
        y = y + x  # 11 x in total
    y.backward()
    assert x.grad.item() == 11


def test_grads_accumulate_across_backward_calls_until_zeroed() -> None:
    x = leaf(3.0)
    (x * x).backward()
    (x * x).backward()
    assert x.grad.item() == 12
    x.zero_grad()
    assert x.grad is None


def test_shared_gradient_arrays_are_not_aliased() -> None:
    """add hands the same gradient to both inputs; mutating one .grad must not touch the other."""
    x, y = leaf([1.0, 2.0]), leaf([3.0, 4.0])
    seed = np.array([1.0, 1.0])
    (x + y).backward(seed)
    x.grad.data *= 10
    np.testing.assert_array_equal(y.grad.data, [1, 1])
    np.testing.assert_array_equal(seed, [1, 1])


def test_duplicate_indices_accumulate() -> None:
    x = leaf([1.0, 2.0, 3.0])
    cr.sum(x[[0, 0, 2, 0]]).backward()
    np.testing.assert_array_equal(x.grad.data, [3, 0, 1])


def test_boolean_and_slice_indexing_gradients() -> None:
    x = leaf(np.arange(6.0).reshape(2, 3))
    cr.sum(x[x.data > 2] * 2).backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 0, 0], [2, 2, 2]])
    x.zero_grad()
    cr.sum(x[:, 1:]).backward()
    np.testing.assert_array_equal(x.grad.data, [[0, 1, 1], [0, 1, 1]])


def test_retain_grad_keeps_intermediate_gradients() -> None:
    x = leaf(2.0)
    h = x * 3
    h.retain_grad()
    (h * h).backward()
    assert h.grad.item() == 12 and x.grad.item() == 36


# --------------------------------------------------------------------------- graph lifetime


def test_deep_chain_of_a_million_ops_does_not_recurse() -> None:
    x = cr.tensor(np.float64(1.0), requires_grad=True)
    y = x
    for _ in range(1_000_000):
        y = y + 1.0
    y.backward()
    assert x.grad.item() == 1.0
    del y  # deallocating the freed chain must not overflow the C stack either


def test_backward_frees_the_graph() -> None:
    x = leaf(np.ones(1000))
    h = cr.exp(x)
    ref = weakref.ref(h)
    y = cr.sum(h * 2)
    del h
    gc.collect()
    assert ref() is not None  # kept alive by the graph of y
    y.backward()
    gc.collect()
    assert ref() is None  # backward dropped the graph's references


def test_second_backward_on_freed_graph_raises_unless_retained() -> None:
    x = leaf(2.0)
    y = x * x
    y.backward()
    with pytest.raises(RuntimeError, match="freed by an earlier backward"):
        y.backward()
    z = x * x
    z.backward(retain_graph=True)
    z.backward()
    assert x.grad.item() == 4 + 4 + 4


def test_create_graph_gives_differentiable_gradients() -> None:
    x = leaf(2.0)
    y = x**3
    y.backward(create_graph=True)
    g = x.grad  # 3x^2 = 12, itself a function of x
    x.zero_grad()
    g.backward()
    assert x.grad.item() == pytest.approx(12.0)  # 6x


def test_no_grad_records_nothing_and_is_thread_local() -> None:
    x = leaf(1.0)
    with cr.no_grad():
        assert not (x * 2).requires_grad
        seen = []
        t = threading.Thread(target=lambda: seen.append((x * 2).requires_grad))
        t.start()
        t.join()
        assert seen == [True]  # another thread still records
    assert (x * 2).requires_grad

    @cr.no_grad()
    def f(v):
        return v * 2

    assert not f(x).requires_grad


# --------------------------------------------------------------------------- in-place safety


def test_inplace_assignment_on_leaf_requiring_grad_is_refused() -> None:
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="in-place"):
        x[0] = 5.0
    with cr.no_grad():
        x[0] = 5.0  # allowed outside the graph, as an optimizer update
    assert x.data[0] == 5.0


def test_modifying_a_saved_constant_is_caught_at_backward() -> None:
    w = leaf([1.0, 2.0])
    c = cr.tensor([3.0, 4.0], dtype=np.float64)
    y = cr.sum(w * c)
    c[0] = 100.0
    with pytest.raises(RuntimeError, match="modified in place"):
        y.backward()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.mul_(2),  # an in-place op on the alias
        lambda d: d.__setitem__(0, 5.0),  # item assignment on the alias
    ],
    ids=["mul_", "setitem"],
)
@pytest.mark.parametrize(
    "make_alias",
    [lambda y: y.detach(), cr.Tensor],  # Tensor(y) shares y's array, so its counter too
    ids=["detach", "Tensor"],
)
def test_a_change_through_a_detached_alias_is_caught_at_backward(change, make_alias) -> None:
    x = leaf([1.0, 2.0])
    y = cr.exp(x)  # exp's vjp reads its own output y
    alias = make_alias(y)  # shares y's memory and, as in PyTorch, its version counter
    with cr.no_grad():
        change(alias)
    assert y._version == alias._version == 1
    with pytest.raises(RuntimeError, match=r"exp: one of the tensors .* modified in place"):
        y.sum().backward()


def test_a_change_to_an_unrelated_tensor_leaves_the_graph_alone() -> None:
    x, other = leaf([1.0, 2.0]), cr.tensor([0.0])
    y = cr.sum(x * x)
    other[0] = 1.0  # the in-place clock moves on, but nothing y's graph saved changed
    x.detach()  # a detach without a change counts for nothing
    y.backward()
    np.testing.assert_allclose(x.grad.data, [2.0, 4.0])


def test_a_graph_built_after_an_in_place_change_is_not_refused() -> None:
    w = leaf([1.0, 2.0])
    with cr.no_grad():
        w[0] = 3.0  # an optimizer's update between two steps
    y = cr.sum(w * w)
    y.backward()
    np.testing.assert_allclose(w.grad.data, [6.0, 4.0])


@pytest.mark.parametrize(
    "convert",
    [np.asarray, np.array, lambda t: np.dot(t, np.ones(2)), lambda t: np.linalg.norm(t)],
    ids=["asarray", "array", "dot", "linalg.norm"],
)
def test_numpy_refuses_a_tensor_that_requires_grad(convert) -> None:
    """NumPy would turn it into an array cut from the graph: its gradient would be lost."""
    x = leaf([3.0, 4.0])
    with pytest.raises(RuntimeError, match=r"Can't call numpy\(\) on Tensor that requires grad"):
        convert(x)
    np.testing.assert_allclose(convert(x.detach()), convert(np.array([3.0, 4.0])))
    np.testing.assert_allclose(convert(cr.sin(x).detach()), convert(np.sin([3.0, 4.0])))


def test_numpy_ufuncs_refuse_tensors() -> None:
    # ufuncs never see a Tensor's array (Tensor.__array_ufunc__ is None): np.sin(x) cannot
    # silently detach, and `ndarray + Tensor` goes to Tensor.__radd__
    with pytest.raises(TypeError, match="does not support ufuncs"):
        np.sin(leaf([1.0]))
    assert (np.ones(1) + leaf([1.0])).requires_grad


# --------------------------------------------------------------------------- stability


def test_sigmoid_extremes_are_exact_and_warning_free() -> None:
    x = leaf([-1000.0, 0.0, 1000.0])
    s = cr.sigmoid(x)
    np.testing.assert_array_equal(s.data, [0.0, 0.5, 1.0])
    cr.sum(s).backward()
    np.testing.assert_array_equal(x.grad.data, [0.0, 0.25, 0.0])


def test_softmax_and_log_softmax_of_huge_logits() -> None:
    z = leaf([[1e4, 0.0, -1e4]])
    p = cr.softmax(z)
    np.testing.assert_allclose(p.data, [[1, 0, 0]], atol=0)
    ls = cr.log_softmax(z)
    np.testing.assert_allclose(ls.data, [[0, -1e4, -2e4]])
    cr.sum(ls[:, 1]).backward()
    np.testing.assert_allclose(z.grad.data, [[-1, 1, 0]], atol=1e-12)


def test_cross_entropy_confident_wrong_answer_is_finite() -> None:
    z = leaf([[1000.0, -1000.0]])
    loss = F.cross_entropy(z, np.array([1]))
    assert loss.item() == pytest.approx(2000.0)
    loss.backward()
    np.testing.assert_allclose(z.grad.data, [[1.0, -1.0]])


def test_cross_entropy_gradient_is_softmax_minus_onehot() -> None:
    rng = np.random.default_rng(0)
    z = leaf(rng.standard_normal((5, 4)))
    y = np.array([0, 3, 1, 1, 2])
    F.cross_entropy(z, y).backward()
    onehot = np.eye(4)[y]
    expected = (cr.softmax(z).data - onehot) / 5
    np.testing.assert_allclose(z.grad.data, expected, rtol=1e-12, atol=1e-15)


def test_bce_with_logits_is_stable_and_its_gradient_is_sigmoid_minus_target() -> None:
    x = leaf([-800.0, 0.3, 800.0])
    t = np.array([1.0, 0.0, 0.0])
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="sum")
    assert loss.item() == pytest.approx(800 + np.log1p(np.exp(0.3)) + 800)
    loss.backward()
    np.testing.assert_allclose(x.grad.data, [0.0 - 1.0, 1 / (1 + np.exp(-0.3)), 1.0])


def test_logsumexp_of_all_minus_inf_row() -> None:
    out = cr.logsumexp(cr.tensor([[-np.inf, -np.inf], [0.0, 0.0]]), axis=1)
    assert out.data[0] == -np.inf and out.data[1] == pytest.approx(np.log(2))


# --------------------------------------------------------------------------- kinks


@pytest.mark.parametrize(
    ("f", "expected"),
    [
        (cr.relu, 0.0),  # relu'(0) := 0, as the seed and PyTorch
        (cr.abs, 0.0),  # abs'(0) := 0, as PyTorch
        (lambda x: cr.leaky_relu(x, 0.01), 0.01),  # the seed: alpha for x <= 0
        (lambda x: cr.maximum(x, cr.tensor(0.0, dtype=np.float64)), 0.5),  # ties split
        (lambda x: cr.clip(x, 0.0, 1.0), 1.0),  # bounds included, as torch.clamp
    ],
)
def test_conventions_at_kinks(f, expected) -> None:
    x = leaf(0.0)
    f(x).backward()
    assert x.grad.item() == expected


def test_sqrt_at_zero_gives_inf_like_pytorch() -> None:
    x = leaf([0.0, 4.0])
    cr.sum(cr.sqrt(x)).backward()
    assert x.grad.data[0] == np.inf and x.grad.data[1] == 0.25


def test_power_with_zero_base_has_finite_exponent_gradient() -> None:
    x, y = leaf(0.0), leaf(2.0)
    (x**y).backward()
    assert x.grad.item() == 0.0 and y.grad.item() == 0.0


# --------------------------------------------------------------------------- dtypes


def test_default_float32_and_float64_preserved() -> None:
    assert cr.tensor(1.5).dtype == np.float32
    assert cr.tensor([1, 2]).dtype == np.int64
    assert cr.tensor(np.zeros(2)).dtype == np.float64
    x32 = cr.tensor([1.0, 2.0], requires_grad=True)
    y = 2.5 * x32 + 1 - x32 / 3.0
    assert y.dtype == np.float32  # Python scalars never upcast
    cr.sum(y).backward()
    assert x32.grad.dtype == np.float32


def test_tensor_interoperates_with_numpy() -> None:
    t = cr.tensor([1.0, 2.0])
    assert isinstance(np.arange(2.0) + t, cr.Tensor)
    np.testing.assert_array_equal(np.asarray(t), [1.0, 2.0])
    assert (t > 1.5).dtype == np.bool_ and not (t > 1.5).requires_grad


def test_tensor_copies_arrays_from_numpy_shares() -> None:
    a = np.zeros(2)
    t, s = cr.tensor(a), cr.from_numpy(a)
    a[0] = 1
    assert t.data[0] == 0 and s.data[0] == 1


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("thunk", "error", "message"),
    [
        (
            lambda: cr.tensor(np.ones((3, 4))) @ cr.tensor(np.ones(5)),
            ValueError,
            r"matmul: shapes \(3, 4\) and \(5,\) are not aligned",
        ),
        (
            lambda: cr.tensor(np.ones((2, 3))) + cr.tensor(np.ones(4)),
            ValueError,
            r"add: inputs of shapes \(2, 3\), \(4,\)",
        ),
        (lambda: cr.tensor([1, 2], requires_grad=True), TypeError, "dtype int64"),
        (lambda: (leaf([1.0, 2.0]) * 2).backward(), ValueError, r"shape \(2,\)"),
        (lambda: cr.tensor(1.0).backward(), RuntimeError, "does not require grad"),
        (
            lambda: cr.grad(lambda x: x * 2)(cr.tensor([1.0, 2.0])),
            ValueError,
            "must return a scalar",
        ),
        (lambda: cr.grad(lambda i: i * 1.0)(3), TypeError, "argument 0 has dtype int64"),
        (lambda: leaf([1.0, 2.0])[leaf(0.0)], TypeError, "indices are not differentiable"),
        (lambda: cr.tensor(np.ones(3))[5], IndexError, "getitem"),
        (
            lambda: F.cross_entropy(cr.tensor(np.zeros((2, 3))), [0, 3]),
            ValueError,
            "target label 3 is out of range for 3 classes",
        ),
        (
            lambda: F.mse_loss(cr.tensor(np.zeros((3, 1))), cr.tensor(np.zeros(3))),
            ValueError,
            r"input shape \(3, 1\) and target shape \(3,\)",
        ),
        (
            lambda: F.mse_loss(cr.tensor([1.0]), cr.tensor([1.0]), reduction="avg"),
            ValueError,
            "reduction must be one of",
        ),
        (lambda: cr.stack([cr.tensor([1.0]), cr.tensor([1.0, 2.0])]), ValueError, "same shape"),
        (lambda: leaf(1.0).backward(np.ones(2)), ValueError, "gradient has shape"),
    ],
)
def test_bad_input_gets_a_clear_error(thunk, error, message) -> None:
    with pytest.raises(error, match=message):
        thunk()


def test_detect_anomaly_names_the_op_in_forward_and_backward() -> None:
    x = leaf([-1.0, 1.0])
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"^log: forward"):
        cr.log(x)
    y = leaf([0.0, 1.0])
    with cr.detect_anomaly():
        out = cr.sum(cr.sqrt(y))
        with pytest.raises(FloatingPointError, match=r"^sqrt: backward"):
            out.backward()
