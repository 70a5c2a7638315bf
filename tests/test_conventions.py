"""PyTorch's and NumPy's calling conventions, both accepted: dim=/keepdim= beside axis=/keepdims=
on every function with an axis (found by signature, so a new function cannot skip it), the
Tensor methods of `chainrule.methods`, in-place updates with their version checks, and the
dtype rules (matrix products refuse mixed dtypes, elementwise ops promote as NumPy)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

import chainrule as cr
from chainrule import composite, nn
from chainrule.nn import functional as F
from chainrule.ops import OPS

# Every public function of composite.py that takes an axis: each must take PyTorch's dim too.
# The functions with PyTorch's own signature (a positional `dim`, as torch.gather(x, dim,
# index), or torch's `dims=`, as torch.flip) keep it, and are checked in that form below.
TORCH_FORM = {
    "gather": (lambda f, x, i: f(x, 1, i), lambda f, x, i: f(x, axis=1, index=i)),
    "scatter": (
        lambda f, x, i: f(x, 1, i, x * 2),
        lambda f, x, i: f(x, index=i, src=x * 2, axis=1),
    ),
    "scatter_add_along": (
        lambda f, x, i: f(x, 1, i, x * 2),
        lambda f, x, i: f(x, index=i, src=x * 2, axis=1),
    ),
    "scatter_reduce": (
        lambda f, x, i: f(x, 1, i, x * 2, "amax"),
        lambda f, x, i: f(x, index=i, src=x * 2, reduce="amax", axis=1),
    ),
    "index_select": (lambda f, x, i: f(x, 1, i[0]), lambda f, x, i: f(x, axis=1, index=i[0])),
    "chunk": (lambda f, x, i: f(x, 2, 1), lambda f, x, i: f(x, 2, axis=1)),
    "topk": (lambda f, x, i: f(x, 2, 1), lambda f, x, i: f(x, 2, axis=1)),
    "flip": (lambda f, x, i: f(x, dims=(1,)), lambda f, x, i: f(x, axis=(1,))),
    "roll": (lambda f, x, i: f(x, 1, dims=1), lambda f, x, i: f(x, 1, axis=1)),
}
AXIS_FUNCTIONS = [
    f
    for name, f in vars(composite).items()
    if inspect.isfunction(f)
    and not name.startswith("_")
    and f.__module__ == composite.__name__
    and "axis" in inspect.signature(f).parameters
    and f.__name__ not in TORCH_FORM
]
INDEX = np.array([[0, 2, 1], [1, 0, 2]])  # a permutation per row: scatter writes each once


def _arrays(r) -> list:
    if isinstance(r, composite.ValuesIndices):
        return [r.values, r.indices]
    return r if isinstance(r, list) else [r]


def test_the_axis_functions_were_found() -> None:
    names = {f.__name__ for f in AXIS_FUNCTIONS}
    assert {"sum", "mean", "max", "var", "softmax", "concatenate", "expand_dims"} <= names
    assert {"take_along_axis", "diff", "any", "all", "sort", "cummax", "argsort"} <= names


@pytest.mark.parametrize("name", sorted(TORCH_FORM))
def test_torch_signatures_mean_the_numpy_axis(name, rng) -> None:
    """torch's positional dim and dims= select the same axis as NumPy's axis=, and giving
    both spellings is refused; with torch installed, the PyTorch form equals torch's."""
    f = getattr(composite, name)
    torch_form, numpy_form = TORCH_FORM[name]
    assert "axis" in inspect.signature(f).parameters
    x = cr.tensor(rng.normal(size=(2, 3)))
    ours = _arrays(torch_form(f, x, INDEX))
    for a, b in zip(ours, _arrays(numpy_form(f, x, INDEX)), strict=True):
        np.testing.assert_array_equal(a.data, b.data)
    with pytest.raises(TypeError, match=r"both axis=.* and dim"):
        numpy_form(
            lambda *a, **k: f(
                *a, **k, **{"dims" if "dims" in str(inspect.signature(f)) else "dim": 0}
            ),
            x,
            INDEX,
        )
    torch = pytest.importorskip("torch")
    tf = getattr(torch, {"scatter_add_along": "scatter_add"}.get(name, name))
    theirs = torch_form(tf, torch.from_numpy(x.data), torch.from_numpy(INDEX))
    theirs = list(theirs) if isinstance(theirs, (tuple, list)) else [theirs]
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(a.data, b.numpy())


