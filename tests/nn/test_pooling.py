"""Pooling and resampling layers against PyTorch, one case per option combination, and the
functional forms gradchecked to order 2 (all are composed from op-table primitives)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

# (layer name, constructor arguments, input shape); the same arguments build torch's layer
CASES = [
    ("MaxPool1d", (2,), {}, (2, 3, 9)),
    ("MaxPool1d", (3,), {"stride": 2, "padding": 1, "dilation": 1}, (2, 2, 10)),
    ("MaxPool1d", (3,), {"stride": 2, "dilation": 2, "ceil_mode": True}, (1, 2, 12)),
    ("MaxPool1d", (2,), {"stride": 1}, (3, 7)),  # unbatched
    ("MaxPool2d", (2,), {}, (2, 3, 6, 7)),
    ("MaxPool2d", ((3, 2),), {"stride": (2, 1), "padding": (1, 1)}, (1, 2, 7, 5)),
    ("MaxPool2d", (3,), {"stride": 2, "ceil_mode": True, "dilation": (1, 2)}, (2, 1, 8, 9)),
    ("AvgPool1d", (2,), {}, (2, 3, 9)),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1}, (2, 2, 10)),
    ("AvgPool1d", (3,), {"stride": 2, "padding": 1, "count_include_pad": False}, (1, 2, 8)),
    ("AvgPool1d", (4,), {"stride": 3, "padding": 2, "ceil_mode": True}, (2, 1, 11)),
    ("AvgPool2d", (2,), {}, (2, 3, 6, 7)),
    ("AvgPool2d", (3,), {"stride": 2, "padding": 1, "ceil_mode": True}, (1, 2, 8, 7)),
    ("AvgPool2d", ((2, 3),), {"padding": (1, 1), "count_include_pad": False}, (2, 1, 5, 6)),
    ("AvgPool2d", (2,), {"divisor_override": 3}, (2, 5, 5)),  # unbatched
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 10)),
    ("AdaptiveAvgPool1d", (7,), {}, (1, 2, 5)),
    ("AdaptiveAvgPool2d", ((3, 2),), {}, (2, 2, 7, 5)),
    ("AdaptiveAvgPool2d", (1,), {}, (2, 4, 3, 3)),
    ("AdaptiveAvgPool2d", ((None, 3),), {}, (2, 5, 4)),  # unbatched, None keeps H
    ("Upsample", (), {"scale_factor": 2}, (2, 3, 5)),
    ("Upsample", (), {"size": 7}, (1, 2, 5)),
    ("Upsample", (), {"size": 3}, (1, 2, 8)),
    ("Upsample", (), {"scale_factor": 2.5, "mode": "linear"}, (2, 2, 4)),
    ("Upsample", (), {"size": 9, "mode": "linear", "align_corners": True}, (1, 2, 5)),
    ("Upsample", (), {"size": 3, "mode": "linear"}, (1, 1, 8)),
    ("Upsample", (), {"scale_factor": (2, 3)}, (1, 2, 3, 2)),
    ("Upsample", (), {"size": (5, 4), "mode": "bilinear"}, (2, 1, 3, 3)),
    (
        "Upsample",
        (),
        {"scale_factor": 1.5, "mode": "bilinear", "align_corners": True},
        (1, 2, 4, 4),
    ),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), CASES, ids=lambda v: str(v))
def test_pooling_layer_matches_torch(name, args, kwargs, shape, rng, same_as_torch) -> None:
    torch = pytest.importorskip("torch")
    layer = getattr(nn, name)(*args, **kwargs)
    same_as_torch(layer, getattr(torch.nn, name)(*args, **kwargs), rng.standard_normal(shape))


def test_max_pool_indices_match_torch(rng) -> None:
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 7, 6))
    y, idx = F.max_pool2d(cr.tensor(x), 3, stride=2, padding=1, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool2d(
        torch.tensor(x), 3, stride=2, padding=1, return_indices=True
    )
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    np.testing.assert_array_equal(y.data, ty.numpy())


def test_max_pool_tie_gives_the_gradient_to_the_first_maximum() -> None:
    x = cr.tensor([[[2.0, 2.0, 1.0, 1.0]]], requires_grad=True)
    F.max_pool1d(x, 2).sum().backward()
    assert x.grad.tolist() == [[[1.0, 0.0, 1.0, 0.0]]]  # torch's rule: one winner per window


@pytest.mark.parametrize("nan_at", [None, (0, 1, 0, 0), (1, 0, 3, 4)])
@pytest.mark.parametrize(("k", "stride", "padding", "dilation"), [(2, 2, 0, 1), (3, 2, 1, 2)])
def test_max_pool_ties_and_nan_match_torch(k, stride, padding, dilation, nan_at, rng) -> None:
    """Few distinct values make ties in most windows (the first maximum wins, also for the
    gradient); a NaN wins its windows, as in torch."""
    torch = pytest.importorskip("torch")
    x = np.round(rng.standard_normal((2, 2, 7, 8)))
    if nan_at:
        x[nan_at] = np.nan
    args = (k, stride, padding, dilation)
    xt = cr.tensor(x, requires_grad=True)
    y, idx = F.max_pool2d(xt, *args, return_indices=True)
    tx = torch.tensor(x, requires_grad=True)
    ty, tidx = torch.nn.functional.max_pool2d(tx, *args, return_indices=True)
    g = rng.standard_normal(y.shape)
    y.backward(g)
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    np.testing.assert_array_equal(xt.grad.data, tx.grad.numpy())


@pytest.mark.parametrize(("k", "stride", "padding"), [(3, 2, 1), (2, 2, 1), (3, 1, 1)])
def test_max_pool_of_minus_infinity_never_picks_the_padding(k, stride, padding) -> None:
    """A window whose real values are all -inf, like its padding, takes its first real
    element (index and gradient), as torch does."""
    torch = pytest.importorskip("torch")
    x = np.full((1, 2, 5), -np.inf)
    x[0, 0, 3] = 1.0
    xt, tx = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, idx = F.max_pool1d(xt, k, stride, padding, return_indices=True)
    ty, tidx = torch.nn.functional.max_pool1d(tx, k, stride, padding, return_indices=True)
    y.backward(cr.ones(*y.shape))
    ty.backward(torch.ones_like(ty))
    np.testing.assert_array_equal(idx.data, tidx.numpy())
    np.testing.assert_array_equal(xt.grad.data, tx.grad.numpy())


def _max_pool_cases() -> list:
    from chainrule import ops

    return ops.max_pool.cases(np.random.default_rng(5), np.float64, ops.max_pool)


@pytest.mark.parametrize("case", _max_pool_cases(), ids=lambda c: str(c[1]))
@pytest.mark.parametrize("g_edge", [None, np.inf, np.nan])
def test_max_pool_gradient_forms_agree(case, g_edge) -> None:
    """max_pool's vjp on arrays (a product per tap slab without overlap, else a scatter) and on
    Tensors (a scatter, differentiable again) put g at the same places, zeros elsewhere, also
    when g holds inf or NaN (no inf * 0 beside the maximum) and when x has ties."""
    from chainrule import ops

    (x,), p = case
    x = np.round(x)  # ties in most windows
    y = ops._max_pool_fwd(x, **p)
    g = np.random.default_rng(6).standard_normal(y.shape)
    if g_edge is not None:
        g.flat[::3] = g_edge
    fast = ops.max_pool.vjps[0](g, y, x, ops.NUMPY_NS, **p)
    graph = ops.max_pool.vjps[0](cr.tensor(g), cr.tensor(y), cr.tensor(x), ops.TENSOR_NS, **p)
    np.testing.assert_array_equal(fast, graph.data)
    # NaN exactly where a NaN of g lands (inf * 0 would add some beside the maxima)
    at = ops._max_pool_index(x, y, p["kernel"], p["stride"], p["padding"], p["dilation"])
    lands = np.zeros(x.size, bool)
    lands[at[np.isnan(g)]] = True
    np.testing.assert_array_equal(np.isnan(fast).reshape(-1), lands)


FUNCTIONAL = [
    (lambda x: F.max_pool1d(x, 3, stride=2, padding=1), (2, 2, 9)),
    (lambda x: F.max_pool2d(x, 2, ceil_mode=True), (1, 2, 5, 5)),
    (lambda x: F.avg_pool1d(x, 3, stride=2, padding=1, count_include_pad=False), (2, 2, 9)),
    (lambda x: F.avg_pool2d(x, (2, 3), ceil_mode=True), (1, 2, 5, 5)),
    (lambda x: F.adaptive_avg_pool1d(x, 3), (2, 2, 7)),
    (lambda x: F.adaptive_avg_pool2d(x, (2, 3)), (1, 2, 5, 4)),
    (lambda x: F.interpolate(x, size=7, mode="linear"), (2, 2, 4)),
    (lambda x: F.interpolate(x, scale_factor=2, mode="bilinear"), (1, 1, 3, 3)),
    (lambda x: F.interpolate(x, scale_factor=(2, 1)), (1, 1, 3, 3)),
    (lambda x: F.interpolate(x, size=(3, 2, 4), mode="trilinear"), (1, 1, 2, 3, 3)),
    (lambda x: F.interpolate(x, size=(5, 2), mode="nearest-exact"), (1, 1, 3, 3)),
    (lambda x: F.max_pool3d(x, 2, padding=1), (1, 1, 3, 3, 2)),
    (lambda x: F.avg_pool3d(x, (2, 2, 2), count_include_pad=False, padding=1), (1, 1, 3, 3, 2)),
    (lambda x: F.max_unpool2d(*F.max_pool2d(x, 2, return_indices=True), 2), (1, 2, 4, 3)),
]

# the functions with no layer above, each against torch.nn.functional's own (name, args, shape)
TORCH_FUNCTIONAL = [
    ("interpolate", {"size": (4, 3, 5), "mode": "trilinear"}, (2, 1, 2, 3, 3)),
    (
        "interpolate",
        {"size": (3, 7, 2), "mode": "trilinear", "align_corners": True},
        (1, 2, 4, 2, 3),
    ),
    ("interpolate", {"size": 11, "mode": "nearest-exact"}, (2, 2, 7)),
    ("interpolate", {"size": (10, 3), "mode": "nearest-exact"}, (1, 2, 7, 9)),
    ("max_pool3d", {"kernel_size": (2, 3, 2), "padding": 1, "stride": 2}, (2, 2, 5, 6, 4)),
    ("avg_pool3d", {"kernel_size": 2, "ceil_mode": True}, (1, 2, 5, 4, 3)),
]


@pytest.mark.parametrize(("name", "kwargs", "shape"), TORCH_FUNCTIONAL, ids=str)
def test_functional_matches_torch(name, kwargs, shape, rng) -> None:
    torch = pytest.importorskip("torch")
    x = rng.standard_normal(shape)
    ours, theirs = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    y, ty = getattr(F, name)(ours, **kwargs), getattr(torch.nn.functional, name)(theirs, **kwargs)
    g = rng.standard_normal(ty.shape)
    y.backward(cr.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.grad.data, theirs.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_max_unpool_matches_torch(rng) -> None:
    """Values back where max_pool took them (output_size given as torch's (N, C, H, W) too)."""
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 3, 9, 8))
    kw = {"kernel_size": 3, "stride": (3, 2), "padding": 1}
    y = F.max_unpool2d(*F.max_pool2d(cr.tensor(x), return_indices=True, **kw), **kw,
                       output_size=(2, 3, 9, 8))  # fmt: skip
    t = torch.nn.functional
    ty = t.max_unpool2d(*t.max_pool2d(torch.tensor(x), return_indices=True, **kw), **kw,
                        output_size=(9, 8))  # fmt: skip
    np.testing.assert_array_equal(y.data, ty.numpy())


