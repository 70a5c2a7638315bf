"""Edge cases against PyTorch: every op's value and gradient at 0, -0, +-inf, NaN, huge and tiny
numbers, on 0-d, empty and broadcast shapes (hypothesis draws the cases).

One table, `TWINS`, pairs each chainrule function with its PyTorch counterpart; `OPS_WITHOUT_TWIN`
names the primitives PyTorch has no direct counterpart for, so a new op cannot be forgotten.
Where chainrule deliberately differs, the twin's `differs` says on which inputs and why; those
inputs are not drawn (`docs/differences.md` lists the same choices).
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
from chainrule.nn import functional as F
from chainrule.ops import OPS

torch = pytest.importorskip("torch")

INF, NAN = np.inf, np.nan
# 1e300, not 1e308: products such as 2 * x * g then overflow (or not) in the same order in
# both libraries; the special values are where the semantics, not rounding, are tested.
SPECIAL = [0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 3.0, INF, -INF, NAN]
SPECIAL += [1e300, -1e300, 1e-310, 710.0, -710.0]  # overflow, subnormal, exp's limit
# reductions add their inputs, and summation order changes whether 1e300 + 1e300 - 1e300 overflows
SPECIAL_SUMMABLE = tuple(v for v in SPECIAL if not 1e10 < abs(v) < INF)
FINITE_SUMMABLE = tuple(v for v in SPECIAL_SUMMABLE if not np.isinf(v))


@dataclass(frozen=True)
class Twin:
    """A chainrule function, its torch counterpart, and where chainrule chooses differently."""

    ours: Callable[..., Any]
    theirs: Callable[..., Any]
    arity: int = 1
    reduction: bool = False  # called as f(x, axis, keepdims)
    # inputs where chainrule deliberately differs: differs(*arrays), or differs(x, axis) for
    # a reduction
    differs: Callable[..., bool] | None = None
    why: str = ""
    pool: tuple[float, ...] = ()  # the values to draw, when not all of SPECIAL's


def _axes(x: Any, axis: Any) -> Any:
    return tuple(range(x.ndim)) if axis is None else axis


def _nan_in(*xs: np.ndarray) -> bool:
    return bool(np.isnan(np.concatenate([np.ravel(x) for x in xs])).any())


def _var_differs(ddof: int) -> Callable[[np.ndarray, Any], bool]:
    def differs(x: np.ndarray, axis: Any) -> bool:
        count = x.size if axis is None else x.shape[axis]
        return bool(np.isinf(x).any()) or 0 < count <= ddof

    return differs


def _numpy_pow_differs(x: np.ndarray, y: np.ndarray) -> bool:
    """NumPy's pow (ours) vs torch's: (-inf)^0.5 is NaN vs inf; at -0 torch uses sqrt/rsqrt."""
    x, y = np.broadcast_arrays(x, y)
    fractional = np.isfinite(y) & (y != np.round(y))
    neg_zero = (x == 0) & np.signbit(x) & (np.abs(y) == 0.5)
    return bool(((x == -INF) & fractional).any() or neg_zero.any())


def _t(f: Callable[..., Any]) -> Callable[..., Any]:
    """A torch reduction called with chainrule's (x, axis, keepdims) and axis=None for all."""
    return lambda x, axis, keepdims: f(x, _axes(x, axis), keepdims)