@pytest.mark.parametrize("f", AXIS_FUNCTIONS, ids=lambda f: f.__name__)
def test_every_axis_function_takes_dim_and_keepdim(f) -> None:
    params = inspect.signature(f).parameters
    assert "dim" in params and params["dim"].kind is inspect.Parameter.KEYWORD_ONLY
    if "keepdims" in params:
        assert "keepdim" in params and params["keepdim"].kind is inspect.Parameter.KEYWORD_ONLY


def _call(f, x, **kw):
    name = f.__name__
    if name == "take_along_axis":
        return f(x, INDEX[:, :2], **kw)
    if name == "repeat_interleave":
        return f(x, 2, **kw)
    if name in ("append", "cross"):
        return f(x, x[::-1], **kw)
    if name == "partition":
        return f(x, 1, **kw)
    if name in ("concatenate", "stack"):
        return f([x, x], **kw)
    if name in ("split", "array_split"):
        return f(x, 1, **kw)
    if name == "squeeze":
        return f(x[:, :1], **kw)
    return f(x, **kw)


@pytest.mark.parametrize("f", AXIS_FUNCTIONS, ids=lambda f: f.__name__)
def test_dim_means_axis(f, rng) -> None:
    x = cr.tensor(rng.normal(size=(2, 3)).astype(np.float32))
    keep = {"keepdims": True} if "keepdims" in inspect.signature(f).parameters else {}
    keep_torch = {"keepdim": True} if keep else {}
    ours = _arrays(_call(f, x, dim=1, **keep_torch))
    expected = _arrays(_call(f, x, axis=1, **keep))
    if len(ours) == 2 and len(expected) == 1:  # max, min, sort: dim= is torch's (values, indices)
        ours = ours[:1]
    for a, b in zip(ours, expected, strict=True):
        np.testing.assert_array_equal(a.data, b.data)


@pytest.mark.parametrize("f", AXIS_FUNCTIONS, ids=lambda f: f.__name__)
def test_both_spellings_at_once_are_refused(f) -> None:
    x = cr.ones(2, 3)
    with pytest.raises(TypeError, match=r"both axis=.* and dim="):
        _call(f, x, axis=1, dim=0)
    if "keepdims" in inspect.signature(f).parameters:
        with pytest.raises(TypeError, match="both keepdims= and keepdim="):
            _call(f, x, keepdims=True, keepdim=True)


def _axis_cases(op):
    rng = np.random.default_rng(0)
    cases = op.cases(rng, np.float64, op) if op.cases else []
    return [(inputs, params) for inputs, params in cases if params.get("axis") is not None]


# The table's entries that reduce or act along an axis, found from their own test cases.
AXIS_OPS = [op for op in OPS.values() if not op.user and _axis_cases(op)]


def test_the_axis_entries_were_found() -> None:
    assert {"sum", "max", "logsumexp"} <= {op.name for op in AXIS_OPS}


@pytest.mark.parametrize("op", AXIS_OPS, ids=lambda op: op.name)
def test_table_entries_take_dim_too(op) -> None:
    for inputs, params in _axis_cases(op):
        torch_params = {
            "dim" if k == "axis" else "keepdim" if k == "keepdims" else k: v
            for k, v in params.items()
        }
        np.testing.assert_array_equal(op(*inputs, **torch_params).data, op(*inputs, **params).data)
        with pytest.raises(TypeError, match=f"{op.name}: got both axis= and dim="):
            op(*inputs, **params, dim=0)


@pytest.mark.parametrize("name", ["max", "min"])
def test_max_min_with_dim_return_values_and_indices(name) -> None:
    x = cr.tensor([[1.0, 3.0, 3.0], [2.0, -1.0, 0.0]], requires_grad=True)
    r = getattr(x, name)(dim=1)
    ref = getattr(np, name)(x.data, axis=1)
    np.testing.assert_array_equal(r.values.data, ref)
    np.testing.assert_array_equal(r.indices.data, getattr(np, f"arg{name}")(x.data, axis=1))
    r.values.sum().backward()  # the gradient reaches the indexed element only, as torch's
    assert x.grad is not None and x.grad.data.sum() == 2
    assert getattr(x, name)(axis=1).shape == (2,)  # NumPy's spelling keeps NumPy's result


