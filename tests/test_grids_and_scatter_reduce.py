"""meshgrid, take_along_dim, scatter_reduce and Tensor.view(dtype) against PyTorch (skipped
when torch is absent): values and gradients, ties and zeros included. The op table's own
tests (gradcheck to order 2, vmap, float32) cover the entries without torch."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.ops import SCATTER_REDUCTIONS

torch = pytest.importorskip("torch")


@st.composite
def _scatter_problems(draw: Any) -> dict[str, Any]:
    """x, src and index for torch.scatter_reduce along `dim`, with small integer values so
    that ties (amax/amin) and zeros (prod) are common, and repeated indices."""
    dim = draw(st.sampled_from([0, 1]))
    idx_shape = [draw(st.integers(1, 3)) for _ in range(2)]
    # src no larger than index: torch's own backward returns a gradient of the wrong shape
    # for a larger src (ScatterReduceBackward0, torch 2.13); chainrule's is zero there
    src_shape = idx_shape
    x_shape = [n + draw(st.integers(0, 1)) for n in idx_shape]
    x_shape[dim] = draw(st.integers(1, 4))
    values = st.integers(-2, 2).map(float)
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    return {
        "dim": dim,
        "x": np.array(draw(st.lists(values, min_size=4 * 4, max_size=16)))[
            : np.prod(x_shape)
        ].reshape(x_shape),
        "src": rng.integers(-2, 3, size=src_shape).astype(float),
        "index": rng.integers(0, x_shape[dim], size=idx_shape),
        "g": rng.standard_normal(x_shape),
        "reduce": draw(st.sampled_from(SCATTER_REDUCTIONS)),
        "include_self": draw(st.booleans()),
    }


@settings(max_examples=150, deadline=None)
@given(p=_scatter_problems())
def test_scatter_reduce_matches_torch_values_and_gradients(p: dict[str, Any]) -> None:
    kw = {"reduce": p["reduce"], "include_self": p["include_self"]}
    x, s = cr.tensor(p["x"], requires_grad=True), cr.tensor(p["src"], requires_grad=True)
    out = cr.scatter_reduce(x, p["dim"], p["index"], s, **kw)
    cr.sum(out * cr.tensor(p["g"])).backward()
    tx = torch.tensor(p["x"], requires_grad=True)
    ts = torch.tensor(p["src"], requires_grad=True)
    want = torch.scatter_reduce(tx, p["dim"], torch.tensor(p["index"]), ts, **kw)
    (want * torch.tensor(p["g"])).sum().backward()
    np.testing.assert_allclose(out.data, want.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad.data, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(s.grad.data, ts.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("reduce", SCATTER_REDUCTIONS)
def test_scatter_reduce_second_derivative_matches_torch(reduce: str, rng) -> None:
    """d/dx of <g, d out/dsrc>: the vjps are themselves differentiable (no ties, no zeros)."""
    x, src = rng.uniform(0.5, 2, (3, 4)), rng.uniform(0.5, 2, (3, 3))
    index = np.array([[0, 0, 2], [3, 1, 3], [1, 1, 1]])

    def ours(a: Any, b: Any) -> Any:
        return cr.sum(cr.grad(lambda b: cr.sum(cr.scatter_reduce(a, 1, index, b, reduce) ** 2))(b))

    def theirs(a: Any, b: Any) -> Any:
        f = lambda b: (torch.scatter_reduce(a, 1, torch.tensor(index), b, reduce) ** 2).sum()
        return torch.func.grad(f)(b).sum()

    got = cr.grad(ours)(cr.tensor(x), cr.tensor(src))
    want = torch.func.grad(theirs)(torch.tensor(x), torch.tensor(src))
    np.testing.assert_allclose(got.data, want.numpy(), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, [[0]], [[1.0]], "max"), "reduce must be one of sum, prod, mean, amax, amin"),
        ((0, [[5]], [[1.0]], "sum"), "an index is out of range for dimension 0 of size 2"),
        ((1, [[0, 1, 0]], [[1.0, 2.0]], "sum"), r"index of shape \(1, 3\) is larger than src"),
        ((1, [0], [[1.0]], "sum"), r"index \(1,\) and src \(1, 1\) need input \(2, 2\)'s"),
        ((0, [[0]], np.ones((1, 1), np.float32), "sum"), "input is float64 but src is float32"),
    ],
)
def test_scatter_reduce_refuses_with_one_line(args: tuple, message: str) -> None:
    dim, index, src, reduce = args
    with pytest.raises((ValueError, IndexError, TypeError), match=message) as info:
        cr.scatter_reduce(cr.zeros((2, 2), dtype="float64"), dim, index, np.asarray(src), reduce)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("indexing", ["ij", "xy"])
@pytest.mark.parametrize("sizes", [(3,), (3, 2), (2, 4, 3)], ids=str)
def test_meshgrid_matches_torch_values_and_gradients(sizes, indexing: str, rng) -> None:
    xs = [rng.standard_normal(n) for n in sizes]
    ours = [cr.tensor(a, requires_grad=True) for a in xs]
    theirs = [torch.tensor(a, requires_grad=True) for a in xs]
    got = cr.meshgrid(*ours, indexing=indexing)
    want = torch.meshgrid(*theirs, indexing=indexing)
    gs = [rng.standard_normal(tuple(w.shape)) for w in want]
    cr.sum(cr.stack([cr.sum(a * cr.tensor(g)) for a, g in zip(got, gs)])).backward()
    sum((w * torch.tensor(g)).sum() for w, g in zip(want, gs)).backward()
    for a, w in zip(got, want):
        np.testing.assert_allclose(a.data, w.detach().numpy(), rtol=0, atol=0)
    for a, t in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, t.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_meshgrid_spellings() -> None:
    """torch's list argument, NumPy's default 'xy', no inputs, and a bad indexing named."""
    v, u = cr.tensor([1.0, 2.0, 3.0]), cr.tensor([4.0, 5.0])
    listed = cr.meshgrid([v, u], indexing="ij")
    assert [g.shape for g in listed] == [(3, 2), (3, 2)]
    assert [g.shape for g in cr.meshgrid(v, u)] == [g.shape for g in np.meshgrid(v.data, u.data)]
    assert cr.meshgrid() == []
    with pytest.raises(ValueError, match="meshgrid: indexing must be 'xy' or 'ij', got 'yx'"):
        cr.meshgrid(v, u, indexing="yx")


@pytest.mark.parametrize(
    ("shape", "index", "dim"),
    [
        ((3, 4), [[0, 3], [1, 1], [2, 0]], 1),
        ((3, 4), [[2, 0, 1, 1]], 0),  # broadcast along the other axis
        ((3, 4), [11, 0, 5, 5], None),  # flattened
        ((2, 3, 2), [[[1], [0], [1]]], -1),
    ],
)
def test_take_along_dim_matches_torch(shape, index, dim, rng) -> None:
    x = rng.standard_normal(shape)
    g_idx = np.array(index)
    ours = cr.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    got = cr.take_along_dim(ours, g_idx, dim)
    want = torch.take_along_dim(theirs, torch.tensor(g_idx), dim)
    g = rng.standard_normal(tuple(want.shape))
    cr.sum(got * cr.tensor(g)).backward()
    (want * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(got.data, want.detach().numpy())
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12)


@pytest.mark.parametrize(
    ("shape", "source", "target"),
    [
        ((2, 4), "float32", "int32"),
        ((2, 4), "float32", "uint8"),
        ((2, 4), "float32", "float64"),
        ((3, 2), "float64", "float32"),
        ((5,), "int64", "int16"),
        ((), "float32", "int32"),
        ((3, 3), "float32", "float64"),  # 3 x 4 bytes is no multiple of 8: both refuse
        ((), "float32", "float64"),  # a 0-d tensor cannot change its item size: both refuse
    ],
)
def test_view_dtype_matches_torch(shape, source: str, target: str, rng) -> None:
    x = (rng.standard_normal(shape) * 100).astype(source)
    try:
        want = torch.tensor(x).view(getattr(torch, target)).numpy()
    except RuntimeError:
        with pytest.raises(ValueError, match="view: "):
            cr.tensor(x).view(np.dtype(target))
        return
    got = cr.tensor(x).view(np.dtype(target))
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got.data, want)
    assert not got.requires_grad


def test_view_dtype_refuses_a_tensor_that_requires_grad_and_view_shape_still_works() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(TypeError, match="view: reading a tensor that requires grad as int32 is"):
        w.view(np.int32)
    assert w.detach().view("int32").dtype == np.int32
    assert w.view(np.float32) is not w and w.view("float32").requires_grad  # its own dtype
    assert w.view(2, 1).shape == (2, 1) and w.view(-1).shape == (2,) and w.view((1, 2)).ndim == 2
    with cr.no_grad():
        assert w.view(np.int32).dtype == np.int32