TF = torch.nn.functional
TWINS: dict[str, Twin] = {
    "neg": Twin(cr.negative, torch.neg),
    "exp": Twin(cr.exp, torch.exp),
    "log": Twin(cr.log, torch.log),
    "sin": Twin(cr.sin, torch.sin),
    "cos": Twin(cr.cos, torch.cos),
    "tan": Twin(cr.tan, torch.tan),
    "arcsin": Twin(cr.arcsin, torch.asin),
    "arccos": Twin(cr.arccos, torch.acos),
    "arctan": Twin(cr.arctan, torch.atan),
    "sinh": Twin(cr.sinh, torch.sinh),
    "cosh": Twin(cr.cosh, torch.cosh),
    "tanh": Twin(cr.tanh, torch.tanh),
    "sigmoid": Twin(cr.sigmoid, torch.sigmoid),
    "softplus": Twin(cr.softplus, TF.softplus),
    "sqrt": Twin(cr.sqrt, torch.sqrt),
    "erf": Twin(cr.erf, torch.erf),
    "abs": Twin(cr.abs, torch.abs, differs=_nan_in, why="abs'(NaN) is NaN (autograd); torch 0"),
    "relu": Twin(cr.relu, torch.relu, differs=_nan_in, why="relu'(NaN) is 0 (autograd); torch g"),
    "clip": Twin(lambda x: cr.clip(x, -1.0, 2.0), lambda x: torch.clamp(x, -1.0, 2.0)),
    "add": Twin(cr.add, torch.add, 2),
    "sub": Twin(cr.subtract, torch.sub, 2),
    "mul": Twin(cr.multiply, torch.mul, 2),
    "div": Twin(cr.divide, torch.div, 2),
    "power": Twin(cr.power, torch.pow, 2, differs=_numpy_pow_differs, why="NumPy's pow"),
    "maximum": Twin(cr.maximum, torch.maximum, 2),
    "minimum": Twin(cr.minimum, torch.minimum, 2),
    "sum": Twin(cr.sum, _t(torch.sum), reduction=True),
    "max": Twin(cr.max, _t(torch.amax), reduction=True),
    "min": Twin(cr.min, _t(torch.amin), reduction=True),
    "logsumexp": Twin(cr.logsumexp, _t(torch.logsumexp), reduction=True),
    # composites
    "mean": Twin(cr.mean, _t(torch.mean), reduction=True),
    "prod": Twin(
        cr.prod,
        lambda x, axis, keepdims: (
            torch.prod(x).reshape([1] * x.ndim if keepdims else [])
            if axis is None
            else torch.prod(x, axis, keepdim=keepdims)
        ),
        reduction=True,
        differs=lambda x, axis: not np.isfinite(x).all(),
        why="an inf or NaN: ours is the product of the others, torch's out / x is NaN",
    ),
    **{
        f"{name}(ddof={d})": Twin(
            lambda x, axis, keepdims, _f=ours, _d=d: _f(x, axis, _d, keepdims),
            lambda x, axis, keepdims, _f=theirs, _d=d: _f(
                x, _axes(x, axis), correction=_d, keepdim=keepdims
            ),
            reduction=True,
            # d var/dx_i = 2 (x_i - mean) / dof: torch drops the mean's own path (its gradient
            # sum is 0), ours keeps it, so an inf in a slice makes the whole slice NaN. With
            # ddof >= N both give inf (NaN for equal elements); the gradient is then NaN for
            # us, torch's 2 (x_i - mean) / (N - ddof) contradicts its own inf value.
            differs=_var_differs(d),
            why="an inf in the slice, or ddof >= N: the slice's gradient is NaN",
            pool=FINITE_SUMMABLE,
        )
        for name, ours, theirs in [("var", cr.var, torch.var), ("std", cr.std, torch.std)]
        for d in (0, 1, 2)  # ddof >= N, where only the gradient differs: test_edges.py
    },
    "softmax": Twin(lambda x: cr.softmax(x, -1), lambda x: torch.softmax(x, -1)),
    "log_softmax": Twin(lambda x: cr.log_softmax(x, -1), lambda x: torch.log_softmax(x, -1)),
    "where": Twin(
        lambda x, y: cr.where(np.isfinite(x.data), x, y),
        lambda x, y: torch.where(torch.isfinite(x), x, y),
        2,
    ),
    "silu": Twin(cr.silu, TF.silu),
    "gelu": Twin(cr.gelu, TF.gelu),
    "leaky_relu": Twin(cr.leaky_relu, TF.leaky_relu, differs=_nan_in, why="as relu"),
    "elu": Twin(cr.elu, TF.elu, differs=_nan_in, why="as relu"),
    "arcsinh": Twin(cr.arcsinh, torch.asinh),
    "arccosh": Twin(cr.arccosh, torch.acosh),
    "arctanh": Twin(cr.arctanh, torch.atanh),
    "log10": Twin(cr.log10, torch.log10),
    "log2": Twin(cr.log2, torch.log2),
    "floor": Twin(cr.floor, torch.floor),
    "ceil": Twin(cr.ceil, torch.ceil),
    "sign": Twin(cr.sign, torch.sign, differs=_nan_in, why="sign(NaN) is NaN (NumPy); torch 0"),
    # issue 11's elementwise functions and activations
    "log1p": Twin(cr.log1p, torch.log1p),
    "expm1": Twin(cr.expm1, torch.expm1),
    "exp2": Twin(cr.exp2, torch.exp2),
    "erfc": Twin(cr.erfc, torch.erfc),
    "sinc": Twin(cr.sinc, torch.sinc),
    "round": Twin(cr.round, torch.round),
    "round(decimals=1)": Twin(lambda x: cr.round(x, 1), lambda x: torch.round(x, decimals=1)),
    "trunc": Twin(cr.trunc, torch.trunc),
    "reciprocal": Twin(cr.reciprocal, torch.reciprocal),
    "rsqrt": Twin(cr.rsqrt, torch.rsqrt),
    "square": Twin(cr.square, torch.square),
    "logaddexp": Twin(cr.logaddexp, torch.logaddexp, 2),
    "hypot": Twin(cr.hypot, torch.hypot, 2),
    "arctan2": Twin(cr.arctan2, torch.atan2, 2),
    "lerp": Twin(cr.lerp, torch.lerp, 3),
    "fmax": Twin(cr.fmax, torch.fmax, 2),
    "fmin": Twin(cr.fmin, torch.fmin, 2),
    "copysign": Twin(cr.copysign, torch.copysign, 2),
    "nan_to_num": Twin(cr.nan_to_num, torch.nan_to_num),
    "nan_to_num(1, 2, 3)": Twin(
        lambda x: cr.nan_to_num(x, 1.0, 2.0, -3.0),
        lambda x: torch.nan_to_num(x, 1.0, 2.0, -3.0),
    ),
    "selu": Twin(cr.selu, TF.selu, differs=_nan_in, why="as elu"),
    "celu": Twin(cr.celu, TF.celu, differs=_nan_in, why="as elu"),
    "celu(alpha=0.5)": Twin(
        lambda x: cr.celu(x, 0.5), lambda x: TF.celu(x, 0.5), differs=_nan_in, why="as elu"
    ),
    "relu6": Twin(cr.relu6, TF.relu6),
    "hardtanh": Twin(cr.hardtanh, TF.hardtanh),
    "hardtanh(-2, 0.5)": Twin(
        lambda x: cr.hardtanh(x, -2.0, 0.5), lambda x: TF.hardtanh(x, -2.0, 0.5)
    ),
    "hardsigmoid": Twin(cr.hardsigmoid, TF.hardsigmoid),
    "hardswish": Twin(
        cr.hardswish,
        TF.hardswish,
        differs=lambda x: bool(np.isneginf(x).any()),
        why="hardswish(-inf) is 0, the limit; torch computes -inf * 0 = NaN",
    ),
    "mish": Twin(cr.mish, TF.mish),
    "softsign": Twin(cr.softsign, TF.softsign),
    "logsigmoid": Twin(cr.logsigmoid, TF.logsigmoid),
    "softplus(beta=2, threshold=5)": Twin(
        lambda x: cr.softplus(x, 2.0, 5.0), lambda x: TF.softplus(x, 2.0, 5.0)
    ),
    # NumPy's other functions
    "mod": Twin(cr.mod, torch.remainder, 2),
    "fmod": Twin(cr.fmod, torch.fmod, 2),
    "logaddexp2": Twin(cr.logaddexp2, torch.logaddexp2, 2),
    "fabs": Twin(cr.fabs, torch.abs, differs=_nan_in, why="abs'(NaN) is NaN (autograd); torch 0"),
    "rad2deg": Twin(cr.rad2deg, torch.rad2deg),
    "deg2rad": Twin(cr.deg2rad, torch.deg2rad),
}
OPS_WITHOUT_TWIN = {
    "cbrt": "torch has no real cube root (torch.pow(x, 1/3) is NaN for x < 0)",
    "sec": "torch has no sec: a composite of cos and div, both compared here",
    "csc": "torch has no csc: a composite of sin and div, both compared here",
    "cot": "torch has no cot: a composite of tan and div, both compared here",
    "arccot": "torch has no arccot: a composite of arctan and div, both compared here",
    "sech": "torch has no sech: a composite of cosh and div, both compared here",
    "csch": "torch has no csch: a composite of sinh and div, both compared here",
    "coth": "torch has no coth: a composite of tanh and div, both compared here",
    "astype": "a cast: no edge values of its own",
    "scatter_reduce": "compared with torch.scatter_reduce in test_grids_and_scatter_reduce.py "
    "(every reduce, ties and zeros drawn by hypothesis; NaN ties are torch's 0/0)",
    "softmax_cross_entropy": "tested through F.cross_entropy below",
    "matmul": "tested on empty shapes below",
    "linear": "tested through matmul (same vjps) and nn's tests",
    "reshape": "moves elements only",
    "transpose": "moves elements only",
    "broadcast_to": "moves elements only",
    "getitem": "moves elements only",
    "scatter_add": "moves elements only",
    "concatenate": "moves elements only",
    "conv": "compared with torch's conv1d/conv2d per option in tests/nn",
    "gru_cell": "compared with torch's GRU and GRUCell in tests/nn",
    "append": "torch has no append: ravel and concatenate, both compared here",
    "rollaxis": "torch has no rollaxis: a transpose, as movedim (compared here)",
    "select": "torch's select is indexing; NumPy's select is where, compared here",
    "partition": "torch has no partition: getitem at NumPy's argpartition",
    "max_pool": "compared with torch's max_pool1d/2d, ties and NaN included, in tests/nn",
}
SETTINGS = settings(max_examples=30, deadline=None)  # per op