def test_max_with_dim_refuses_an_empty_dim() -> None:
    with pytest.raises(ValueError, match=r"max: reduction over dim 1 of size 0 \(shape \(2, 0\)\)"):
        cr.zeros(2, 0).max(dim=1)


@pytest.mark.parametrize("ddof", [0, 1, 2])
@pytest.mark.parametrize("name", ["var", "std"])
def test_correction_is_ddof(name, ddof, rng) -> None:
    x = cr.tensor(rng.normal(size=(3, 4)))
    f = getattr(cr, name)
    np.testing.assert_array_equal(f(x, 1, correction=ddof).data, f(x, 1, ddof=ddof).data)
    np.testing.assert_allclose(f(x, dim=1, ddof=ddof).data, getattr(np, name)(x.data, 1, ddof=ddof))
    with pytest.raises(TypeError, match="both ddof=1 and correction=1"):
        f(x, ddof=1, correction=1)


def test_default_variance_is_numpys(rng) -> None:
    x = rng.normal(size=10)
    assert cr.var(x).item() == pytest.approx(np.var(x))


# --------------------------------------------------------------------------- Tensor methods


def test_shape_methods() -> None:
    x = cr.tensor(np.arange(24.0).reshape(2, 3, 4))
    assert x.view(-1).shape == (24,) and x.view(4, 6).shape == (4, 6)
    assert x.permute(2, 0, 1).shape == (4, 2, 3) and x.permute((2, 0, 1)).shape == (4, 2, 3)
    assert x.mT.shape == (2, 4, 3) and x.contiguous() is x
    assert x.size() == (2, 3, 4) and x.size(-1) == 4 and x.size == 24
    assert x.dim() == 3 and x.numel() == 24
    assert x[0].t().shape == (4, 3) and x[0, 0].t().shape == (4,)
    with pytest.raises(ValueError, match=r"t: expects a tensor of at most 2 dims"):
        x.t()
    with pytest.raises(ValueError, match=r"mT: needs at least 2 dims, got shape \(4,\)"):
        _ = x[0, 0].mT
    with pytest.raises(IndexError, match="size: dim 3 is out of range for shape"):
        x.size(3)


def test_conversions_keep_the_graph() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    assert x.double().dtype == np.float64 and x.half().dtype == np.float16
    assert x.double().float().dtype == np.float32
    assert x.to(np.float64).dtype == x.to("float64").dtype == np.float64
    assert x.to(cr.tensor([1], dtype=np.int32)).dtype == np.int32 and x.to("cpu") is x
    with pytest.raises(ValueError, match="CPU only; got 'cuda'"):
        x.to("cuda")
    y = x.clone()
    assert y is not x and not np.shares_memory(y.data, x.data)
    (y.double() * 3).sum().backward()
    assert x.grad is not None and x.grad.tolist() == [3.0, 3.0] and x.grad.dtype == np.float32


# --------------------------------------------------------------------------- in-place


INPLACE = [
    ("add_", lambda a, b: a + b),
    ("sub_", lambda a, b: a - b),
    ("mul_", lambda a, b: a * b),
    ("div_", lambda a, b: a / b),
    ("copy_", lambda a, b: b + 0 * a),
]


@pytest.mark.parametrize(("name", "f"), INPLACE, ids=[n for n, _ in INPLACE])
def test_inplace_matches_out_of_place_with_gradients(name, f, rng) -> None:
    x0 = rng.uniform(0.5, 2, size=(2, 3))
    w0 = rng.uniform(0.5, 2, size=(3,))
    x, w = cr.tensor(x0, requires_grad=True), cr.tensor(w0, requires_grad=True)
    y = x * 2
    same = getattr(y, name)(w)
    assert same is y and y._version == 1
    y.sum().backward()
    x_ref, w_ref = cr.tensor(x0, requires_grad=True), cr.tensor(w0, requires_grad=True)
    f(x_ref * 2, w_ref).sum().backward()
    np.testing.assert_allclose(y.data, f(x0 * 2, w0))
    # copy_ cuts y's old value out of the graph: x gets no gradient, which is a zero one
    np.testing.assert_allclose(
        cr.zeros_like(x).data if x.grad is None else x.grad.data, x_ref.grad.data
    )
    np.testing.assert_allclose(w.grad.data, w_ref.grad.data)