def test_integer_interpolation_rounds_to_the_dtype() -> None:
    x = cr.tensor(np.array([[[0, 3]]], dtype=np.uint8))
    y = F.interpolate(x, size=4, mode="linear", align_corners=True)
    assert y.dtype == np.uint8 and y.tolist() == [[[0, 1, 2, 3]]]  # 1.0, 2.0 exactly


@pytest.mark.parametrize(("f", "shape"), FUNCTIONAL)
def test_functional_pooling_gradcheck_order_2(f, shape, rng) -> None:
    assert cr.gradcheck(f, [rng.standard_normal(shape)], order=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: F.max_pool1d(cr.ones(1, 1, 5), 2, padding=2), "at most half the kernel"),
        (lambda: F.avg_pool2d(cr.ones(1, 1, 2, 2), 3), "smaller than kernel"),
        (lambda: F.max_pool2d(cr.ones(5), 2), "4-D .* or 3-D unbatched"),
        (lambda: F.interpolate(cr.ones(1, 1, 4), size=3, mode="bilinear"), "'bilinear' for 4-D"),
        (lambda: F.interpolate(cr.ones(1, 1, 4)), "exactly one of size and scale_factor"),
        (
            lambda: F.interpolate(cr.ones(1, 1, 4, 4), size=2, mode="trilinear"),
            "'trilinear' for 5-D",
        ),
        (lambda: F.max_unpool2d(cr.ones(1, 1, 2, 2), np.ones((1, 1, 2)), 2), "indices of shape"),
        (lambda: F.max_unpool2d(cr.ones(1, 1, 1, 1), np.array([[[[4]]]]), 2), r"\[0, 4\)"),
        (lambda: F.adaptive_avg_pool1d(cr.ones(1, 1, 4), 0), "positive ints"),
    ],
)
def test_bad_pooling_arguments_are_named(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()