# Scans and sorts, called as f(x, axis) with an int axis; the value is a Tensor (sort's and
# topk's values; their indices are compared in test_indices_match_torch).
SCANS: dict[str, Twin] = {
    "cumsum": Twin(lambda x, a: cr.cumsum(x, a), lambda x, a: torch.cumsum(x, a)),
    "cumprod": Twin(
        lambda x, a: cr.cumprod(x, dim=a),
        lambda x, a: torch.cumprod(x, a),
        differs=lambda x: not np.isfinite(x).all(),
        why="as prod",
    ),
    "logcumsumexp": Twin(cr.logcumsumexp, torch.logcumsumexp),
    "cummax": Twin(lambda x, a: cr.cummax(x, a).values, lambda x, a: torch.cummax(x, a).values),
    "sort": Twin(lambda x, a: cr.sort(x, a), lambda x, a: torch.sort(x, dim=a, stable=True).values),
    "sort(descending)": Twin(
        lambda x, a: cr.sort(x, dim=a, descending=True).values,
        lambda x, a: torch.sort(x, dim=a, descending=True, stable=True).values,
    ),
    "topk": Twin(
        lambda x, a: cr.topk(x, min(2, x.shape[a]), a).values,
        lambda x, a: torch.topk(x, min(2, x.shape[a]), a).values,
        # which of tied elements torch.topk picks is unspecified: the gradient may go to another
        differs=lambda x: len(np.unique(x)) < x.size,
        why="ties",
    ),
    "topk(smallest)": Twin(
        lambda x, a: cr.topk(x, min(2, x.shape[a]), a, largest=False).values,
        lambda x, a: torch.topk(x, min(2, x.shape[a]), a, largest=False).values,
        differs=lambda x: len(np.unique(x)) < x.size,
        why="ties",
    ),
    "diff": Twin(lambda x, a: cr.diff(x, axis=a), lambda x, a: torch.diff(x, dim=a)),
    "diff(n=2)": Twin(lambda x, a: cr.diff(x, 2, a), lambda x, a: torch.diff(x, 2, a)),
}