def test_inplace_change_of_a_saved_tensor_is_caught() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x.exp()
    z = y * y  # mul saves y for its gradient
    y.add_(1)
    with pytest.raises(RuntimeError, match="modified in place after the op ran"):
        z.sum().backward()


def test_inplace_on_a_view_in_the_graph_is_refused() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    a = w * 2
    _ = a * a  # saves a: a change through a view would make its gradient silently wrong
    with pytest.raises(RuntimeError, match="add_: this tensor shares memory with another"):
        a.view(-1).add_(1)
    z = cr.zeros(2, 3)
    z[0].fill_(1.0)  # outside the graph a view writes through, as in PyTorch
    assert z.tolist() == [[1.0, 1.0, 1.0], [0.0, 0.0, 0.0]]


def test_inplace_on_a_leaf_that_requires_grad() -> None:
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="add_: a leaf tensor that requires grad cannot change"):
        w.add_(1)
    with cr.no_grad():
        w.sub_(cr.tensor([0.5, 0.5]), alpha=2)  # an optimizer's step
    assert w.tolist() == [0.0, 1.0] and w.is_leaf and w.requires_grad


def test_inplace_errors_name_shapes_and_dtypes() -> None:
    x = cr.zeros(3)
    with pytest.raises(ValueError, match=r"mul_: the result has shape \(2, 3\).*shape \(3,\)"):
        x.mul_(cr.ones(2, 3))
    with pytest.raises(TypeError, match="add_: a float32 result cannot be stored in a int64"):
        cr.tensor([1, 2]).add_(0.5)


def test_fill_and_zero_on_a_gradient() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (x * x).sum().backward()
    assert x.grad is not None
    g = x.grad
    assert g.zero_() is g and g.tolist() == [0.0, 0.0]
    assert cr.ones(2, 2).fill_(7).tolist() == [[7.0, 7.0], [7.0, 7.0]]
    v = cr.tensor(3.0, requires_grad=True)
    cr.zeros(4).fill_(v).sum().backward()  # a 0-d tensor fills with its gradient summed
    assert v.grad is not None and v.grad.item() == 4.0


# --------------------------------------------------------------------------- operators


def test_bitwise_operators_on_bool_and_integer_tensors() -> None:
    a, b = cr.tensor([True, True, False]), cr.tensor([True, False, False])
    assert (a & b).tolist() == [True, False, False] and (a | b).tolist() == [True, True, False]
    assert (a ^ b).tolist() == [False, True, False] and (~a).tolist() == [False, False, True]
    assert (True & b).tolist() == [True, False, False]
    assert ((cr.tensor([1.0, -1.0]) > 0) & (cr.tensor([2.0, 2.0]) > 0)).tolist() == [True, False]
    assert (cr.tensor([6, 3]) ^ 5).tolist() == [3, 6]
    with pytest.raises(TypeError, match="&: needs bool or integer tensors, got dtype float32"):
        cr.tensor([1.0]) & a[:1]


