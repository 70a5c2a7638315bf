"""PyTorch's calling conventions against PyTorch itself: the same line of code, run on a torch
tensor and on a chainrule tensor, gives the same values, indices and gradients.

Each row of `CALLS` is one such line (a method called the PyTorch way: dim=, keepdim=,
correction=, view, permute, in-place updates, operators); hypothesis draws shapes (0-d and
0-size included), a dim, keepdim and the dtype.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import chainrule as cr

torch = pytest.importorskip("torch")


@dataclass(frozen=True)
class Call:
    """`f(x, dim, keepdim)`, one line valid for both libraries; `needs_dim`: the call needs an
    int dim (no 0-d input: NumPy has no axis 0 there, torch accepts dim 0 of a 0-d tensor);
    `nonempty`: torch and chainrule both refuse a 0-size dim (max(dim=) has no value there)."""

    name: str
    f: Callable[[Any, Any, bool], Any]
    needs_dim: bool = True
    nonempty: bool = False
    grad: bool = True


def _inplace(name: str) -> Callable[[Any, Any, bool], Any]:
    def f(x: Any, dim: Any, keepdim: bool) -> Any:
        y = x * 1  # a non-leaf, so the in-place change is recorded in the graph
        return getattr(y, name)(x * 0.5 + 2)

    return f


CALLS = [
    Call("sum", lambda x, d, k: x.sum(dim=d, keepdim=k), needs_dim=False),
    Call("mean", lambda x, d, k: x.mean(dim=d, keepdim=k)),
    Call("var", lambda x, d, k: x.var(dim=d, keepdim=k, correction=0), needs_dim=False),
    Call("std1", lambda x, d, k: x.std(dim=d, keepdim=k, correction=1)),
    Call("logsumexp", lambda x, d, k: x.logsumexp(dim=d, keepdim=k), nonempty=True),
    Call("softmax", lambda x, d, k: x.softmax(dim=d)),
    Call("log_softmax", lambda x, d, k: x.log_softmax(dim=d)),
    Call("max", lambda x, d, k: x.max(dim=d, keepdim=k), nonempty=True),
    Call("min", lambda x, d, k: x.min(dim=d, keepdim=k), nonempty=True),
    Call("argmax", lambda x, d, k: x.argmax(dim=d, keepdim=k), nonempty=True, grad=False),
    Call("unsqueeze", lambda x, d, k: x.unsqueeze(dim=d)),
    Call("squeeze", lambda x, d, k: x.squeeze(dim=d)),
    Call("flatten", lambda x, d, k: x.flatten(d)),
    Call("cat", lambda x, d, k: (torch if torch.is_tensor(x) else cr).cat([x, 2 * x], dim=d)),
    Call("view", lambda x, d, k: x.view(-1), needs_dim=False),
    Call("permute", lambda x, d, k: x.permute(tuple(reversed(range(x.dim())))), needs_dim=False),
    Call("t", lambda x, d, k: x.t() if x.dim() <= 2 else x.mT, needs_dim=False),
    Call("size", lambda x, d, k: (x.size(d), tuple(x.size()), x.dim(), x.numel()), grad=False),
    Call("clone-double", lambda x, d, k: x.clone().double() * 2, needs_dim=False),
    Call(
        "floordiv",
        lambda x, d, k: (x // 0.75, 3 // (x + 10), 2.5 % (x + 10)),
        needs_dim=False,
        grad=False,
    ),
    Call("mod", lambda x, d, k: (x % 0.75, (x + 10) % (x * 0.5 + 2)), needs_dim=False),
    Call("pow", lambda x, d, k: (x + 3) ** (x * 0.5) + 2**x, needs_dim=False),
    Call(
        "bool",
        lambda x, d, k: ((x > 0) & (x < 1), (x > 0) | ~(x < 1), (x > 0) ^ True),
        needs_dim=False,
        grad=False,
    ),
    *(Call(n, _inplace(n), needs_dim=False) for n in ("add_", "sub_", "mul_", "div_", "copy_")),
]

SHAPES = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=3)


def _flat(out: Any) -> list[Any]:
    if isinstance(out, tuple):  # a plain tuple or torch's and chainrule's (values, indices)
        return [o for item in out for o in _flat(item)]
    return [out]


def _np(t: Any) -> Any:
    if torch.is_tensor(t):
        return t.detach().numpy()
    return t.data if isinstance(t, cr.Tensor) else np.asarray(t)


@pytest.mark.parametrize("call", CALLS, ids=lambda c: c.name)
@settings(max_examples=40, deadline=None)
@given(
    shape=SHAPES,
    dtype=st.sampled_from([np.float32, np.float64]),
    keepdim=st.booleans(),
    data=st.data(),
)
def test_the_same_line_gives_the_same_result(call, shape, dtype, keepdim, data) -> None:
    n = len(shape)
    if call.needs_dim:
        assume(n > 0)
        extra = 1 if call.name == "unsqueeze" else 0
        dim = data.draw(st.integers(-n - extra, n - 1 + extra), label="dim")
    else:
        dim = data.draw(st.none() | st.integers(-n, n - 1) if n else st.none(), label="dim")
    if call.name == "var" and dim is None:
        keepdim = False  # torch's var(dim=None, keepdim=True) keeps no dims; NumPy's keeps all
    if call.nonempty:
        assume(dim is not None and shape[dim] > 0)
    if call.name == "squeeze":
        assume(shape[dim] == 1)  # torch ignores squeezing a dim that is not 1; NumPy refuses
    x0 = data.draw(
        hnp.arrays(dtype, shape, elements=st.floats(-3, 3, width=32, exclude_min=True)), label="x"
    )
    ours_x = cr.tensor(x0, requires_grad=call.grad)
    theirs_x = torch.tensor(x0, requires_grad=call.grad)
    ours = _flat(call.f(ours_x, dim, keepdim))
    with warnings.catch_warnings():  # torch warns where NumPy would (var with 0 dof); we do not
        warnings.simplefilter("ignore", UserWarning)
        theirs = _flat(call.f(theirs_x, dim, keepdim))
    assert len(ours) == len(theirs)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-12}
    for a, b in zip(ours, theirs, strict=True):
        a_np, b_np = _np(a), _np(b)
        assert np.shape(a_np) == np.shape(b_np), call.name
        assert np.asarray(a_np).dtype == np.asarray(b_np).dtype, call.name
        np.testing.assert_allclose(a_np, b_np, equal_nan=True, **tol)
    if not call.grad:
        return
    rng = np.random.default_rng(0)
    float_outs = [(a, b) for a, b in zip(ours, theirs, strict=True) if torch.is_floating_point(b)]
    us = [rng.normal(size=np.shape(_np(b))) for _, b in float_outs]
    sum(((a * u.astype(_np(a).dtype)).sum() for (a, _), u in zip(float_outs, us))).backward()
    sum(
        ((b * torch.tensor(u, dtype=b.dtype)).sum() for (_, b), u in zip(float_outs, us))
    ).backward()
    g_ours = ours_x.grad.data if ours_x.grad is not None else np.zeros_like(x0)
    g_theirs = theirs_x.grad.numpy() if theirs_x.grad is not None else np.zeros_like(x0)
    np.testing.assert_allclose(g_ours, g_theirs, equal_nan=True, **tol)


@pytest.mark.parametrize("dtypes", [(torch.float64, torch.float32), (torch.float32, torch.float64)])
def test_matrix_products_refuse_mixed_dtypes_like_torch(dtypes) -> None:
    a, b = torch.ones(2, 3, dtype=dtypes[0]), torch.ones(3, 2, dtype=dtypes[1])
    with pytest.raises(RuntimeError):
        a @ b
    with pytest.raises(TypeError, match=r"dtypes .* differ"):
        cr.tensor(a.numpy()) @ cr.tensor(b.numpy())
    # elementwise ops promote in both
    assert str((a[:, :2] * b[:2]).dtype).endswith(
        str((cr.tensor(a.numpy())[:, :2] * cr.tensor(b.numpy())[:2]).dtype)
    )