@pytest.mark.parametrize("name", list(SCANS))
@SETTINGS
@given(data=st.data())
def test_scan_edges_match_torch(name: str, data: Any) -> None:
    twin = SCANS[name]
    x = data.draw(
        _arrays(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4), SPECIAL_SUMMABLE)
    )
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    assume(twin.differs is None or not twin.differs(x))
    _run(twin, [x], 0.5, axis=axis)


@pytest.mark.parametrize("name", ["sort", "sort(descending)", "cummax"])
@SETTINGS
@given(data=st.data())
def test_indices_match_torch(name: str, data: Any) -> None:
    x = data.draw(
        _arrays(hnp.array_shapes(min_dims=1, max_dims=2, min_side=0, max_side=4), SPECIAL)
    )
    axis = data.draw(st.integers(-x.ndim, x.ndim - 1))
    t = torch.tensor(x)
    if name == "cummax":
        ours, theirs = cr.cummax(x, dim=axis), torch.cummax(t, axis)
    else:
        down = name != "sort"
        ours = cr.sort(x, dim=axis, descending=down)
        theirs = torch.sort(t, dim=axis, descending=down, stable=True)
    np.testing.assert_array_equal(ours.indices.data, theirs.indices.numpy())
    np.testing.assert_array_equal(ours.values.data, theirs.values.numpy())