@pytest.mark.parametrize(
    ("x", "y"),
    [([7.0, -7.0, 1.0, -2.5], [2.0, 2.0, 0.1, 0.7]), ([7, -7, 5], [2, 3, -3])],
    ids=["float", "int"],
)
def test_floor_division_and_remainder_match_numpy(x, y) -> None:
    a, b = np.array(x), np.array(y)
    ta, tb = cr.tensor(a), cr.tensor(b)
    np.testing.assert_array_equal((ta // tb).data, a // b)
    np.testing.assert_array_equal((ta % tb).data, a % b)
    np.testing.assert_array_equal((a[0] // tb).data, a[0] // b)  # reflected forms
    np.testing.assert_array_equal((a[0] % tb).data, a[0] % b)
    assert (ta // tb).dtype == (a // b).dtype


def test_remainder_gradient_is_torchs() -> None:
    x = cr.tensor([1.0, -2.5], dtype=np.float64, requires_grad=True)
    y = cr.tensor([0.1, 0.7], dtype=np.float64, requires_grad=True)
    (x % y).sum().backward()
    assert x.grad is not None and y.grad is not None
    assert x.grad.tolist() == [1.0, 1.0] and y.grad.tolist() == [-9.0, 4.0]


def test_tensor_exponents_and_reflected_power() -> None:
    x = cr.tensor([1.0, 2.0], requires_grad=True)
    (2**x + x**x).sum().backward()
    assert x.grad is not None
    expected = np.log(2) * 2**x.data + x.data**x.data * (np.log(x.data) + 1)
    np.testing.assert_allclose(x.grad.data, expected, rtol=1e-6)


# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize(
    "product",
    [
        lambda x, w: x @ w.T,
        lambda x, w: cr.matmul(x, w.T),
        lambda x, w: F.linear(x, w),
        lambda x, w: nn.Linear(3, 2)(x),
    ],
    ids=["@", "matmul", "F.linear", "nn.Linear"],
)
def test_matrix_products_refuse_mixed_dtypes(product) -> None:
    x = cr.tensor(np.ones((4, 3)))  # float64 data
    w = cr.ones(2, 3, requires_grad=True)  # float32 parameters
    with pytest.raises(TypeError, match="dtypes float64 and float32 differ; cast one first"):
        product(x, w)
    assert product(x.float(), w).dtype == np.float32


def test_elementwise_ops_promote_as_numpy() -> None:
    x32, x64 = cr.ones(2), cr.tensor(np.ones(2))
    assert (x32 + x64).dtype == np.float64 and (x32 * 2.5).dtype == np.float32
    i = cr.tensor([1, 2])
    # an integer tensor with a Python float: the default float dtype, as PyTorch
    assert (i * 0.5).dtype == (0.5 - i).dtype == (i / 2.0).dtype == np.float32
    assert (i * 2).dtype == np.int64


@pytest.mark.parametrize("f", [cr.add, cr.subtract, cr.multiply, cr.divide, cr.maximum, cr.minimum])
def test_functions_keep_a_python_number_weak(f) -> None:
    x = cr.ones(2)
    assert f(3, x).dtype == f(x, 3).dtype == f(2.5, x).dtype == np.float32
    assert f(3, x).tolist() == getattr(np, f.__name__)(3, np.ones(2, np.float32)).tolist()


def test_arange_follows_the_default_float_dtype() -> None:
    assert cr.arange(0, 1, 0.25).dtype == np.float32 and cr.arange(0.0, 2).dtype == np.float32
    assert cr.arange(3).dtype == np.arange(3).dtype
    assert cr.arange(0, 1, 0.5, dtype=np.float64).dtype == np.float64


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda x: cr.gather(x, index=INDEX), "gather: give dim \\(or axis=\\) and index"),
        (
            lambda x: composite.scatter(x, 1, INDEX),
            "scatter: give dim \\(or axis=\\) and index and src",
        ),
        (lambda x: cr.take_along_axis(x, INDEX), "take_along_axis: give axis= \\(or dim=\\)"),
    ],
)
def test_a_missing_axis_is_named(call, message) -> None:
    with pytest.raises(TypeError, match=message):
        call(cr.ones(2, 3))


@pytest.mark.parametrize("name", ["sum", "prod", "max", "min"])
def test_numpys_own_reductions_of_a_tensor_stay_differentiable(name: str, rng) -> None:
    """numpy.sum(tensor) calls tensor.sum(axis=None, dtype=None, out=None) (and numpy.max
    tensor.max(axis=None, out=None)): the result is chainrule's, with its gradient; an out
    array is refused, naming it."""
    x = cr.tensor(rng.uniform(0.5, 2.0, size=(2, 3)), requires_grad=True)
    want = cr.grad(lambda t: getattr(cr, name)(t))(x)
    np.testing.assert_allclose(cr.grad(lambda t: getattr(np, name)(t))(x).data, want.data)
    assert getattr(np, name)(x, axis=0).shape == (3,)
    with pytest.raises(TypeError, match="out= is not supported"):
        getattr(np, name)(x, out=np.zeros(()))