# Linear algebra on given shapes (the values drawn): (twin, shapes of its inputs).
LINALG: dict[str, tuple[Twin, tuple[tuple[int, ...], ...]]] = {
    "einsum": (
        Twin(
            lambda a, b: cr.einsum("bij,bjk->bik", a, b),
            lambda a, b: torch.einsum("bij,bjk->bik", a, b),
        ),
        ((2, 2, 3), (2, 3, 2)),
    ),
    "einsum(sum)": (
        Twin(lambda a: cr.einsum("ij->", a), lambda a: torch.einsum("ij->", a)),
        ((2, 3),),
    ),
    "tensordot": (
        Twin(lambda a, b: cr.tensordot(a, b, 2), lambda a, b: torch.tensordot(a, b, 2)),
        ((2, 3, 2), (3, 2, 2)),
    ),
    "outer": (Twin(cr.outer, torch.outer), ((3,), (2,))),
    "inner": (Twin(cr.inner, torch.inner), ((2, 3), (2, 3))),
    "kron": (Twin(cr.kron, torch.kron), ((2, 2), (2, 3))),
    "diagonal": (
        Twin(lambda a: cr.diagonal(a, 1, dim1=1, dim2=2), lambda a: torch.diagonal(a, 1, 1, 2)),
        ((2, 3, 4),),
    ),
    "diag": (Twin(lambda a: cr.diag(a, -1), lambda a: torch.diag(a, -1)), ((3,),)),
    "diag(matrix)": (Twin(lambda a: cr.diag(a, 1), lambda a: torch.diag(a, 1)), ((3, 4),)),
    "trace": (Twin(cr.trace, torch.trace), ((3, 3),)),
    "tril": (Twin(lambda a: cr.tril(a, -1), lambda a: torch.tril(a, -1)), ((2, 3, 4),)),
    "triu": (Twin(lambda a: cr.triu(a, 1), lambda a: torch.triu(a, 1)), ((3, 4),)),
}
_IDX = np.array([[0, 2], [1, 1], [2, 0]])
# Indexing and shape functions (moving elements only: any values, NaN and inf included).
LINALG.update(
    {
        "flip": (Twin(lambda a: cr.flip(a, dims=(0,)), lambda a: torch.flip(a, (0,))), ((3, 2),)),
        "roll": (Twin(lambda a: cr.roll(a, 1, 1), lambda a: torch.roll(a, 1, 1)), ((2, 3),)),
        "tile": (Twin(lambda a: a.repeat(2, 1), lambda a: a.repeat(2, 1)), ((2, 3),)),
        "repeat_interleave": (
            Twin(
                lambda a: cr.repeat_interleave(a, 2, dim=0),
                lambda a: torch.repeat_interleave(a, 2, dim=0),
            ),
            ((2, 3),),
        ),
        "index_select": (
            Twin(
                lambda a: cr.index_select(a, 1, [2, 0, 2]),
                lambda a: torch.index_select(a, 1, torch.tensor([2, 0, 2])),
            ),
            ((2, 3),),
        ),
        "take_along_axis": (
            Twin(
                lambda a: cr.gather(a, 1, _IDX),
                lambda a: torch.gather(a, 1, torch.tensor(_IDX)),
            ),
            ((3, 3),),
        ),
        "take_along_dim": (
            Twin(
                lambda a: cr.take_along_dim(a, _IDX, 1),
                lambda a: torch.take_along_dim(a, torch.tensor(_IDX), 1),
            ),
            ((3, 3),),
        ),
        "meshgrid": (
            Twin(
                lambda a, b: cr.stack(cr.meshgrid(a, b)),
                lambda a, b: torch.stack(torch.meshgrid(a, b, indexing="xy")),
                2,
            ),
            ((3,), (2,)),
        ),
        "scatter": (
            Twin(
                lambda a, b: cr.scatter(a, 1, _IDX[:, :1], b),
                lambda a, b: torch.scatter(a, 1, torch.tensor(_IDX[:, :1]), b),
                2,
            ),
            ((3, 3), (3, 1)),  # torch's backward fails for a src larger than the index
        ),
        "scatter_add": (
            Twin(
                lambda a, b: cr.scatter_add(a, 1, _IDX, b),
                lambda a, b: torch.scatter_add(a, 1, torch.tensor(_IDX), b),
                2,
            ),
            ((3, 3), (3, 2)),
        ),
        "masked_fill": (
            Twin(
                lambda a: cr.masked_fill(a, np.eye(3, dtype=bool), 0.5),
                lambda a: a.masked_fill(torch.eye(3, dtype=torch.bool), 0.5),
            ),
            ((3, 3),),
        ),
        "masked_select": (
            Twin(
                lambda a: cr.masked_select(a, np.array([True, False, True])),
                lambda a: torch.masked_select(a, torch.tensor([True, False, True])),
            ),
            ((2, 3),),
        ),
        **{
            f"pad({mode})": (
                Twin(
                    lambda a, _m=mode: F.pad(a, (2, 1, 1, 0), _m),
                    lambda a, _m=mode: TF.pad(a, (2, 1, 1, 0), _m),
                ),
                ((1, 2, 3),),
            )
            for mode in ("constant", "reflect", "replicate")
        },
        "unfold": (Twin(lambda a: a.unfold(1, 2, 1), lambda a: a.unfold(1, 2, 1)), ((2, 4),)),
        "moveaxis": (
            Twin(lambda a: cr.moveaxis(a, 0, 2), lambda a: torch.movedim(a, 0, 2)),
            ((2, 3, 1),),
        ),
        "vstack": (
            Twin(lambda a, b: cr.vstack([a, b]), lambda a, b: torch.vstack([a, b]), 2),
            ((3,), (2, 3)),
        ),
        "hstack": (
            Twin(lambda a, b: cr.hstack([a, b]), lambda a, b: torch.hstack([a, b]), 2),
            ((2, 1), (2, 3)),
        ),
        "ravel": (Twin(cr.ravel, torch.ravel), ((2, 3),)),
        "flipud": (Twin(cr.flipud, torch.flipud), ((3, 2),)),
        "fliplr": (Twin(cr.fliplr, torch.fliplr), ((3, 2),)),
        "rot90": (
            Twin(lambda a: cr.rot90(a, 3, (1, 0)), lambda a: torch.rot90(a, 3, (1, 0))),
            ((2, 3, 2),),
        ),
        **{
            f"atleast_{n}d": (
                Twin(getattr(cr, f"atleast_{n}d"), getattr(torch, f"atleast_{n}d")),
                ((3,),),
            )
            for n in (1, 2, 3)
        },
        "column_stack": (
            Twin(lambda a, b: cr.column_stack([a, b]), lambda a, b: torch.column_stack([a, b]), 2),
            ((3,), (3, 2)),
        ),
        "row_stack": (
            Twin(lambda a, b: cr.row_stack([a, b]), lambda a, b: torch.vstack([a, b]), 2),
            ((3,), (2, 3)),
        ),
        "cross": (
            Twin(
                lambda a, b: cr.cross(a, b, dim=0), lambda a, b: torch.linalg.cross(a, b, dim=0), 2
            ),
            ((3, 2), (3, 2)),
        ),
        "gradient": (
            Twin(lambda a: cr.gradient(a, axis=1), lambda a: torch.gradient(a, dim=1)[0]),
            ((2, 4),),
        ),
    }
)


_PRODUCTS = ("einsum", "einsum(sum)", "tensordot", "outer", "inner", "kron", "trace", "cross")


@pytest.mark.parametrize("name", list(LINALG))
@SETTINGS
@given(data=st.data(), g=st.sampled_from([1.0, -0.75]))
def test_linear_algebra_matches_torch(name: str, data: Any, g: float) -> None:
    twin, shapes = LINALG[name]
    moves = name.split("(")[0] in ("diagonal", "diag", "tril", "triu") or name not in _PRODUCTS
    pool = list(SPECIAL_SUMMABLE if moves else FINITE_SUMMABLE)
    _run(twin, [data.draw(_arrays(s, pool)) for s in shapes], g)


def test_every_op_has_a_twin_or_a_reason() -> None:
    # ops a user (or a doctest) defined through chainrule.defop are theirs to compare; an op
    # without a derivative (isnan, argsort) has no gradient to compare, only values, which
    # the porting pages' rows compare with torch
    ours = {n for n, op in OPS.items() if not op.user and op.differentiable}
    names = set(TWINS) | set(SCANS) | {n.split("(")[0] for n in LINALG}
    missing = ours - names - set(OPS_WITHOUT_TWIN)
    assert not missing, f"ops with neither a torch twin nor a reason for none: {sorted(missing)}"


def _run(twin: Twin, arrays: list[np.ndarray], g: float, **params: Any) -> None:
    """Value and gradient (upstream g everywhere) of ours and theirs, compared in float64."""
    xs = [cr.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        # NumPy's forward warns at log(0), torch at var's dof <= 0: the values are compared
        warnings.simplefilter("ignore")
        ours = twin.ours(*xs, *params.values())
        theirs = twin.theirs(*ts, *params.values())
        ours.backward(np.full(ours.shape, g))
        theirs.backward(torch.full(theirs.shape, g, dtype=torch.float64))
    # rtol: std of nearly equal values amplifies rounding; atol: torch flushes subnormals
    close = dict(rtol=1e-7, atol=1e-12, equal_nan=True)
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), err_msg="value", **close)
    for i, (x, t) in enumerate(zip(xs, ts)):
        mine = x.grad.data if x.grad is not None else np.zeros(x.shape)
        want = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        np.testing.assert_allclose(mine, want, err_msg=f"gradient of input {i}", **close)


def _arrays(shape: Any, pool: list[float]) -> Any:
    return hnp.arrays(np.float64, shape, elements=st.sampled_from(pool))


ELEMENTWISE = [n for n, t in TWINS.items() if not t.reduction]
REDUCTIONS = [n for n, t in TWINS.items() if t.reduction]


@pytest.mark.parametrize("name", ELEMENTWISE)
@SETTINGS
@given(data=st.data(), g=st.sampled_from([1.0, -0.75, 3.0]))
def test_elementwise_edges_match_torch(name: str, data: Any, g: float) -> None:
    twin = TWINS[name]
    shapes = data.draw(
        hnp.mutually_broadcastable_shapes(num_shapes=twin.arity, max_dims=2, min_side=0, max_side=3)
    )
    arrays = [data.draw(_arrays(s, SPECIAL)) for s in shapes.input_shapes]
    assume(twin.differs is None or not twin.differs(*arrays))
    _run(twin, arrays, g)


@pytest.mark.parametrize("name", REDUCTIONS)
@SETTINGS
@given(data=st.data(), keepdims=st.booleans())
def test_reduction_edges_match_torch(name: str, data: Any, keepdims: bool) -> None:
    twin = TWINS[name]
    x = data.draw(
        _arrays(
            hnp.array_shapes(min_dims=0, max_dims=2, min_side=0, max_side=3),
            list(twin.pool or SPECIAL_SUMMABLE),
        )
    )
    axis = data.draw(st.none() | st.integers(-x.ndim, x.ndim - 1)) if x.ndim else None
    if name in ("max", "min"):  # an empty max is an error in both (tested in test_engine)
        assume(x.size and (axis is None or x.shape[axis]))
    assume(twin.differs is None or not twin.differs(x, axis))
    _run(twin, [x], 0.5, axis=axis, keepdims=keepdims)


# ---------------------------------------------------------------------------- named cases


@pytest.mark.parametrize(
    ("name", "x", "y"),
    [
        ("power", [0.0, 0.0, 0.0, 0.0, -0.0], [2.0, 1.0, 0.5, 0.0, -1.0]),  # issue 9: x**y at 0
        ("power", [0.0, 0.0, 0.0], [-0.5, INF, -INF]),
        ("maximum", [1.0, NAN, 3.0, 2.0], [2.0, 2.0, NAN, 2.0]),  # NaN keeps its gradient
        ("minimum", [1.0, NAN, 3.0, 2.0], [2.0, 2.0, NAN, 2.0]),
    ],
)
def test_binary_cases_from_the_issue(name: str, x: list[float], y: list[float]) -> None:
    _run(TWINS[name], [np.array(x), np.array(y)], 1.0)


@pytest.mark.parametrize(
    ("name", "x", "axis"),
    [
        ("std(ddof=0)", [1.0, 1.0, 1.0], None),  # zero variance: gradient 0, not NaN
        ("std(ddof=1)", [[2.0, 2.0], [1.0, 3.0]], 1),
        ("var(ddof=1)", np.zeros((0, 3)), 0),  # empty axis: NaN
        ("max", [[1.0, NAN, 3.0], [1.0, 3.0, 3.0]], 1),  # NaN slice: NaN gradient (amax)
        ("mean", np.zeros((2, 0)), 1),
        ("logsumexp", np.zeros((2, 0)), 1),  # log(0) = -inf
    ],
)
def test_reduction_cases_from_the_issue(name: str, x: Any, axis: Any) -> None:
    _run(TWINS[name], [np.array(x, dtype=np.float64)], 1.0, axis=axis, keepdims=False)


@pytest.mark.parametrize(
    ("a", "b"), [((0, 3), (3, 2)), ((2, 0), (0, 4)), ((0,), (0,)), ((4,), (2, 4, 3))]
)
def test_matmul_on_empty_and_batched_shapes_matches_torch(a: Any, b: Any) -> None:
    _run(Twin(cr.matmul, torch.matmul, 2), [np.ones(a), np.ones(b)], 1.0)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_with_probability_targets_differentiates_the_target(reduction: str) -> None:
    rng = np.random.default_rng(0)
    z, p = rng.normal(size=(3, 4)), rng.dirichlet(np.ones(4), size=3)
    twin = Twin(
        lambda z, p: F.cross_entropy(z, p, reduction=reduction),
        lambda z, p: TF.cross_entropy(z, p, reduction=reduction),
        2,
    )
    _run(twin, [z, p], 1.0)


def test_float16_mean_accumulates_in_float32_as_torch() -> None:
    x = np.full(70_000, 1.5, dtype=np.float16)
    ours = cr.mean(cr.tensor(x, requires_grad=True))
    theirs = torch.tensor(x).mean()
    assert ours.dtype == np.float16 and ours.item() == theirs.item() == 1.5
