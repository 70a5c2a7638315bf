"""Public functions built from the primitives in `ops.py`; no derivative code lives here.

Also attaches operators and methods to Tensor and fills `ops.TENSOR_NS`, the namespace the
vjps use when the backward pass is recorded. Imports NumPy, `tensor`, `ops` and `random` (the
seeded generator of the creation functions) only.

Calling conventions: every function with an axis takes NumPy's `axis=`/`keepdims=` and
PyTorch's `dim=`/`keepdim=` (keyword-only, after the NumPy ones) and resolves them with
`_dims` (one line: `axis, keepdims = _dims("cumsum", axis, keepdims, dim, keepdim)`), which
refuses both spellings at once. A new function with an `axis` parameter does the same;
`tests/test_conventions.py` checks every public function here for it. Table entries called
directly (`ops.cumsum(x, dim=1)`) rename dim=/keepdim= in `OpDef.__call__`, so an entry's
forward and vjps only ever see NumPy's names.
"""

from __future__ import annotations

import builtins
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, overload

import numpy as np

from chainrule import ops
from chainrule.compile import recomputed
from chainrule.errors import OpError, OpIndexError, OpTypeError
from chainrule.tensor import Tensor, _as_array, apply, is_grad_enabled

ArrayLike = Any

# --------------------------------------------------------------------------- construction


def tensor(
    data: ArrayLike, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """Make a leaf Tensor from nested lists, a number, a NumPy array or a Tensor (copied).

    Python floats become float32; NumPy arrays keep their dtype (float64 stays float64).
    Tensors that require grad are never silently cut from their graph: `tensor(x)` is then a
    connected copy of x and `tensor([x, 2 * x])` stacks them, as autograd's `np.array` does
    (so the result is not a leaf; `x.detach()` makes one).

    Parameters
    ----------
    data : array_like
    dtype : NumPy dtype, optional
    requires_grad : bool
        Track operations on it so `backward()` can fill its `.grad`. Needs a float dtype.
    name : str, optional
        A label shown by `chainrule.viz` and in traces.

    Raises
    ------
    TypeError
        If `requires_grad` is set on a non-floating dtype.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.tensor([1.0, 2.0]).dtype
    dtype('float32')
    >>> cr.tensor(0.5, requires_grad=True, name="w1")
    tensor(0.5, requires_grad=True, name='w1')
    """
    if _batched(data):  # inside vmap: a copy is the batched tensor itself (never mutated)
        return data if dtype is None else astype(data, dtype)
    if isinstance(data, Tensor) and data.requires_grad and is_grad_enabled():
        # a copy that stays connected, as autograd's np.array(x); x.detach() makes a new leaf
        t = ops.astype(data, dtype=np.dtype(dtype or data.dtype))
        t.name = name
        return t
    if isinstance(data, (list, tuple)) and _holds_tensor(data):
        t = _stack_nested(data)  # stays connected to the tensors inside, as autograd's np.array
        t = t if dtype is None else astype(t, dtype)
        if requires_grad and not t.requires_grad:
            t.requires_grad_()
        t.name = name
        return t
    arr = _as_array(data, dtype)
    if isinstance(data, (np.ndarray, Tensor)):
        arr = arr.copy()
    return Tensor(arr, requires_grad=requires_grad, name=name)


def _holds_tensor(data: Any) -> bool:
    if isinstance(data, Tensor):
        return True
    return isinstance(data, (list, tuple)) and builtins.any(_holds_tensor(d) for d in data)


def _stack_nested(data: Any) -> Tensor:
    """Nested lists/tuples holding Tensors, stacked level by level into one connected Tensor."""
    if isinstance(data, Tensor):
        return data
    if not _holds_tensor(data):
        return tensor(data)
    return stack([_stack_nested(d) for d in data])


def from_numpy(array: np.ndarray, requires_grad: bool = False) -> Tensor:
    """A leaf Tensor that shares memory with `array` (no copy, dtype kept)."""
    return Tensor(np.asarray(array), requires_grad=requires_grad)


def _leaf(t: Tensor, requires_grad: bool) -> Tensor:
    """A new tensor of the table's creation entries as a leaf (to differentiate, if asked)."""
    return Tensor(t.data, requires_grad=True) if requires_grad else t


def zeros(*shape: Any, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    return _leaf(ops.zeros(shape=_shape_arg(shape), dtype=dtype), requires_grad)


def ones(*shape: Any, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    return _leaf(ops.ones(shape=_shape_arg(shape), dtype=dtype), requires_grad)


def _like(x: ArrayLike) -> tuple[tuple[int, ...], Any]:
    """x's shape and dtype (one example's inside vmap: the same values for every example)."""
    if _batched(x):
        return x.shape, x.dtype
    a = np.asarray(_data(x))
    return a.shape, a.dtype


def zeros_like(x: ArrayLike, requires_grad: bool = False) -> Tensor:
    shape, dtype = _like(x)
    return _leaf(ops.zeros(shape=shape, dtype=dtype), requires_grad)


def ones_like(x: ArrayLike, requires_grad: bool = False) -> Tensor:
    shape, dtype = _like(x)
    return _leaf(ops.ones(shape=shape, dtype=dtype), requires_grad)


def full(
    shape: Any, value: float, dtype: Any = np.float32, *, requires_grad: bool = False
) -> Tensor:
    """An array of `shape` filled with `value` (float32 unless `dtype` says otherwise)."""
    size = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _leaf(ops.full(shape=size, value=value, dtype=dtype), requires_grad)


def arange(*args: Any, dtype: Any = None) -> Tensor:
    """NumPy's arange; float bounds or step give float32 (the default float dtype, as torch).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.arange(0, 1, 0.25).dtype, cr.arange(3).dtype
    (dtype('float32'), dtype('int64'))
    """
    if dtype is None and builtins.any(isinstance(a, float) for a in args):
        dtype = np.float32
    if not 1 <= len(args) <= 3:
        raise TypeError(f"arange: takes 1 to 3 positional arguments, got {len(args)}")
    start, stop, step = (0, args[0], 1) if len(args) == 1 else (*args, 1)[:3]
    return ops.arange(start=start, stop=stop, step=step, dtype=dtype)


def eye(
    n: int,
    m: int | None = None,
    dtype: Any = np.float32,
    *,
    k: int = 0,
    requires_grad: bool = False,
) -> Tensor:
    """An n x m matrix (n x n by default) with ones on the k-th diagonal (NumPy's eye, PyTorch's
    eye(n, m)).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.eye(2, 3).tolist()
    [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    """
    if n < 0 or (m is not None and m < 0):
        raise ValueError(f"eye: sizes must be non-negative, got n={n}, m={m}")
    return _leaf(ops.eye(n=n, m=m, k=k, dtype=dtype), requires_grad)


def _shape_arg(shape: tuple[Any, ...]) -> tuple[int, ...]:
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def _data(x: Any) -> Any:
    # a vmap BatchTensor stays itself: its per-example values exist only inside ops
    return x.data if isinstance(x, Tensor) and not _batched(x) else x


def _batched(x: Any) -> bool:
    """Whether x is a vmap BatchTensor (batching.py), whose values only ops may read."""
    return bool(getattr(x, "_level", 0))


def _t(x: Any) -> Tensor:
    """Wrap a lone non-Tensor argument so Python floats follow the float32 default."""
    return x if isinstance(x, Tensor) else tensor(x)


def _pair(x: Any, y: Any) -> tuple[Any, Any]:
    """Both operands, x wrapped only when neither is a Tensor: a Python number beside a tensor
    stays a number, which NumPy lets the tensor's dtype absorb (3 / float32 is float32); as
    a 0-d array it would promote (an int64 0-d array / float32 is float64)."""
    return (x, y) if isinstance(x, Tensor) or isinstance(y, Tensor) else (tensor(x), y)


def _dims(
    name: str,
    axis: Any,
    keepdims: bool,
    dim: Any,
    keepdim: bool | None = None,
    default: Any = None,
) -> tuple[Any, bool]:
    """NumPy's (axis, keepdims) from either spelling: PyTorch's dim=/keepdim= or NumPy's.

    Raises
    ------
    TypeError
        If both spellings of one argument are given (`axis=` and `dim=`). `default` is the
        function's own default axis (softmax's -1), which does not count as given.
    """
    if dim is not None:
        if axis is not default and axis != default:
            raise TypeError(f"{name}: got both axis={axis!r} and dim={dim!r}; give one")
        axis = dim
    if keepdim is not None:
        if keepdims:
            raise TypeError(f"{name}: got both keepdims= and keepdim=; give one")
        keepdims = keepdim
    return _axis(axis), bool(keepdims)


# --------------------------------------------------------------------------- elementwise


def add(x: ArrayLike, y: ArrayLike) -> Tensor:
    """x + y with broadcasting."""
    return ops.add(*_pair(x, y))


def subtract(x: ArrayLike, y: ArrayLike) -> Tensor:
    return ops.sub(*_pair(x, y))


def multiply(x: ArrayLike, y: ArrayLike) -> Tensor:
    return ops.mul(*_pair(x, y))


def divide(x: ArrayLike, y: ArrayLike, *, rounding_mode: str | None = None) -> Tensor:
    """x / y; integers divide into the default float dtype, float32, as in PyTorch.

    `rounding_mode` is torch.div's: 'floor' is x // y, 'trunc' rounds toward zero; both keep
    an integer dtype, and their gradient is 0 (floor's and trunc's).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.divide(cr.tensor([7, -7]), 2, rounding_mode="trunc").tolist()
    [3, -3]
    """
    from chainrule.methods import floor_divide, remainder

    if rounding_mode == "floor":
        return floor_divide(*_pair(x, y))
    if rounding_mode == "trunc":
        x, y = _pair(x, y)
        if _integral(x) and _integral(y):
            # floor, plus one where the exact quotient is a negative non-integer
            q = floor_divide(x, y)
            return q + ((remainder(x, y) != 0) & ((_t(x) < 0) ^ (_t(y) < 0))).astype(q.dtype)
        return trunc(divide(x, y))
    if rounding_mode is not None:
        raise ValueError(
            f"divide: rounding_mode must be None, 'floor' or 'trunc', got {rounding_mode!r}"
        )
    x, y = _pair(x, y)
    return ops.div(*_float_if_integers(x, y))


def _integral(v: Any) -> bool:
    return type(v) in (int, bool) or getattr(v, "dtype", np.dtype(float)).kind in "biu"


def _float_if_integers(x: Any, y: Any) -> tuple[Any, Any]:
    """x and y with an integer Tensor made float32 when both are integers: int / int is the
    default float dtype in PyTorch (NumPy gives float64). Integers never require grad."""
    if _integral(x) and _integral(y):
        return tuple(
            Tensor(v.data.astype(np.float32)) if isinstance(v, Tensor) else v for v in (x, y)
        )  # type: ignore[return-value]
    return x, y


def power(x: ArrayLike, y: ArrayLike) -> Tensor:
    """x ** y in all three forms: x**3, a**x (the seed's a^x) and x**y."""
    return ops.power(x, y) if isinstance(y, Tensor) else ops.power(_t(x), y)


def exp(x: ArrayLike) -> Tensor:
    """e ** x.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(0.0, requires_grad=True)
    >>> cr.exp(x).backward(); x.grad.item()
    1.0
    """
    return ops.exp(_t(x))


def log(x: ArrayLike, base: float | None = None) -> Tensor:
    """Natural log, or log base `base` (the seed's log_a x = ln x / ln a).

    Examples
    --------
    >>> import chainrule as cr
    >>> round(cr.log(cr.tensor(8.0), 2).item(), 6)
    3.0
    """
    y = ops.log(_t(x))
    return y if base is None else y / math.log(base)


def _unary(op: ops.OpDef) -> Callable[[ArrayLike], Tensor]:
    if op.compose is None:  # a primitive: straight to `apply`, as the operators (2 frames less)

        def f(x: ArrayLike) -> Tensor:
            return apply(op, x if isinstance(x, Tensor) else tensor(x))

    else:

        def f(x: ArrayLike) -> Tensor:
            return op(_t(x))

    f.__name__ = f.__qualname__ = op.name
    f.__doc__ = f"Elementwise {op.name}: {op.doc}."
    return f


log2 = _unary(ops.log2)
log10 = _unary(ops.log10)
sqrt = _unary(ops.sqrt)
sin = _unary(ops.sin)
cos = _unary(ops.cos)
tan = _unary(ops.tan)
arcsin = _unary(ops.arcsin)
arccos = _unary(ops.arccos)
arctan = _unary(ops.arctan)
sinh = _unary(ops.sinh)
arcsinh = _unary(ops.arcsinh)
arccosh = _unary(ops.arccosh)
arctanh = _unary(ops.arctanh)
cosh = _unary(ops.cosh)
tanh = _unary(ops.tanh)
sigmoid = _unary(ops.sigmoid)
relu = _unary(ops.relu)
erf = _unary(ops.erf)
abs = _unary(ops.abs)
negative = _unary(ops.neg)


def maximum(x: ArrayLike, y: ArrayLike) -> Tensor:
    """Elementwise max; at ties each input gets half the gradient (as PyTorch)."""
    return ops.maximum(*_pair(x, y))


def minimum(x: ArrayLike, y: ArrayLike) -> Tensor:
    """Elementwise min; at ties each input gets half the gradient (as PyTorch)."""
    return ops.minimum(*_pair(x, y))


def clip(x: ArrayLike, a_min: Any = None, a_max: Any = None) -> Tensor:
    """Clamp to [a_min, a_max]; the gradient passes where a_min <= x <= a_max."""
    if a_min is None and a_max is None:
        raise OpError("clip: give a_min, a_max or both")
    return ops.clip(_t(x), a_min=_data(a_min), a_max=_data(a_max))


def where(condition: ArrayLike, x: ArrayLike, y: ArrayLike) -> Tensor:
    """x where condition holds, else y; the condition gets no gradient."""
    c = _data(condition)
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        x = tensor(x)
    return ops.where(c, x, y)


sign = _unary(ops.sign)
floor = _unary(ops.floor)
ceil = _unary(ops.ceil)
cbrt = _unary(ops.cbrt)


def astype(x: Tensor, dtype: Any) -> Tensor:
    """Cast; gradients are cast back to x's dtype."""
    return x if x.dtype == np.dtype(dtype) else ops.astype(x, dtype=np.dtype(dtype))


# --------------------------------------------------------------------------- activations


def leaky_relu(x: ArrayLike, alpha: float = 0.01) -> Tensor:
    """x if x > 0 else alpha * x; derivative alpha at x <= 0, as the seed defines it."""
    return ops.leaky_relu(_t(x), alpha=alpha)


def elu(x: ArrayLike, alpha: float = 1.0) -> Tensor:
    """x if x > 0 else alpha * (e^x - 1); slope alpha * e^x at x <= 0 (alpha at 0, as torch)."""
    return ops.elu(_t(x), alpha=alpha)


silu = _unary(ops.silu)
swish = silu


def gelu(x: ArrayLike, approximate: str = "none") -> Tensor:
    """x * Phi(x), Phi the standard normal CDF; approximate='tanh' uses the tanh formula."""
    x = _t(x)
    if approximate == "tanh":
        return 0.5 * x * (1 + ops.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))
    if approximate != "none":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return ops.gelu(x)


def logsumexp(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """log(sum(exp(x))) computed stably (shifted by the max)."""
    axis, keepdims = _dims("logsumexp", axis, keepdims, dim, keepdim)
    return ops.logsumexp(_t(x), axis=axis, keepdims=keepdims)


def log_softmax(x: ArrayLike, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """x - logsumexp(x): finite even for huge logits.

    Computed as s - logsumexp(s) with s = x - max(x), the max taken as a constant (a constant
    shift changes neither the value nor any derivative): subtracting logsumexp(x) from x
    directly loses the result's digits for large x (1e10 - (1e10 + ln 2) is off by 2e-7).
    """
    axis = _dims("log_softmax", axis, False, dim, default=-1)[0]
    x = _t(x)
    if _batched(x):  # inside vmap the shift is a batched constant too (no -inf guard)
        s = x - ops.max(x.detach(), axis=axis, keepdims=True)
        return s - ops.logsumexp(s, axis=axis, keepdims=True)
    s = x - _from_values(_max_shift, x.data, axis)
    return s - ops.logsumexp(s, axis=axis, keepdims=True)


@recomputed  # chainrule.compile computes it again on every replay, from the fresh values
def _from_values(f: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """f(*args, **kwargs): an index, mask or shift computed in NumPy from tensors' values."""
    return f(*args, **kwargs)


def _max_shift(a: np.ndarray, axis: int) -> np.ndarray:
    """max(a) along axis, in a's dtype; an all -inf (or empty) slice is not shifted (0), and a
    +inf makes its slice NaN, as in torch."""
    m = np.max(a, axis=axis, keepdims=True, initial=-np.inf)
    return np.where(m == -np.inf, 0, m).astype(a.dtype)


def softmax(x: ArrayLike, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """exp(x_i) / sum_j exp(x_j), computed as exp(log_softmax(x)) so it never overflows."""
    return ops.exp(log_softmax(x, _dims("softmax", axis, False, dim, default=-1)[0]))


def softmax_cross_entropy(logits: ArrayLike, labels: Any, mean: bool = False) -> Tensor:
    """Per-row cross-entropy logsumexp(z) - z[label] from logits and integer labels, fused.

    One op (its gradient is softmax(z) - onehot(labels), seed 002) instead of logsumexp,
    an index and a subtraction. `logits` has shape (N, C) with labels (N,), or (C,) with a
    scalar label. With `mean`, the mean over rows is fused in too (one op for the whole loss).
    Labels must be integers in 0..C-1 (a negative one would silently pick another class);
    `nn.functional.cross_entropy` checks them its own way and calls the op directly.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.composite import softmax_cross_entropy
    >>> z = cr.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    >>> loss = softmax_cross_entropy(z, [0])
    >>> round(loss.item(), 4)
    0.2395
    """
    z = _t(logits)
    labels = labels if _batched(labels) else np.asarray(_data(labels))
    if not _batched(labels):
        if labels.dtype.kind not in "iu":
            raise TypeError(
                f"softmax_cross_entropy: labels must be integers, got dtype {labels.dtype}"
            )
        _check_labels("softmax_cross_entropy", labels, z.shape[-1])
    if mean:
        return ops.softmax_cross_entropy(z, labels=labels, mean=True)
    return ops.softmax_cross_entropy(z, labels=labels)


def _check_labels(name: str, labels: np.ndarray, n_classes: int, keep: Any = None) -> None:
    """Refuse, in one line naming the first, a class label outside 0..n_classes-1 (among the
    labels `keep` marks, when given: an ignored label may be anything). The one range check of
    the losses that index by label (`F.cross_entropy`, `nll_loss`, `softmax_cross_entropy`)."""
    bad = (labels < 0) | (labels >= n_classes)
    if keep is not None:
        bad &= keep
    if bad.any():
        raise ValueError(
            f"{name}: target label {labels[bad].flat[0]} is out of range for {n_classes} "
            f"classes (valid labels are 0..{n_classes - 1})"
        )


# --------------------------------------------------------------------------- reductions


def sum(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
    dtype: Any = None,
    out: None = None,
) -> Tensor:
    """Sum over `axis` (all axes by default); `dim`/`keepdim` are PyTorch's spellings, and
    `dtype` (the dtype to add in) and `out=None` NumPy's, so `numpy.sum(tensor)` works.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.tensor([[1.0, 2.0], [3.0, 4.0]]).sum(dim=1).tolist()
    [3.0, 7.0]
    """
    axis, keepdims = _dims("sum", axis, keepdims, dim, keepdim)
    return ops.sum(_numpy_reduced("sum", x, dtype, out), axis=axis, keepdims=keepdims)


def _numpy_reduced(name: str, x: ArrayLike, dtype: Any, out: Any) -> Tensor:
    """x for a reduction called NumPy's way (numpy.sum(tensor) passes dtype= and out=): in
    `dtype` when one is given; an `out` array is refused (results are new tensors)."""
    if out is not None:
        raise TypeError(f"{name}: out= is not supported (chainrule's results are new tensors)")
    return _t(x) if dtype is None else astype(_t(x), dtype)


def mean(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Arithmetic mean over `axis`; NaN over an empty axis, as NumPy and PyTorch.

    float16 is summed in float32 (as NumPy and PyTorch do): 70,000 ones would overflow
    float16's largest value, 65,504, and the mean would be inf instead of 1.
    """
    axis, keepdims = _dims("mean", axis, keepdims, dim, keepdim)
    x = _t(x)
    n = _count(x.shape, axis)
    wide = _accumulator(x)
    if n:
        m = ops.sum(wide, axis=_axis(axis), keepdims=keepdims) / n
    else:  # 0 / 0: NaN, without NumPy's warning
        m = _nan_sum(wide, axis, keepdims)
    return m if wide is x else astype(m, x.dtype)


def _accumulator(x: Tensor) -> Tensor:
    """x in the dtype reductions should add in: float32 for float16, else x itself."""
    return astype(x, np.float32) if x.dtype == np.float16 else x


def _nan_sum(x: Tensor, axis: Any, keepdims: bool) -> Tensor:
    """The sum over an empty axis times NaN: the mean's value there, still connected to x."""
    return ops.sum(x, axis=_axis(axis), keepdims=keepdims) * np.nan


class ValuesIndices(NamedTuple):
    """What `max`/`min` return when called PyTorch's way (`dim=` given): torch.return_types."""

    values: Tensor
    indices: Tensor


@overload
def max(x: ArrayLike, axis: Any = None, keepdims: bool = False, *, out: None = None) -> Tensor: ...
@overload
def max(
    x: ArrayLike, axis: Any = None, keepdims: bool = False, *, dim: int, keepdim: bool = False
) -> ValuesIndices: ...
def max(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: int | None = None,
    keepdim: bool | None = None,
    out: None = None,
) -> Tensor | ValuesIndices:
    """Largest element over `axis`; tied maxima share the gradient.

    Called PyTorch's way, with `dim=`, it returns `(values, indices)` as torch.max does, and
    the gradient goes to the one element `indices` names (the first of tied maxima). With a
    tensor in place of the axis, `x.max(y)` is `maximum(x, y)`, as torch.max(x, other).

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([[1.0, 5.0, 2.0]])
    >>> x.max(axis=1).tolist()
    [5.0]
    >>> x.max(dim=1).indices.tolist()
    [1]
    """
    return _extremum("max", _numpy_reduced("max", x, None, out), axis, keepdims, dim, keepdim)


@overload
def min(x: ArrayLike, axis: Any = None, keepdims: bool = False, *, out: None = None) -> Tensor: ...
@overload
def min(
    x: ArrayLike, axis: Any = None, keepdims: bool = False, *, dim: int, keepdim: bool = False
) -> ValuesIndices: ...
def min(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: int | None = None,
    keepdim: bool | None = None,
    out: None = None,
) -> Tensor | ValuesIndices:
    """Smallest element over `axis`; tied minima share the gradient.

    With `dim=` it returns `(values, indices)`, as torch.min does (see `max`).
    """
    return _extremum("min", _numpy_reduced("min", x, None, out), axis, keepdims, dim, keepdim)


def _extremum(
    name: str, x: ArrayLike, axis: Any, keepdims: bool, dim: int | None, keepdim: bool | None
) -> Tensor | ValuesIndices:
    """max and min: torch's (values, indices) with dim=, the elementwise maximum/minimum with
    a tensor in place of the axis (torch.max(x, other)), else the reduction."""
    arg, elementwise, reduce = _EXTREMA[name]
    if dim is not None:
        return _extremum_at(x, name, arg, axis, keepdims, dim, keepdim)
    if isinstance(axis, Tensor):
        return elementwise(x, axis)
    axis, keepdims = _dims(name, axis, keepdims, None, keepdim)
    x = _t(x)
    _check_nonempty(x, axis, name)
    return reduce(x, axis=_axis(axis), keepdims=keepdims)


def _extremum_at(
    x: ArrayLike,
    name: str,
    arg: Callable[..., Any],
    axis: Any,
    keepdims: bool,
    dim: int,
    keepdim: bool | None,
) -> ValuesIndices:
    """torch.max(x, dim): the values picked by index, so the gradient reaches that element
    only (torch's rule), not every tied one as the reduction's does."""
    d, keep = _dims(name, axis, keepdims, dim, keepdim)
    x = _t(x)
    if not isinstance(d, int):
        raise TypeError(f"{name}: dim must be one integer, got {d!r}")
    if x.ndim and x.shape[d % x.ndim] == 0:
        raise ValueError(f"{name}: reduction over dim {d} of size 0 (shape {x.shape})")
    d = d % x.ndim if x.ndim else 0
    idx = _from_values(arg, x.data, axis=d, keepdims=True) if x.ndim else np.zeros((), np.int64)
    index = tuple(
        idx if i == d else np.arange(n).reshape([-1 if j == i else 1 for j in range(x.ndim)])
        for i, n in enumerate(x.shape)
    )
    values = getitem(x, index) if x.ndim else x + 0
    if not keep and x.ndim:
        values, idx = squeeze(values, d), np.squeeze(idx, d)
    return ValuesIndices(values, Tensor(idx))


_EXTREMA: dict[str, tuple[Callable[..., Any], Callable[..., Tensor], ops.OpDef]] = {
    "max": (np.argmax, maximum, ops.max),
    "min": (np.argmin, minimum, ops.min),
}


def var(
    x: ArrayLike,
    axis: Any = None,
    ddof: int | None = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
    correction: int | None = None,
) -> Tensor:
    """Variance with NumPy's default ddof=0 (PyTorch's default is correction=1).

    `ddof` (NumPy) and `correction` (PyTorch) are the same number: the divisor is the count
    minus it. With ddof >= the number of elements it is inf (0/0 = NaN for equal elements),
    never negative, and NaN over an empty axis, as NumPy and PyTorch (without NumPy's warning).

    Raises
    ------
    TypeError
        If both `ddof` and `correction` (or both `axis` and `dim`) are given.
    """
    axis, keepdims = _dims("var", axis, keepdims, dim, keepdim)
    ddof = _ddof("var", ddof, correction)
    x = _t(x)
    wide = _accumulator(x)
    d = wide - mean(wide, axis, keepdims=True)
    dof = builtins.max(_count(x.shape, axis) - ddof, 0)
    ss = ops.sum(d * d, axis=_axis(axis), keepdims=keepdims)
    with np.errstate(divide="ignore", invalid="ignore"):
        v = ss / dof if dof else ss * np.inf  # inf, or NaN where every deviation is 0
    return v if wide is x else astype(v, x.dtype)


def _ddof(name: str, ddof: int | None, correction: int | None) -> int:
    if ddof is not None and correction is not None:
        raise TypeError(f"{name}: got both ddof={ddof} and correction={correction}; give one")
    return int(ddof if ddof is not None else correction if correction is not None else 0)


def std(
    x: ArrayLike,
    axis: Any = None,
    ddof: int | None = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
    correction: int | None = None,
) -> Tensor:
    """Standard deviation, sqrt(var) (NumPy's default ddof=0; PyTorch's is correction=1).

    Its gradient is 0 where the variance is 0, as PyTorch: sqrt'(0) is inf and the variance's
    gradient there is 0, so the chain would give NaN; sqrt is taken of 1 where the variance
    is 0, which keeps that branch finite.
    """
    axis, keepdims = _dims("std", axis, keepdims, dim, keepdim)
    v = var(x, axis, _ddof("std", ddof, correction), keepdims)
    if _batched(v):  # inside vmap: per-example values decide, so both branches are batched
        return where(v == 0, 0.0, ops.sqrt(where(v == 0, 1.0, v)))
    zero = v.data == 0
    if not zero.any():
        return ops.sqrt(v)
    return where(zero, 0.0, ops.sqrt(where(zero, 1.0, v)))


def argmax(
    x: ArrayLike,
    axis: int | None = None,
    keepdims: bool = False,
    *,
    dim: int | None = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Index of the largest element (flat index without an axis); NaN counts as largest."""
    axis, keepdims = _dims("argmax", axis, keepdims, dim, keepdim)
    return ops.argmax(_t(x), axis=axis, keepdims=keepdims)


def argmin(
    x: ArrayLike,
    axis: int | None = None,
    keepdims: bool = False,
    *,
    dim: int | None = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Index of the smallest element (flat index without an axis)."""
    axis, keepdims = _dims("argmin", axis, keepdims, dim, keepdim)
    return ops.argmin(_t(x), axis=axis, keepdims=keepdims)


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _count(shape: tuple[int, ...], axis: Any) -> int:
    return math.prod(shape[a] for a in ops._axes(len(shape), _axis(axis)))


def _check_nonempty(x: Tensor, axis: Any, name: str) -> None:
    if x.size == 0:
        raise ValueError(f"{name}: reduction over an empty tensor of shape {x.shape}")


# --------------------------------------------------------------------------- linear algebra


def matmul(x: ArrayLike, y: ArrayLike) -> Tensor:
    """Matrix product with NumPy's rules: vectors, matrices and batches."""
    return ops.matmul(_t(x), y)


def dot(x: ArrayLike, y: ArrayLike) -> Tensor:
    """NumPy's dot: a product for 0-d operands, matmul up to 2-D, and for N-D operands the
    sum over x's last axis and y's second-to-last (not matmul's batching).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> a, b = np.ones((2, 3, 4)), np.ones((5, 4, 6))
    >>> cr.dot(a, b).shape == np.dot(a, b).shape == (2, 3, 5, 6)
    True
    """
    x, y = _t(x), _t(y)
    if x.ndim == 0 or y.ndim == 0:
        return x * y
    if (x.ndim <= 2 and y.ndim <= 2) or y.ndim == 1:
        return matmul(x, y)  # one of the forms where dot and matmul agree
    if x.shape[-1] != y.shape[-2]:
        raise ValueError(
            f"dot: shapes {x.shape} and {y.shape} are not aligned "
            f"({x.shape[-1]} (dim {x.ndim - 1}) != {y.shape[-2]} (dim {y.ndim - 2}))"
        )
    k = x.shape[-1]
    # y's contracted axis moved to the front: y becomes (k, everything else), x becomes (rest, k)
    axes = (y.ndim - 2, *range(y.ndim - 2), y.ndim - 1)
    y2 = reshape(transpose(y, axes), (k, -1))
    out = matmul(reshape(x, (-1, k)), y2)
    return reshape(out, (*x.shape[:-1], *y.shape[:-2], y.shape[-1]))


def linear(x: ArrayLike, weight: ArrayLike, bias: ArrayLike | None = None) -> Tensor:
    """x @ weight.T + bias as one fused op, with weight of shape (out_features, in_features).

    PyTorch's `F.linear` layout. `x` has shape (..., in_features): a vector, a batch of rows,
    or any leading batch axes; `bias`, if given, has shape (out_features,). The gradients are
    g @ W for x, g^T x (summed over the batch axes) for W and g summed over them for b.

    Raises
    ------
    ValueError
        If weight is not 2-D, or x's last dimension or bias's shape does not match it.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.composite import linear
    >>> w = cr.tensor([[1.0, 2.0], [0.0, 1.0], [1.0, 0.0]], requires_grad=True)
    >>> y = linear(cr.tensor([[3.0, 4.0]]), w, cr.tensor([0.5, 0.5, 0.5]))
    >>> y.tolist()
    [[11.5, 4.5, 3.5]]
    >>> y.sum().backward(); w.grad.tolist()
    [[3.0, 4.0], [3.0, 4.0], [3.0, 4.0]]
    """
    x, w = _t(x), _t(weight)
    if w.ndim != 2:
        raise ValueError(
            f"linear: weight must have shape (out_features, in_features), got {w.shape}"
        )
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"linear: input of shape {x.shape} does not match weight of shape {w.shape} "
            f"(expected {w.shape[1]} features in the input's last dimension)"
        )
    if bias is None:
        return apply(ops.linear, x, w)
    b = _t(bias)
    if b.shape != (w.shape[0],):
        raise ValueError(
            f"linear: bias must have shape ({w.shape[0]},) for weight of shape {w.shape}, "
            f"got {b.shape}"
        )
    return apply(ops.linear, x, w, b)


# --------------------------------------------------------------------------- shapes


def reshape(x: ArrayLike, *shape: Any) -> Tensor:
    return ops.reshape(_t(x), shape=_shape_arg(shape))


def transpose(x: ArrayLike, axes: Sequence[int] | None = None) -> Tensor:
    return ops.transpose(_t(x), axes=None if axes is None else tuple(axes))


def swapaxes(x: ArrayLike, axis1: int, axis2: int) -> Tensor:
    x = _t(x)
    axes = list(range(x.ndim))
    axes[axis1], axes[axis2] = axes[axis2], axes[axis1]
    return ops.transpose(x, axes=tuple(axes))


def broadcast_to(x: ArrayLike, shape: Sequence[int]) -> Tensor:
    return ops.broadcast_to(_t(x), shape=tuple(shape))


def expand(x: ArrayLike, *shape: Any) -> Tensor:
    """broadcast_to with PyTorch's spelling; -1 keeps a dimension."""
    x = _t(x)
    shape = _shape_arg(shape)
    lead = len(shape) - x.ndim
    full_shape = tuple(x.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    return ops.broadcast_to(x, shape=full_shape)


def expand_dims(x: ArrayLike, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """A new axis of size 1 at `axis` (PyTorch: `unsqueeze(dim)`)."""
    axis = _dims("expand_dims", axis, False, dim)[0]
    if axis is None:
        raise TypeError("expand_dims: give the new axis (axis= or dim=)")
    x = _t(x)
    return ops.reshape(x, shape=np.expand_dims(np.empty(x.shape, bool), axis).shape)


unsqueeze = expand_dims


def squeeze(x: ArrayLike, axis: Any = None, *, dim: Any = None) -> Tensor:
    """Remove axes of size 1 (all of them, or those in `axis`). NumPy's `axis=` refuses an axis
    whose size is not 1; PyTorch's `dim=` leaves it, as PyTorch does.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.squeeze(cr.ones(1, 3), dim=(0, 1)).shape
    (3,)
    """
    x = _t(x)
    if dim is not None and axis is None:
        dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
        axes = [_one_axis("squeeze", x, d) % builtins.max(x.ndim, 1) for d in dims]
        axis = tuple(a for a in axes if x.ndim and x.shape[a] == 1)
    else:
        axis = _dims("squeeze", axis, False, dim)[0]
    return ops.reshape(x, shape=np.squeeze(np.empty(x.shape, bool), axis).shape)


def flatten(x: ArrayLike, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """Merge the axes start_dim..end_dim (inclusive, as torch.flatten) into one."""
    x = _t(x)
    if x.ndim == 0:
        return ops.reshape(x, shape=(1,))
    start, end = start_dim % x.ndim, end_dim % x.ndim
    if start > end:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = math.prod(x.shape[start : end + 1])
    return ops.reshape(x, shape=(*x.shape[:start], merged, *x.shape[end + 1 :]))


def concatenate(xs: Sequence[ArrayLike], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along an existing axis (PyTorch: `cat(xs, dim)`)."""
    axis = _dims("concatenate", axis, False, dim, default=0)[0]
    if len(xs) == 0:
        raise ValueError("concatenate: need at least one tensor")
    xs = [_t(x) for x in xs]
    return ops.concatenate(*xs, axis=axis)


cat = concatenate


def stack(xs: Sequence[ArrayLike], axis: int = 0, *, dim: int | None = None) -> Tensor:
    """Join tensors along a new axis."""
    axis = _dims("stack", axis, False, dim, default=0)[0]
    if len(xs) == 0:
        raise ValueError("stack: need at least one tensor")
    shapes = {_t(x).shape for x in xs}
    if len(shapes) > 1:
        raise ValueError(f"stack: all tensors must have the same shape, got {sorted(shapes)}")
    return concatenate([expand_dims(x, axis) for x in xs], axis=axis)


def split(
    x: ArrayLike, indices_or_sections: Any, axis: int = 0, *, dim: int | None = None
) -> list[Tensor]:
    """NumPy's split: into n equal parts, or at the given indices.

    PyTorch's `split(size, dim)` means pieces of that size: `x.split(2, dim=0)` here gives two
    parts; the porting pages say so.
    """
    return _split("split", x, indices_or_sections, axis, dim, equal=True)


def array_split(
    x: ArrayLike, indices_or_sections: Any, axis: int = 0, *, dim: int | None = None
) -> list[Tensor]:
    """NumPy's array_split: as `split`, but n parts need not be equal: the first
    `size % n` parts take one element more."""
    return _split("array_split", x, indices_or_sections, axis, dim, equal=False)


def vsplit(x: ArrayLike, indices_or_sections: Any) -> list[Tensor]:
    """NumPy's vsplit: `split` along axis 0 of an at least 2-d tensor."""
    return _split("vsplit", x, indices_or_sections, 0, None, equal=True, ndim=2)


def hsplit(x: ArrayLike, indices_or_sections: Any) -> list[Tensor]:
    """NumPy's hsplit: `split` along axis 1 (axis 0 of a 1-d tensor)."""
    x = _t(x)
    axis = 0 if x.ndim == 1 else 1
    return _split("hsplit", x, indices_or_sections, axis, None, equal=True, ndim=1)


def dsplit(x: ArrayLike, indices_or_sections: Any) -> list[Tensor]:
    """NumPy's dsplit: `split` along axis 2 of an at least 3-d tensor."""
    return _split("dsplit", x, indices_or_sections, 2, None, equal=True, ndim=3)


def _split(
    name: str, x: ArrayLike, parts: Any, axis: int, dim: int | None, *, equal: bool, ndim: int = 1
) -> list[Tensor]:
    """The pieces of x along `axis`: `parts` equal (or, unless `equal`, nearly equal) parts,
    or cut at the given indices (clamped to the axis, as NumPy's slices are)."""
    axis = _dims(name, axis, False, dim, default=0)[0]
    x = _t(x)
    if x.ndim < ndim:
        raise ValueError(f"{name}: needs at least a {ndim}-d input, got shape {x.shape}")
    ax = _one_axis(name, x, axis) % x.ndim
    n = x.shape[ax]
    if isinstance(parts, (int, np.integer)) and not isinstance(parts, bool):
        count = int(parts)
        if count <= 0:
            raise ValueError(f"{name}: the number of sections must be positive, got {count}")
        if equal and n % count:
            raise ValueError(
                f"{name}: axis {axis} of size {n} does not divide into {count} equal parts"
            )
        size, extra = divmod(n, count)
        bounds = [0]
        for i in range(count):
            bounds.append(bounds[-1] + size + (i < extra))
    else:
        cuts = np.asarray(parts)
        if cuts.ndim != 1 or (cuts.size and cuts.dtype.kind not in "iu"):
            raise ValueError(f"{name}: indices must be a 1-d sequence of integers, got {parts!r}")
        bounds = [0, *cuts.tolist(), n]
    return _pieces(x, ax, bounds)


def _pieces(x: Tensor, ax: int, bounds: Sequence[int]) -> list[Tensor]:
    """x cut along axis `ax` between consecutive `bounds` (slices: clamped, as NumPy's)."""
    pre = (slice(None),) * ax
    # Indices built outside the subscript: mypy misreads x[(*pre, s)] as 3.11-only x[*pre, s].
    indices = [(*pre, slice(a, b)) for a, b in itertools.pairwise(bounds)]
    return [x[i] for i in indices]


def getitem(x: Tensor, index: Any) -> Tensor:
    return ops.getitem(x, index=_index(index))


def _index(index: Any) -> Any:
    items = index if isinstance(index, tuple) else (index,)
    for i in items:
        if isinstance(i, Tensor) and i.requires_grad:
            raise TypeError(
                "getitem: an index tensor requires grad, but indices are not differentiable; "
                "index with an integer or boolean tensor (detach it)"
            )
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    if isinstance(index, tuple):
        return tuple(
            i.data if isinstance(i, Tensor) else np.asarray(i) if isinstance(i, list) else i
            for i in index
        )
    return index


def sum_to(x: ArrayLike, shape: Sequence[int]) -> Tensor:
    """Sum a broadcast tensor back down to `shape` (the adjoint of broadcast_to)."""
    x = _t(x)
    shape = tuple(shape)
    lead = x.ndim - len(shape)
    axes = tuple(range(lead)) + tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and x.shape[i + lead] != 1
    )
    y = ops.sum(x, axis=axes, keepdims=True) if axes else x
    return y if y.shape == shape else ops.reshape(y, shape=shape)


def scatter_add(x: ArrayLike, index: Any, shape: Sequence[int]) -> Tensor:
    """Zeros of `shape` with x added at `index` (duplicates accumulate)."""
    return ops.scatter_add(_t(x), index=_index(index), shape=tuple(shape))


# --------------------------------------------------------------------------- more elementwise

log1p = _unary(ops.log1p)
expm1 = _unary(ops.expm1)
exp2 = _unary(ops.exp2)
erfc = _unary(ops.erfc)
sinc = _unary(ops.sinc)
trunc = _unary(ops.trunc)
reciprocal = _unary(ops.reciprocal)
rsqrt = _unary(ops.rsqrt)
square = _unary(ops.square)


# NumPy's other name for round: a module global named `round` would replace the builtin in
# this module's doctests; chainrule exports it as `round` too.
def around(x: ArrayLike, decimals: int = 0) -> Tensor:
    """Round half to even (as NumPy and PyTorch) to `decimals` places; the gradient is 0."""
    return ops.round(_t(x), decimals=decimals)


def _binary_fn(op: ops.OpDef, doc: str) -> Callable[[ArrayLike, ArrayLike], Tensor]:
    def f(x: ArrayLike, y: ArrayLike) -> Tensor:
        return op(_t(x), y) if not isinstance(y, Tensor) else op(x, y)

    f.__name__ = f.__qualname__ = op.name
    f.__doc__ = doc
    return f


logaddexp = _binary_fn(ops.logaddexp, "log(e^x + e^y), without overflow.")
hypot = _binary_fn(ops.hypot, "sqrt(x^2 + y^2), without overflow.")
arctan2 = _binary_fn(ops.arctan2, "The angle of the point (x, y): arctan2(y, x), in (-pi, pi].")
atan2 = arctan2
fmax = _binary_fn(ops.fmax, "Elementwise max that ignores NaN (NaN only where both are).")
fmin = _binary_fn(ops.fmin, "Elementwise min that ignores NaN (NaN only where both are).")
copysign = _binary_fn(ops.copysign, "|x| with the sign of y; y gets no gradient.")


def lerp(x: ArrayLike, end: ArrayLike, weight: ArrayLike) -> Tensor:
    """x + weight * (end - x), exact at weight 0 and 1; all three inputs are differentiable.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.lerp(cr.tensor([0.0, 10.0]), cr.tensor([1.0, 20.0]), 0.25).tolist()
    [0.25, 12.5]
    """
    return ops.lerp(_t(x), end, weight)


def nan_to_num(
    x: ArrayLike, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """NaN, +inf and -inf replaced by numbers (by default 0 and the dtype's extremes); the
    gradient passes where x is finite and is 0 where a value was replaced."""
    return ops.nan_to_num(_t(x), nan=nan, posinf=posinf, neginf=neginf)


# Predicates: boolean results with no gradient (as comparisons): the table's defconst entries.
def isnan(x: ArrayLike) -> Tensor:
    """Where x is NaN; a boolean, no gradient."""
    return ops.isnan(_t(x))


def isinf(x: ArrayLike) -> Tensor:
    """Where x is +inf or -inf; a boolean, no gradient."""
    return ops.isinf(_t(x))


def isfinite(x: ArrayLike) -> Tensor:
    """Where x is neither NaN nor inf; a boolean, no gradient."""
    return ops.isfinite(_t(x))


def isclose(
    x: ArrayLike, y: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> Tensor:
    """|x - y| <= atol + rtol * |y| elementwise (NumPy's and PyTorch's defaults)."""
    return ops.isclose(_t(x), _t(y), rtol=rtol, atol=atol, equal_nan=equal_nan)


def allclose(
    x: ArrayLike, y: ArrayLike, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """Whether every element is close (`isclose`); a Python bool, as NumPy and PyTorch.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.allclose(cr.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-9])
    True
    """
    return bool(ops.allclose(_t(x), _t(y), rtol=rtol, atol=atol, equal_nan=equal_nan).item())


# --------------------------------------------------------------------------- more activations

selu = _unary(ops.selu)
relu6 = _unary(ops.relu6)
hardsigmoid = _unary(ops.hardsigmoid)
hardswish = _unary(ops.hardswish)
mish = _unary(ops.mish)
softsign = _unary(ops.softsign)
logsigmoid = _unary(ops.logsigmoid)


def celu(x: ArrayLike, alpha: float = 1.0) -> Tensor:
    """max(0, x) + min(0, alpha (e^(x/alpha) - 1)); slope e^(x/alpha) at x <= 0."""
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0 (it divides x)")
    return ops.celu(_t(x), alpha=alpha)


def hardtanh(x: ArrayLike, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """x clipped to [min_val, max_val]; the gradient is 1 strictly inside, 0 at the bounds."""
    if min_val > max_val:
        raise ValueError(f"hardtanh: min_val {min_val} is greater than max_val {max_val}")
    return ops.hardtanh(_t(x), min_val=min_val, max_val=max_val)


def softplus(x: ArrayLike, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """log(1 + e^(beta x)) / beta, computed stably; x itself where beta x > threshold (as
    PyTorch: there the two agree to float precision, and the gradient is 1).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.softplus(cr.tensor([-200.0, 30.0]), beta=2.0).tolist()
    [0.0, 30.0]
    """
    x = _t(x)
    if beta == 0:
        raise ValueError("softplus: beta must not be 0 (it divides the result)")
    bx = x if beta == 1 else x * beta
    y = ops.softplus(bx) if beta == 1 else ops.softplus(bx) / beta
    linear = bx.data > threshold
    return where(linear, x, y) if linear.any() else y


# --------------------------------------------------------------------------- scans and sorting


def _one_axis(name: str, x: Tensor, axis: Any) -> int:
    """`axis` as an int within x's dimensions, or a one-line error naming the limit."""
    if not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{name}: axis must be an int, got {axis!r}")
    if not -builtins.max(x.ndim, 1) <= axis < builtins.max(x.ndim, 1):
        # NumPy's AxisError is both the ValueError NumPy raises and the IndexError of PyTorch
        raise np.exceptions.AxisError(
            f"{name}: axis {axis} is out of range for {x.ndim}-d input {x.shape}"
        )
    return int(axis)


def _scan(op: ops.OpDef, x: Tensor, axis: int) -> Tensor:
    """A running op along `axis`; a 0-d x stays 0-d, as in PyTorch (NumPy's scans make it
    1-d)."""
    if x.ndim == 0:
        return ops.reshape(op(ops.reshape(x, shape=(1,)), axis=0), shape=())
    return op(x, axis=axis)


def prod(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
    dtype: Any = None,
    out: None = None,
) -> Tensor:
    """Product over `axis` (every axis by default); the gradient is exact where x has zeros
    (the product of the others, never out / 0), as PyTorch.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([2.0, 0.0, 3.0], requires_grad=True)
    >>> cr.prod(x).backward(); x.grad.tolist()
    [0.0, 6.0, 0.0]
    """
    axis, keep = _dims("prod", axis, keepdims, dim, keepdim)
    return ops.prod(_numpy_reduced("prod", x, dtype, out), axis=axis, keepdims=keep)


def cumsum(x: ArrayLike, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Running sum along `axis` (NumPy flattens first when axis is None)."""
    x = _t(x)
    axis = _dims("cumsum", axis, False, dim)[0]
    if axis is None:
        return ops.cumsum(x, axis=None)
    return _scan(ops.cumsum, x, _one_axis("cumsum", x, axis))


def cumprod(x: ArrayLike, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """Running product along `axis`; its gradient is exact where x has zeros, as PyTorch."""
    x = _t(x)
    axis = _dims("cumprod", axis, False, dim)[0]
    if axis is None:
        return ops.cumprod(x, axis=None)
    return _scan(ops.cumprod, x, _one_axis("cumprod", x, axis))


def logcumsumexp(x: ArrayLike, axis: int | None = None, *, dim: int | None = None) -> Tensor:
    """log(cumsum(exp(x))) along `axis` (required, as PyTorch's dim), without overflow."""
    x = _t(x)
    axis = _dims("logcumsumexp", axis, False, dim)[0]
    if axis is None:
        raise TypeError("logcumsumexp: give axis= (or dim=), as torch.logcumsumexp")
    return _scan(ops.logcumsumexp, x, _one_axis("logcumsumexp", x, axis))


def cummax(x: ArrayLike, axis: int | None = None, *, dim: int | None = None) -> ValuesIndices:
    """The running max along `axis` and where it was taken (the latest of tied values; a NaN
    once one is seen), as torch.cummax; the gradient goes to those positions.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.cummax(cr.tensor([1.0, 3.0, 2.0, 3.0]), dim=0).indices.tolist()
    [0, 1, 1, 3]
    """
    x = _t(x)
    axis = _dims("cummax", axis, False, dim)[0]
    if axis is None:
        raise TypeError("cummax: give axis= (or dim=), as torch.cummax")
    axis = _one_axis("cummax", x, axis) % builtins.max(x.ndim, 1)
    if x.ndim == 0:
        return ValuesIndices(x * 1, Tensor(np.array(0)))
    return ValuesIndices(ops.cummax(x, axis=axis), Tensor(ops._cummax_indices(x.data, axis)))


def diff(x: ArrayLike, n: int = 1, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """The n-th difference along `axis`: x[1:] - x[:-1], n times."""
    x = _t(x)
    if x.ndim == 0:
        raise ValueError("diff: needs at least a 1-d input, got a 0-d tensor")
    if n < 0:
        raise ValueError(f"diff: order n must be non-negative, got {n}")
    axis = _one_axis("diff", x, _dims("diff", axis, False, dim, default=-1)[0])
    return ops.diff(x, n=n, axis=axis) if n else x


def _sort_order(x: Tensor, axis: int, descending: bool) -> np.ndarray:
    return ops._argsort(x.data, axis, descending) if x.ndim else np.array(0)


def sort(
    x: ArrayLike, axis: int | None = None, descending: bool | None = None, *, dim: int | None = None
) -> Any:
    """Sorted along `axis` (stable; NaN last, or first when descending, as PyTorch).

    The axis is the last by default. Called the NumPy way, `sort(x, axis)` returns the
    values, as `np.sort`; called the PyTorch way (with `dim=` or `descending=`), it returns
    `(values, indices)`, as `torch.sort`. The gradient goes back to each element's own
    position.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([3.0, 1.0, 2.0])
    >>> cr.sort(x).tolist(), cr.sort(x, dim=0, descending=True).indices.tolist()
    ([1.0, 2.0, 3.0], [0, 2, 1])
    """
    x = _t(x)
    torch_way = dim is not None or descending is not None
    given = _dims("sort", axis, False, dim)[0]
    ax = _one_axis("sort", x, -1 if given is None else given)
    if x.ndim == 0:
        return ValuesIndices(x * 1, Tensor(np.array(0))) if torch_way else x * 1
    values = ops.sort(x, axis=ax, descending=bool(descending))
    if not torch_way:
        return values
    return ValuesIndices(values, Tensor(_sort_order(x, ax, bool(descending))))


def argsort(
    x: ArrayLike, axis: int | None = None, descending: bool = False, *, dim: int | None = None
) -> Tensor:
    """The indices that sort `x` along `axis` (the last by default; stable); integers, no
    gradient."""
    x = _t(x)
    given = _dims("argsort", axis, False, dim)[0]
    ax = _one_axis("argsort", x, -1 if given is None else given)
    return ops.argsort(x, axis=ax, descending=descending) if x.ndim else Tensor(np.array(0))


def topk(
    x: ArrayLike,
    k: int,
    dim: int | None = None,
    largest: bool = True,
    sorted: bool = True,
    *,
    axis: int | None = None,
) -> ValuesIndices:
    """The `k` largest (or smallest) elements along `dim` and their indices, as torch.topk
    (always in sorted order); the gradient goes back to those elements.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.topk(cr.tensor([1.0, 5.0, 3.0, 4.0]), 2).values.tolist()
    [5.0, 4.0]
    """
    x = _t(x)
    given = _dims("topk", axis, False, dim)[0]
    ax = _one_axis("topk", x, -1 if given is None else given)
    size = x.shape[ax] if x.ndim else 1
    if not 0 <= k <= size:
        raise ValueError(f"topk: k={k} is out of range for a dimension of size {size}")
    if x.ndim == 0:
        return ValuesIndices(x * 1, Tensor(np.array(0)))
    order = ops._topk_indices(x.data, k, ax, largest)
    return ValuesIndices(ops.topk(x, k=k, axis=ax, largest=largest), Tensor(order))


def any(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Whether any element over `axis` is nonzero; a boolean, no gradient."""
    axis, keep = _dims("any", axis, keepdims, dim, keepdim)
    return ops.any(_t(x), axis=axis, keepdims=keep)


def all(
    x: ArrayLike,
    axis: Any = None,
    keepdims: bool = False,
    *,
    dim: Any = None,
    keepdim: bool | None = None,
) -> Tensor:
    """Whether every element over `axis` is nonzero; a boolean, no gradient."""
    axis, keep = _dims("all", axis, keepdims, dim, keepdim)
    return ops.all(_t(x), axis=axis, keepdims=keep)


# --------------------------------------------------------------------------- more linear algebra


def einsum(subscripts: Any, *operands: Any) -> Tensor:
    """NumPy's einsum with explicit or implicit output ('ij,jk->ik', 'ij,jk'), '...' for
    broadcast leading axes ('...ij,...jk->...ik'), an index repeated within one operand (a
    diagonal: 'ii->i', 'ii' is the trace) and NumPy's sublist form (einsum(a, [0, 1], b,
    [1, 2])); every operand is differentiable, and each gradient is itself an einsum.

    Raises
    ------
    ValueError
        For a wrong number of operands or of axes, '...' axes that do not broadcast, or a
        repeated index whose axes differ in size.

    Examples
    --------
    >>> import chainrule as cr
    >>> a = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    >>> cr.einsum("ij,j->i", a, cr.tensor([1.0, 1.0])).tolist()
    [3.0, 7.0]
    >>> cr.einsum("ii", a).item(), cr.einsum(a, [0, 1], [1]).tolist()
    (5.0, [4.0, 6.0])
    """
    if not isinstance(subscripts, str):
        subscripts, given = _sublists(subscripts, *operands)
    else:
        given = list(operands)
    xs = [_t(x) for x in given]
    spec = subscripts.replace(" ", "")
    lhs, arrow, out = spec.partition("->")
    if not arrow:  # NumPy's implicit output, from the letters as written (ii: summed)
        named = lhs.replace("...", "")
        once = sorted(c for c in set(named) if c.isalpha() and named.count(c) == 1)
        out = ("..." if "..." in lhs else "") + "".join(once)
    ins = lhs.split(",")
    if len(ins) == len(xs):
        pairs = [_einsum_diagonals(s, x, subscripts) for s, x in zip(ins, xs)]
        ins, xs = [s for s, _ in pairs], [x for _, x in pairs]
    spec = ",".join(ins) + "->" + out
    ops._einsum_parts(spec, [x.shape for x in xs])  # errors name the subscripts
    return ops.einsum(*xs, subscripts=spec)


def _sublists(first: Any, *rest: Any) -> tuple[str, list[Any]]:
    """NumPy's einsum(op0, sublist0, op1, sublist1, ..., [sublistout]) as a subscripts string:
    integer k is the k-th letter, Ellipsis is '...'."""
    args = (first, *rest)
    pairs, tail = args[: len(args) // 2 * 2], args[len(args) // 2 * 2 :]

    def letters(sub: Any) -> str:
        if not isinstance(sub, (list, tuple)):
            raise TypeError("einsum: give the subscripts string ('ij,jk->ik') or sublists")
        return "".join("..." if k is Ellipsis else ops._LETTERS[int(k)] for k in sub)

    spec = ",".join(letters(sub) for sub in pairs[1::2])
    return spec + ("->" + letters(tail[0]) if tail else ""), list(pairs[0::2])


def _einsum_diagonals(s: str, x: Tensor, subscripts: str) -> tuple[str, Tensor]:
    """An operand's subscripts without a repeated index: each repeated pair of axes becomes
    their diagonal (last, as np.diagonal), whose gradient getitem scatters back."""
    labels: list[str | None] = []
    for part in s.split("..."):
        labels.extend(part)
        labels.append(None)
    labels.pop()  # the None after the last part marks nothing
    if "..." in s:
        at = labels.index(None)
        labels[at : at + 1] = [None] * (x.ndim - (len(labels) - 1))
    for c in dict.fromkeys(c for c in labels if c is not None and labels.count(c) > 1):
        while labels.count(c) > 1:
            p = labels.index(c)
            q = labels.index(c, p + 1)
            if x.shape[p] != x.shape[q]:
                raise ValueError(
                    f"einsum: index {c!r} of {subscripts!r} has sizes {x.shape[p]} and {x.shape[q]}"
                )
            x = ops.diagonal(x, offset=0, axis1=p, axis2=q)
            labels = [lab for k, lab in enumerate(labels) if k not in (p, q)] + [c]
    ellipsis = [k for k, lab in enumerate(labels) if lab is None]
    text = "".join(lab for lab in labels if lab is not None)
    if ellipsis:
        text = text[: ellipsis[0]] + "..." + text[ellipsis[0] :]
    return text, x


def tensordot(a: ArrayLike, b: ArrayLike, axes: Any = 2, *, dims: Any = None) -> Tensor:
    """Sum of products over `axes` (the last n of a with the first n of b, or two lists)."""
    a, b = _t(a), _t(b)
    axes = axes if dims is None else dims
    if isinstance(axes, int):
        if axes > builtins.min(a.ndim, b.ndim) or a.shape[a.ndim - axes :] != b.shape[:axes]:
            raise ValueError(
                f"tensordot: shapes {a.shape} and {b.shape} do not align for axes={axes}"
            )
    else:
        pa = [axes[0]] if isinstance(axes[0], int) else list(axes[0])
        pb = [axes[1]] if isinstance(axes[1], int) else list(axes[1])
        if [a.shape[i] for i in pa] != [b.shape[j] for j in pb]:
            raise ValueError(
                f"tensordot: shapes {a.shape} and {b.shape} do not align on axes {axes}"
            )
        axes = (pa, pb)
    return ops.tensordot(a, b, axes=axes)


def outer(a: ArrayLike, b: ArrayLike) -> Tensor:
    """a_i b_j for every pair (inputs flattened, as NumPy)."""
    return ops.outer(_t(a), _t(b))


def inner(a: ArrayLike, b: ArrayLike) -> Tensor:
    """Sum of products over the last axes of a and b (a product for a 0-d input)."""
    a, b = _t(a), _t(b)
    if a.ndim and b.ndim and a.shape[-1] != b.shape[-1]:
        raise ValueError(f"inner: last dimensions differ: shapes {a.shape} and {b.shape}")
    return ops.inner(a, b)


def kron(a: ArrayLike, b: ArrayLike) -> Tensor:
    """The Kronecker product: a block of a_ij * b for every element of a."""
    return ops.kron(_t(a), _t(b))


def diagonal(
    x: ArrayLike,
    offset: int = 0,
    axis1: int = 0,
    axis2: int = 1,
    *,
    dim1: int | None = None,
    dim2: int | None = None,
) -> Tensor:
    """The `offset` diagonal of the (axis1, axis2) planes, as a last axis (NumPy and PyTorch)."""
    x = _t(x)
    if x.ndim < 2:
        raise ValueError(f"diagonal: needs at least a 2-d input, got shape {x.shape}")
    a1 = _one_axis("diagonal", x, axis1 if dim1 is None else dim1)
    a2 = _one_axis("diagonal", x, axis2 if dim2 is None else dim2)
    if a1 % x.ndim == a2 % x.ndim:
        raise ValueError(f"diagonal: axis1 and axis2 are the same axis ({a1})")
    return ops.diagonal(x, offset=offset, axis1=a1, axis2=a2)


def diag(x: ArrayLike, k: int = 0) -> Tensor:
    """A 1-d input placed on the k-th diagonal of a square matrix, or a matrix's k-th diagonal."""
    x = _t(x)
    if x.ndim not in (1, 2):
        raise ValueError(f"diag: needs a 1-d or 2-d input, got shape {x.shape}")
    return ops.diag(x, k=k)


def trace(x: ArrayLike, offset: int = 0) -> Tensor:
    """Sum of the `offset` diagonal of a matrix (of the first two axes for N-d, as NumPy)."""
    x = _t(x)
    if x.ndim < 2:
        raise ValueError(f"trace: needs at least a 2-d input, got shape {x.shape}")
    return ops.trace(x, offset=offset)


def tril(x: ArrayLike, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """The lower triangle (at and below the k-th diagonal) of the last two axes; 0 above."""
    x = _t(x)
    if x.ndim < 2:
        raise ValueError(f"tril: needs at least a 2-d input, got shape {x.shape}")
    return ops.tril(x, k=k if diagonal is None else diagonal)


def triu(x: ArrayLike, k: int = 0, *, diagonal: int | None = None) -> Tensor:
    """The upper triangle (at and above the k-th diagonal) of the last two axes; 0 below."""
    x = _t(x)
    if x.ndim < 2:
        raise ValueError(f"triu: needs at least a 2-d input, got shape {x.shape}")
    return ops.triu(x, k=k if diagonal is None else diagonal)


# --------------------------------------------------------------------------- more indexing


def _index_array(name: str, index: Any) -> np.ndarray:
    a = np.asarray(_data(index))
    if a.dtype.kind not in "iu":
        raise TypeError(f"{name}: indices must be integers, got dtype {a.dtype}")
    return a


def flip(x: ArrayLike, axis: Any = None, *, dims: Any = None) -> Tensor:
    """Reverse the order along `axis` (every axis by default, as NumPy; torch's `dims`)."""
    x = _t(x)
    axis = _dims("flip", axis, False, dims)[0]
    if axis is not None and not isinstance(axis, (int, np.integer)):
        axes = [_one_axis("flip", x, a) % builtins.max(x.ndim, 1) for a in axis]
        if len(set(axes)) < len(axes):
            raise OpError(f"flip: axis {tuple(axis)} repeats an axis")
    return ops.flip(x, axis=axis) if x.ndim else x * 1


def roll(x: ArrayLike, shift: Any, axis: Any = None, *, dims: Any = None) -> Tensor:
    """Shift elements by `shift` along `axis`, wrapping around (flattened when axis is None)."""
    x = _t(x)
    axis = _dims("roll", axis, False, dims)[0]
    if axis is None and np.size(shift) != 1:  # as PyTorch (NumPy would add the shifts up)
        raise OpError(f"roll: {np.size(shift)} shifts need as many axes (give dims=)")
    if axis is not None and np.size(shift) != np.size(axis) and np.size(shift) != 1:
        raise OpError(f"roll: {np.size(shift)} shifts for {np.size(axis)} axes")
    return ops.roll(x, shift=shift, axis=axis)


def tile(x: ArrayLike, reps: Any) -> Tensor:
    """x repeated `reps` times along each axis (NumPy's tile, PyTorch's Tensor.repeat)."""
    reps = (reps,) if isinstance(reps, int) else tuple(reps)
    if builtins.any(r < 0 for r in reps):
        raise ValueError(f"tile: repetitions must be non-negative, got {reps}")
    return ops.tile(_t(x), reps=reps)


def repeat_interleave(
    x: ArrayLike, repeats: Any, axis: int | None = None, *, dim: int | None = None
) -> Tensor:
    """Each element repeated `repeats` times along `axis` (flattened when None): NumPy's
    repeat, PyTorch's repeat_interleave.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.repeat_interleave(cr.tensor([1.0, 2.0]), 2).tolist()
    [1.0, 1.0, 2.0, 2.0]
    """
    x = _t(x)
    axis = _dims("repeat_interleave", axis, False, dim)[0]
    repeats = np.asarray(_data(repeats))
    if (repeats < 0).any():
        raise ValueError("repeat_interleave: repeats must be non-negative")
    return ops.repeat_interleave(x, repeats=repeats, axis=axis)


repeat = repeat_interleave


def _tensor_repeat(x: Tensor, *sizes: Any) -> Tensor:
    """PyTorch's Tensor.repeat(*sizes): tile, with a size for every dimension (NumPy's tile
    would prepend 1s)."""
    reps = _shape_arg(sizes)
    if len(reps) < x.ndim:
        raise OpError(f"repeat: {len(reps)} sizes {reps} for a {x.ndim}-d tensor (give {x.ndim})")
    return tile(x, reps)


def index_select(
    x: ArrayLike, dim: int | None = None, index: Any = None, *, axis: int | None = None
) -> Tensor:
    """The elements at `index` (1-d integers) along `dim` (or `axis`), as torch.index_select."""
    x = _t(x)
    ax = _one_axis("index_select", x, _required_axis("index_select", axis, dim, index))
    idx = _index_array("index_select", index)
    if idx.ndim != 1:
        raise ValueError(f"index_select: index must be 1-d, got shape {idx.shape}")
    return ops.index_select(x, axis=ax, index=idx)


def _required_axis(name: str, axis: Any, dim: Any, *needed: Any) -> Any:
    """The axis of a function with PyTorch's positional `dim` before required arguments
    (torch.gather(x, dim, index)): given once, by dim or axis, with the arguments after it."""
    given = _dims(name, axis, False, dim)[0]
    if given is None or builtins.any(a is None for a in needed):
        raise TypeError(f"{name}: give dim (or axis=) and {' and '.join(_NEEDED[name])}")
    return given


_NEEDED = {
    "scatter_reduce": ("index", "src", "reduce"),
    "index_select": ("index",),
    "gather": ("index",),
    "scatter": ("index", "src"),
    "scatter_add": ("index", "src"),
}


def take_along_axis(
    x: ArrayLike, indices: ArrayLike, axis: int | None = None, *, dim: int | None = None
) -> Tensor:
    """NumPy's take_along_axis: x's elements at `indices` along `axis` (or torch's `dim`;
    one of them is required, as NumPy's axis); x and the indices broadcast against each other
    in the other dimensions, as NumPy's do."""
    x = _t(x)
    idx = _index_array("take_along_axis", indices)
    if idx.ndim != x.ndim:
        raise ValueError(f"take_along_axis: indices of shape {idx.shape} for x of shape {x.shape}")
    axis = _dims("take_along_axis", axis, False, dim)[0]
    if axis is None:
        raise TypeError("take_along_axis: give axis= (or dim=)")
    return ops.take_along_dim(x, indices=idx, axis=_one_axis("take_along_axis", x, axis))


def gather(
    x: ArrayLike, dim: int | None = None, index: Any = None, *, axis: int | None = None
) -> Tensor:
    """torch.gather: out[i][j] = x[i][index[i][j]] along `dim` (or `axis`; index may be
    smaller than x in the other dimensions)."""
    x = _t(x)
    ax = _one_axis("gather", x, _required_axis("gather", axis, dim, index))
    idx = _index_array("gather", index)
    if idx.ndim != x.ndim:
        raise OpError(f"gather: index of shape {idx.shape} for input of shape {x.shape}")
    return ops.take_along_axis(x, indices=idx, axis=ax)


def scatter(
    x: ArrayLike,
    dim: int | None = None,
    index: Any = None,
    src: Any = None,
    *,
    axis: int | None = None,
) -> Tensor:
    """torch.scatter: x with src[i][j] written at [i][index[i][j]] along `dim` (or `axis`;
    src may be a number); both x and src are differentiable."""
    x = _t(x)
    ax = _one_axis("scatter", x, _required_axis("scatter", axis, dim, index, src))
    idx = _index_array("scatter", index)
    if idx.ndim != x.ndim:
        raise OpError(f"scatter: index of shape {idx.shape} for input of shape {x.shape}")
    return ops.scatter(x, _t(src), axis=ax, index=idx)


def scatter_add_along(
    x: ArrayLike,
    dim: int | None = None,
    index: Any = None,
    src: Any = None,
    *,
    axis: int | None = None,
) -> Tensor:
    """torch.scatter_add: x plus src[i][j] added at [i][index[i][j]] along `dim` (repeated
    positions accumulate); chainrule exports it as `scatter_add` and `Tensor.scatter_add`
    (this module's `scatter_add` is the namespace's placing function).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.scatter_add(cr.zeros(3), 0, [0, 2, 0], cr.tensor([1.0, 2.0, 3.0])).tolist()
    [4.0, 0.0, 2.0]
    """
    given = _required_axis("scatter_add", axis, dim, index, src)
    x, s = _t(x), _t(src)
    ax = _one_axis("scatter_add", x, given) % builtins.max(x.ndim, 1)
    idx = _index_array("scatter_add", index)
    if idx.ndim != x.ndim or s.ndim != x.ndim:
        raise ValueError(
            f"scatter_add: index {idx.shape} and src {s.shape} need input {x.shape}'s dimensions"
        )
    if builtins.any(i > n for i, n in zip(idx.shape, s.shape)):
        raise ValueError(f"scatter_add: index of shape {idx.shape} is larger than src {s.shape}")
    if idx.size and (idx.min() < -x.shape[ax] or idx.max() >= x.shape[ax]):
        raise OpIndexError(
            f"scatter_add: an index is out of range for dimension {ax} of size {x.shape[ax]}"
        )
    block = s[tuple(slice(0, n) for n in idx.shape)]
    return x + ops.scatter_add(
        block, index=ops._along(idx % builtins.max(x.shape[ax], 1), ax), shape=x.shape
    )


def masked_fill(x: ArrayLike, mask: ArrayLike, value: float) -> Tensor:
    """x with `value` where `mask` is True (broadcast); the gradient passes elsewhere."""
    m = np.asarray(_data(mask))
    if m.dtype != bool:
        raise TypeError(f"masked_fill: the mask must be boolean, got dtype {m.dtype}")
    return ops.masked_fill(_t(x), mask=m, value=float(_data(value)))


def masked_select(x: ArrayLike, mask: ArrayLike) -> Tensor:
    """The elements of x where `mask` (broadcast) is True, as a 1-d tensor."""
    m = np.asarray(_data(mask))
    if m.dtype != bool:
        raise TypeError(f"masked_select: the mask must be boolean, got dtype {m.dtype}")
    return ops.masked_select(_t(x), mask=m)


def one_hot(labels: ArrayLike, num_classes: int = -1) -> Tensor:
    """Integer labels as one-hot rows of `num_classes` (max label + 1 by default), int64 as
    PyTorch's; no gradient."""
    a = _index_array("one_hot", labels)
    n = int(a.max()) + 1 if num_classes < 0 and a.size else builtins.max(num_classes, 0)
    if a.size and (a.min() < 0 or a.max() >= n):
        raise ValueError(f"one_hot: labels must lie in [0, {n}), got {a.min()} to {a.max()}")
    return ops.one_hot(Tensor(a), num_classes=n)


PAD_MODES = ("constant", "reflect", "edge", "wrap", "symmetric")


def pad(
    x: ArrayLike, pad_width: Any, mode: str = "constant", constant_values: float = 0.0
) -> Tensor:
    """numpy.pad: `pad_width` is an int, one (before, after) pair, or a pair per axis from the
    first; `mode` is 'constant' (with `constant_values`, one number), 'reflect', 'edge',
    'wrap' or 'symmetric'. PyTorch's convention (a flat tuple from the last axis, 'replicate',
    'circular', negative sizes that crop) is `chainrule.nn.functional.pad`.

    Raises
    ------
    ValueError
        For a negative or ill-shaped `pad_width`, an unknown mode, or an empty axis padded
        by copying (only 'constant' can extend it).

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.pad(cr.tensor([1.0, 2.0, 3.0]), (2, 1), mode="reflect").tolist()
    [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
    >>> cr.pad(cr.ones(1, 2), ((0, 1), (1, 0))).tolist()
    [[0.0, 1.0, 1.0], [0.0, 0.0, 0.0]]
    """
    x = _t(x)
    widths = np.asarray(_data(pad_width))
    if widths.dtype.kind not in "iu":
        raise TypeError(f"pad: pad_width must be integers, got {pad_width!r}")
    try:
        pairs = np.broadcast_to(widths, (x.ndim, 2))
    except ValueError:
        raise ValueError(
            f"pad: pad_width {pad_width!r} does not fit a {x.ndim}-d input (give an int, "
            "(before, after) or one pair per axis)"
        ) from None
    if (pairs < 0).any():
        raise ValueError(f"pad: pad_width {pad_width!r} is negative (nn.functional.pad crops)")
    if mode not in PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(PAD_MODES)}, got {mode!r}")
    if np.ndim(_data(constant_values)) != 0:
        raise ValueError(f"pad: constant_values must be one number, got {constant_values!r}")
    for n, (before, after) in zip(x.shape, pairs.tolist()):
        if n == 0 and (before or after) and mode != "constant":
            raise ValueError(f"pad: mode {mode!r} cannot extend an empty axis (use 'constant')")
    widths_per_axis = tuple((int(b), int(a)) for b, a in pairs.tolist())
    return ops.pad(
        x, pad_width=widths_per_axis, mode=mode, constant_values=float(_data(constant_values))
    )


def unfold(x: ArrayLike, dimension: int, size: int, step: int) -> Tensor:
    """Windows of `size` every `step` along `dimension`, as a new last axis (Tensor.unfold)."""
    x = _t(x)
    ax = _one_axis("unfold", x, dimension)
    n = x.shape[ax] if x.ndim else 1
    if size < 0 or size > n or step <= 0:
        raise OpError(f"unfold: size {size} and step {step} for a dimension of size {n}")
    return ops.unfold(x, axis=ax, size=size, step=step)


def chunk(
    x: ArrayLike, chunks: int, dim: int | None = None, *, axis: int | None = None
) -> list[Tensor]:
    """torch.chunk: up to `chunks` pieces of ceil(n / chunks) along `dim` (or `axis`; the
    first by default), the last smaller."""
    x = _t(x)
    given = _dims("chunk", axis, False, dim)[0]
    ax = _one_axis("chunk", x, 0 if given is None else given) % builtins.max(x.ndim, 1)
    if chunks <= 0:
        raise ValueError(f"chunk: chunks must be positive, got {chunks}")
    n = x.shape[ax]
    step = builtins.max(-(-n // chunks), 1)
    return _pieces(x, ax, [*range(0, n, step), n]) if n else [x]


def moveaxis(x: ArrayLike, source: Any, destination: Any) -> Tensor:
    """Move axes to new positions, keeping the others' order (NumPy's moveaxis, torch's movedim)."""
    x = _t(x)
    src = [s % x.ndim for s in np.atleast_1d(source).tolist()]
    dst = [d % x.ndim for d in np.atleast_1d(destination).tolist()]
    if len(src) != len(dst) or len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise ValueError(f"moveaxis: source {source} and destination {destination} do not pair up")
    order = [a for a in range(x.ndim) if a not in src]
    for d, s in sorted(zip(dst, src)):
        order.insert(d, s)
    return transpose(x, order)


movedim = moveaxis


def unflatten(x: ArrayLike, dim: int, sizes: Sequence[int]) -> Tensor:
    """Split axis `dim` into `sizes` (one may be -1), as torch.unflatten."""
    x = _t(x)
    ax = _one_axis("unflatten", x, dim) % x.ndim
    sizes = tuple(sizes)
    known = math.prod(s for s in sizes if s != -1)
    if (-1 not in sizes and known != x.shape[ax]) or (known and x.shape[ax] % known):
        raise ValueError(
            f"unflatten: sizes {sizes} do not multiply to dimension {ax}'s {x.shape[ax]}"
        )
    return reshape(x, (*x.shape[:ax], *sizes, *x.shape[ax + 1 :]))


def vstack(xs: Sequence[ArrayLike]) -> Tensor:
    """Stack rows: 1-d inputs become rows, then join along axis 0 (NumPy's vstack)."""
    xs = [_t(x) for x in xs]
    return concatenate([x if x.ndim >= 2 else reshape(x, (1, -1)) for x in xs], axis=0)


def hstack(xs: Sequence[ArrayLike]) -> Tensor:
    """Join along axis 1, or axis 0 for 1-d inputs (NumPy's hstack)."""
    xs = [_t(x) for x in xs]
    xs = [x if x.ndim else reshape(x, (1,)) for x in xs]
    return concatenate(xs, axis=0 if xs and xs[0].ndim == 1 else 1)


# ------------------------------------------------------------------------ NumPy's other functions
# NumPy's functions of the op table's block of that name (ops.py): its argument checks here,
# one-line errors naming the value; the entries do the work.


def mod(x: ArrayLike, y: ArrayLike) -> Tensor:
    """x mod y with the sign of y: NumPy's mod and remainder, Python's and PyTorch's `%`
    (torch.remainder). Gradients as PyTorch's: 1 for x, -floor(x / y) for y.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.mod(cr.tensor([-3.0, 3.0]), 2.0).tolist()
    [1.0, 1.0]
    """
    return _modulo(ops.mod, np.remainder, x, y)


remainder = mod


def fmod(x: ArrayLike, y: ArrayLike) -> Tensor:
    """x mod y with the sign of x (C's fmod, torch.fmod). Gradients: 1 for x, -trunc(x / y)
    for y.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.fmod(cr.tensor([-3.0, 3.0]), 2.0).tolist()
    [-1.0, 1.0]
    """
    return _modulo(ops.fmod, np.fmod, x, y)


def _modulo(op: ops.OpDef, f: Callable[..., Any], x: ArrayLike, y: ArrayLike) -> Tensor:
    if np.result_type(_data(x), _data(y)).kind in "iub":  # integers: exact, no gradient
        return Tensor(np.asarray(f(_data(x), _data(y))))
    return op(*_pair(x, y))


logaddexp2 = _binary_fn(ops.logaddexp2, "log2(2^x + 2^y), without overflow.")
fabs = _unary(ops.fabs)
rad2deg = _unary(ops.rad2deg)
degrees = rad2deg
deg2rad = _unary(ops.deg2rad)
radians = deg2rad


def ravel(x: ArrayLike) -> Tensor:
    """x's elements as a 1-d tensor, in C order (NumPy's ravel, torch.ravel)."""
    return ops.ravel(_t(x))


def _at_least(name: str, x: Tensor, ndim: int) -> None:
    if x.ndim < ndim:
        raise ValueError(f"{name}: needs at least a {ndim}-d input, got shape {x.shape}")


def flipud(x: ArrayLike) -> Tensor:
    """Reverse the order along axis 0 (NumPy's flipud)."""
    x = _t(x)
    _at_least("flipud", x, 1)
    return ops.flipud(x)


def fliplr(x: ArrayLike) -> Tensor:
    """Reverse the order along axis 1 (NumPy's fliplr)."""
    x = _t(x)
    _at_least("fliplr", x, 2)
    return ops.fliplr(x)


def rot90(x: ArrayLike, k: int = 1, axes: Sequence[int] = (0, 1)) -> Tensor:
    """Rotate by 90 degrees k times, from the first of `axes` towards the second (NumPy's)."""
    x = _t(x)
    _at_least("rot90", x, 2)
    axes = tuple(axes)
    if len(axes) != 2 or axes[0] % x.ndim == axes[1] % x.ndim:
        raise ValueError(f"rot90: axes must be two different axes, got {axes}")
    for a in axes:
        _one_axis("rot90", x, a)
    return ops.rot90(x, k=int(k), axes=axes)


def _each(op: ops.OpDef, xs: tuple[ArrayLike, ...]) -> Any:
    """NumPy's atleast_*d: one input gives a Tensor, several a list."""
    out = [op(_t(x)) for x in xs]
    return out[0] if len(out) == 1 else out


def atleast_1d(*xs: ArrayLike) -> Any:
    """Each input with at least 1 axis (a number becomes shape (1,))."""
    return _each(ops.atleast_1d, xs)


def atleast_2d(*xs: ArrayLike) -> Any:
    """Each input with at least 2 axes (a 1-d input of n becomes a row (1, n))."""
    return _each(ops.atleast_2d, xs)


def atleast_3d(*xs: ArrayLike) -> Any:
    """Each input with at least 3 axes ((n,) becomes (1, n, 1); (m, n) becomes (m, n, 1))."""
    return _each(ops.atleast_3d, xs)


def column_stack(xs: Sequence[ArrayLike]) -> Tensor:
    """1-d inputs as columns, joined with 2-d ones along axis 1 (NumPy's column_stack)."""
    return ops.column_stack(*(_t(x) for x in xs))


def row_stack(xs: Sequence[ArrayLike]) -> Tensor:
    """NumPy's row_stack, its vstack: 1-d inputs as rows, joined along axis 0."""
    return ops.row_stack(*(_t(x) for x in xs))


def append(
    x: ArrayLike, values: ArrayLike, axis: int | None = None, *, dim: int | None = None
) -> Tensor:
    """`values` after x's elements: both flattened when axis is None, else joined along
    `axis` (NumPy's append)."""
    x, v = _t(x), _t(values)
    axis = _dims("append", axis, False, dim)[0]
    if axis is not None and x.ndim != v.ndim:
        raise ValueError(f"append: shapes {x.shape} and {v.shape} differ in dimensions")
    return ops.append(x, v, axis=axis if axis is None else _one_axis("append", x, axis))


def rollaxis(
    x: ArrayLike, axis: int | None = None, start: int = 0, *, dim: int | None = None
) -> Tensor:
    """Move `axis` (required) to stand before the axis now at `start` (NumPy's rollaxis)."""
    x = _t(x)
    axis = _dims("rollaxis", axis, False, dim)[0]
    if axis is None:
        raise TypeError("rollaxis: give axis (or dim=)")
    _one_axis("rollaxis", x, axis)
    if not -x.ndim <= start <= x.ndim:
        raise np.exceptions.AxisError(f"rollaxis: start {start} is out of range for {x.ndim}-d")
    return ops.rollaxis(x, axis=int(axis), start=int(start))


def cross(
    a: ArrayLike,
    b: ArrayLike,
    axisa: int = -1,
    axisb: int = -1,
    axisc: int = -1,
    axis: int | None = None,
    *,
    dim: int | None = None,
) -> Tensor:
    """The cross product of 3-vectors along the last axis, or `axisa`/`axisb`/`axisc` (all
    three when `axis` or torch's `dim` is given); a 2-vector has z = 0, and two 2-vectors
    give the z component alone, as NumPy.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.cross(cr.tensor([1.0, 0.0, 0.0]), cr.tensor([0.0, 1.0, 0.0])).tolist()
    [0.0, 0.0, 1.0]
    """
    a, b = _t(a), _t(b)
    axis = _dims("cross", axis, False, dim)[0]
    if axis is not None:
        axisa = axisb = axisc = axis
    na, nb = a.shape[_one_axis("cross", a, axisa)], b.shape[_one_axis("cross", b, axisb)]
    if na not in (2, 3) or nb not in (2, 3):
        raise ValueError(f"cross: vectors must have 2 or 3 components, got {na} and {nb}")
    rank = builtins.max(a.ndim, b.ndim)  # the result's, when it has a vector axis
    if (na, nb) != (2, 2) and not -rank <= axisc < rank:
        raise np.exceptions.AxisError(f"cross: axisc {axisc} is out of range for a {rank}-d result")
    return ops.cross(a, b, axisa=int(axisa), axisb=int(axisb), axisc=int(axisc))


def select(
    condlist: Sequence[Any], choicelist: Sequence[ArrayLike], default: float = 0.0
) -> Tensor:
    """Each element from the first choice whose condition holds there, else `default`
    (NumPy's select); the choices are differentiable, the conditions are masks."""
    if len(condlist) != len(choicelist) or not condlist:
        raise ValueError(
            f"select: {len(condlist)} conditions for {len(choicelist)} choices (give as many)"
        )
    conds = tuple(np.asarray(_data(c)) for c in condlist)
    if builtins.any(c.dtype != bool for c in conds):
        raise TypeError("select: every condition must be a boolean array")
    return ops.select(*(_t(c) for c in choicelist), condlist=conds, default=float(_data(default)))


def partition(x: ArrayLike, kth: Any, axis: int | None = -1, *, dim: int | None = None) -> Tensor:
    """x rearranged so that the element at each `kth` is where sorting would put it, smaller
    ones before, larger after (NumPy's partition; flattened when axis is None)."""
    x = _t(x)
    axis = _dims("partition", axis, False, dim, default=-1)[0]
    if axis is None:
        x, axis = ravel(x), 0
    n = x.shape[_one_axis("partition", x, axis)] if x.ndim else 1
    ks = np.atleast_1d(np.asarray(kth))
    if ks.dtype.kind not in "iu" or (ks.size and (ks.min() < -n or ks.max() >= n)):
        raise ValueError(f"partition: kth {kth!r} is out of range for an axis of {n}")
    return ops.partition(x, kth=kth, axis=int(axis))


def gradient(
    f: ArrayLike, *varargs: float, axis: Any = None, edge_order: int = 1, dim: Any = None
) -> Any:
    """NumPy's gradient with uniform spacing: central differences inside, one-sided (first or
    second order) at the ends. One axis gives a Tensor, several a list, as NumPy.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.gradient(cr.tensor([1.0, 4.0, 9.0, 16.0])).tolist()
    [3.0, 4.0, 6.0, 7.0]
    """
    f = _t(f)
    axis = _dims("gradient", axis, False, dim)[0]
    axes = (
        tuple(range(f.ndim))
        if axis is None
        else tuple(_one_axis("gradient", f, a) % f.ndim for a in np.atleast_1d(axis).tolist())
    )
    if len(varargs) not in (0, 1, len(axes)):
        raise TypeError(f"gradient: {len(varargs)} spacings for {len(axes)} axes")
    if builtins.any(np.ndim(_data(h)) for h in varargs):
        raise TypeError("gradient: spacing must be numbers (coordinate arrays are not supported)")
    spacing = [float(_data(h)) for h in varargs] * (len(axes) if len(varargs) == 1 else 1)
    if edge_order not in (1, 2):
        raise ValueError(f"gradient: edge_order must be 1 or 2, got {edge_order}")
    out = []
    for k, a in enumerate(axes):
        if f.shape[a] < edge_order + 1:
            raise ValueError(
                f"gradient: axis {a} of size {f.shape[a]} is too short for edge_order {edge_order}"
            )
        h = spacing[k] if spacing else 1.0
        out.append(ops.gradient(f, axis=a, spacing=h, edge_order=edge_order))
    return out[0] if len(out) == 1 else out


class _Concatenator:
    """NumPy's index tricks r_ and c_ on Tensors: `cr.r_[x, 0.0, 1:4]` joins its items along
    the first axis (c_: 1-d items as columns, along the last); a slice gives an arange, or
    a linspace for a complex step (`0:1:5j`), as NumPy's. Differentiable in every Tensor."""

    def __init__(self, name: str, axis: int, ndmin: int) -> None:
        self.name, self.axis, self.ndmin = name, axis, ndmin

    def __getitem__(self, key: Any) -> Tensor:
        parts = []
        for item in key if isinstance(key, tuple) else (key,):
            if isinstance(item, str):
                raise ValueError(
                    f"{self.name}: string directives such as {item!r} are not supported"
                )
            if isinstance(item, slice):
                item = tensor(_slice_values(self.name, item))
            part = _t(item)
            if part.ndim < self.ndmin:  # c_: a 1-d item is a column, a number a 1 x 1 block
                part = reshape(part, (-1, 1) if part.ndim == 1 else (1,) * self.ndmin)
            parts.append(part)
        return concatenate(parts, axis=self.axis)


def _slice_values(name: str, s: slice) -> np.ndarray:
    start = 0 if s.start is None else s.start
    if isinstance(s.step, complex):
        return np.linspace(start, s.stop, int(abs(s.step)))
    if s.stop is None:
        raise ValueError(f"{name}: a slice needs a stop, got {s}")
    return np.arange(start, s.stop, 1 if s.step is None else s.step)


r_ = _Concatenator("r_", 0, 1)
c_ = _Concatenator("c_", -1, 2)


# --------------------------------------------------------------------------- creation
# Drawn from chainrule.random's generator, so `chainrule.manual_seed` makes them repeatable.
# Floats default to float32, as the other constructors.


def _float_dtype(name: str, dtype: Any) -> np.dtype[Any]:
    dt = np.dtype(np.float32 if dtype is None else dtype)
    if dt.kind != "f":
        raise OpTypeError(f"{name}: dtype must be a float dtype, got {dt}")
    return dt


def _size(name: str, shape: tuple[Any, ...]) -> tuple[int, ...]:
    size = _shape_arg(shape)
    if builtins.any(not isinstance(n, (int, np.integer)) or n < 0 for n in size):
        raise ValueError(f"{name}: sizes must be non-negative integers, got {size}")
    return tuple(int(n) for n in size)


def randn(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples of `shape`, seeded by `chainrule.manual_seed`.

    Examples
    --------
    >>> import chainrule as cr
    >>> _ = cr.manual_seed(0); a = cr.randn(2, 3)
    >>> _ = cr.manual_seed(0); b = cr.randn((2, 3))
    >>> a.shape, a.dtype, bool((a == b).all())
    ((2, 3), dtype('float32'), True)
    """
    dt = _float_dtype("randn", dtype)
    return _leaf(ops.randn(shape=_size("randn", shape), dtype=dt), requires_grad)


def rand(*shape: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples in [0, 1) of `shape`, seeded by `chainrule.manual_seed`."""
    dt = _float_dtype("rand", dtype)
    return _leaf(ops.rand(shape=_size("rand", shape), dtype=dt), requires_grad)


def randint(low: int, high: int | None = None, size: Any = (), *, dtype: Any = np.int64) -> Tensor:
    """Integers in [low, high) (in [0, low) when high is omitted, as NumPy; PyTorch's
    randint(low, high, size) reads the same)."""
    if high is None:
        low, high = 0, low
    if high <= low:
        raise ValueError(f"randint: need low < high, got low={low}, high={high}")
    size = _size("randint", (size,) if isinstance(size, int) else (tuple(size),))
    return ops.randint(low=low, high=high, shape=size, dtype=dtype)


def normal(
    mean: ArrayLike = 0.0, std: ArrayLike = 1.0, size: Any = None, *, dtype: Any = None
) -> Tensor:
    """Normal samples with `mean` and `std` (numbers or arrays, broadcast), of `size` or of
    their broadcast shape; NumPy's loc and scale, PyTorch's mean and std."""
    m, s = np.asarray(_data(mean)), np.asarray(_data(std))
    if (s < 0).any():
        raise ValueError("normal: std must be non-negative")
    wide = builtins.any(a.dtype == np.float64 for a in (m, s) if a.ndim)
    dt = _float_dtype("normal", dtype if dtype is not None else (np.float64 if wide else None))
    shape = (
        None
        if size is None
        else _size("normal", (size,) if isinstance(size, int) else (tuple(size),))
    )
    return ops.normal(mean=m, std=s, shape=shape, dtype=dt)


def linspace(
    start: float | Tensor,
    stop: float | Tensor,
    num: int | None = None,
    *,
    steps: int | None = None,
    endpoint: bool = True,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """`num` evenly spaced numbers from start to stop (NumPy's num, default 50; PyTorch's
    steps, its third argument too). An integer dtype truncates the points, as both do.
    Tensor ends make it differentiable in them, as NumPy's under autograd."""
    n = steps if steps is not None else (50 if num is None else num)
    if n < 0:
        raise ValueError(f"linspace: the number of points must be non-negative, got {n}")
    integer = dtype is not None and np.dtype(dtype).kind in "iu"
    if not integer and (isinstance(start, Tensor) or isinstance(stop, Tensor)):
        # a number beside a Tensor end takes that end's dtype (3.4 stays 3.4 in float64)
        like = next(e for e in (start, stop) if isinstance(e, Tensor)).dtype
        a, b = (e if isinstance(e, Tensor) else tensor(e, dtype=like) for e in (start, stop))
        return _linspace_between(a, b, n, endpoint, dtype)
    dt = np.dtype(dtype) if integer else _float_dtype("linspace", dtype)
    if integer and requires_grad:
        raise TypeError(f"linspace: an integer tensor cannot require grad (dtype {dt})")
    return _leaf(
        ops.linspace(start=start, stop=stop, num=n, endpoint=endpoint, dtype=dt), requires_grad
    )


def _linspace_between(a: Tensor, b: Tensor, n: int, endpoint: bool, dtype: Any) -> Tensor:
    """linspace differentiable in its ends (NumPy's, as autograd's): a + (b - a) t for the
    table's points t in [0, 1], so d/da = 1 - t and d/db = t. Tensor ends of a shape give
    one such row per element, the points along a new first axis, as NumPy's."""
    dt = _float_dtype("linspace", dtype if dtype is not None else np.result_type(a.dtype, b.dtype))
    t = ops.linspace(start=0.0, stop=1.0, num=n, endpoint=endpoint, dtype=dt)
    shape = np.broadcast_shapes(a.shape, b.shape)
    t = reshape(t, (n, *(1,) * len(shape)))
    return astype(a, dt) + (astype(b, dt) - astype(a, dt)) * t


def logspace(
    start: float,
    stop: float,
    num: int | None = None,
    base: float = 10.0,
    *,
    steps: int | None = None,
    dtype: Any = None,
) -> Tensor:
    """base ** linspace(start, stop, num): numbers evenly spaced on a log scale."""
    n = steps if steps is not None else (50 if num is None else num)
    if n < 0:
        raise ValueError(f"logspace: the number of points must be non-negative, got {n}")
    dt = _float_dtype("logspace", dtype)
    return ops.logspace(start=start, stop=stop, num=n, base=base, dtype=dt)


def full_like(
    x: ArrayLike, value: float, dtype: Any = None, *, requires_grad: bool = False
) -> Tensor:
    """An array of x's shape (and dtype, unless given) filled with `value`."""
    shape, own = _like(x)
    return _leaf(ops.full(shape=shape, value=value, dtype=dtype or own), requires_grad)


def empty(*shape: Any, dtype: Any = np.float32, requires_grad: bool = False) -> Tensor:
    """An uninitialised array of `shape` (its values are whatever memory held)."""
    return _leaf(ops.empty(shape=_size("empty", shape), dtype=dtype), requires_grad)


def meshgrid(*xs: ArrayLike, indexing: str = "xy") -> list[Tensor]:
    """Coordinate grids from 1-d inputs, differentiable (each grid is a broadcast of one
    input, so an input's gradient sums its grid's). NumPy's default indexing 'xy' (PyTorch's
    is 'ij': pass indexing='ij'); the inputs may be given one by one or as one list (torch).

    Examples
    --------
    >>> import chainrule as cr
    >>> gx, gy = cr.meshgrid(cr.tensor([1.0, 2.0, 3.0]), cr.tensor([4.0, 5.0]))
    >>> gx.shape, gy.tolist()
    ((2, 3), [[4.0, 4.0, 4.0], [5.0, 5.0, 5.0]])
    """
    if indexing not in ("xy", "ij"):
        raise OpError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    if len(xs) == 1 and isinstance(xs[0], (list, tuple)):  # torch.meshgrid([x, y])
        xs = tuple(xs[0])
    if not xs:
        return []
    grids = ops.meshgrid(*(_t(x) for x in xs), indexing=indexing)
    return [grids[i] for i in range(len(xs))]


def take_along_dim(x: ArrayLike, indices: ArrayLike, dim: int | None = None) -> Tensor:
    """torch.take_along_dim: take_along_axis under PyTorch's name; without `dim`, x and the
    indices are both flattened.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.take_along_dim(cr.tensor([[10.0, 30.0], [20.0, 40.0]]), cr.tensor([3, 0])).tolist()
    [40.0, 10.0]
    """
    x = _t(x)
    idx = _index_array("take_along_dim", indices)
    if dim is None:
        return ops.take_along_dim(x, indices=idx)
    ax = _one_axis("take_along_dim", x, dim)
    fits = idx.ndim == x.ndim and builtins.all(
        a == b or 1 in (a, b)
        for d, (a, b) in enumerate(zip(x.shape, idx.shape))
        if d != ax % x.ndim
    )
    if not fits:
        raise OpError(f"take_along_dim: indices of shape {idx.shape} for input of shape {x.shape}")
    return ops.take_along_dim(x, indices=idx, axis=ax)


def scatter_reduce(
    x: ArrayLike,
    dim: int | None = None,
    index: Any = None,
    src: Any = None,
    reduce: str | None = None,
    *,
    include_self: bool = True,
    axis: int | None = None,
) -> Tensor:
    """torch.scatter_reduce: each position of x that `index` names along `dim` becomes the
    `reduce` ('sum', 'prod', 'mean', 'amax', 'amin') of the src elements sent there, and of
    its own value when `include_self`; both x and src are differentiable, with PyTorch's
    gradients (amax/amin split it evenly among tied values).

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor([1.0, 2.0, 3.0])
    >>> cr.scatter_reduce(x, 0, [0, 0, 2], cr.tensor([5.0, -1.0, 4.0]), "amax").tolist()
    [5.0, 2.0, 4.0]
    """
    given = _required_axis("scatter_reduce", axis, dim, index, src, reduce)
    if reduce not in ops.SCATTER_REDUCTIONS:
        raise OpError(
            f"scatter_reduce: reduce must be one of {', '.join(ops.SCATTER_REDUCTIONS)}, "
            f"got {reduce!r}"
        )
    x, s = _t(x), _t(src)
    if x.dtype != s.dtype:  # as torch: no silent promotion of the input written into
        raise OpTypeError(f"scatter_reduce: input is {x.dtype} but src is {s.dtype}; cast one")
    ax = _one_axis("scatter_reduce", x, given) % builtins.max(x.ndim, 1)
    idx = _index_array("scatter_reduce", index)
    if idx.ndim != x.ndim or s.ndim != x.ndim:
        raise ValueError(
            f"scatter_reduce: index {idx.shape} and src {s.shape} need input {x.shape}'s dimensions"
        )
    small = builtins.all(i <= n for i, n in zip(idx.shape, s.shape)) and builtins.all(
        i <= n for d, (i, n) in enumerate(zip(idx.shape, x.shape)) if d != ax
    )
    if not small:
        raise ValueError(
            f"scatter_reduce: index of shape {idx.shape} is larger than src {s.shape} or, "
            f"outside dim {ax}, than input {x.shape}"
        )
    if idx.size and (idx.min() < -x.shape[ax] or idx.max() >= x.shape[ax]):
        raise OpIndexError(
            f"scatter_reduce: an index is out of range for dimension {ax} of size {x.shape[ax]}"
        )
    return ops.scatter_reduce(
        x,
        s,
        axis=ax,
        index=idx % builtins.max(x.shape[ax], 1),
        reduce=reduce,
        include_self=bool(include_self),
    )


# --------------------------------------------------------------------------- Tensor methods


def _cmp(f: Callable[[Any, Any], Any]) -> Callable[[Tensor, Any], Tensor]:
    def method(self: Tensor, other: Any) -> Tensor:
        return Tensor(f(self.data, _data(other)))

    return method


def _binary(op: ops.OpDef, reflected: bool = False) -> Callable[[Tensor, Any], Tensor]:
    # An integer or bool tensor meeting a Python float gives the default float dtype, float32,
    # as in PyTorch (NumPy would give float64). One type check per operator call.
    if reflected:

        def rop(s: Tensor, o: Any) -> Tensor:
            if type(o) is float and s.dtype.kind in "biu":  # dtype, not .data: vmap
                s = Tensor(s.data.astype(np.float32))  # integers never require grad
            return apply(op, o, s)

        return rop

    def fop(s: Tensor, o: Any) -> Tensor:
        if type(o) is float and s.dtype.kind in "biu":  # dtype, not .data: vmap
            s = Tensor(s.data.astype(np.float32))
        return apply(op, s, o)

    return fop


def _true_divide(reflected: bool = False) -> Callable[[Tensor, Any], Tensor]:
    """`/` as the other operators, and int / int float32 (`_float_if_integers`)."""

    def div(s: Tensor, o: Any) -> Tensor:
        if s.dtype.kind in "biu":  # one check on the common float path
            s, o = _float_if_integers(s, o)
        if type(o) is float and s.dtype.kind in "biu":
            s = Tensor(s.data.astype(np.float32))
        return apply(ops.div, o, s) if reflected else apply(ops.div, s, o)

    return div


def _attach() -> None:
    T = Tensor
    # Operators call `apply` directly (not OpDef.__call__): one Python frame less per op.
    for name, op in [
        ("add", ops.add),
        ("sub", ops.sub),
        ("mul", ops.mul),
        ("truediv", ops.div),
        ("pow", ops.power),
        ("matmul", ops.matmul),
    ]:
        setattr(T, f"__{name}__", _binary(op))
        setattr(T, f"__r{name}__", _binary(op, reflected=True))
    setattr(T, "__truediv__", _true_divide())  # noqa: B010 (mypy: a declared method)
    setattr(T, "__rtruediv__", _true_divide(reflected=True))  # noqa: B010
    from chainrule import methods

    transpose_property = property(lambda s: ops.transpose(s) if s.ndim > 1 else s)
    # setattr, not `T.x = ...`: tensor_api.py declares these for mypy, which forbids
    # assigning to a declared method.
    for name, method in [
        ("__neg__", lambda s, _op=ops.neg: apply(_op, s)),
        ("__abs__", lambda s, _op=ops.abs: apply(_op, s)),
        ("__pos__", lambda s: s),
        ("__getitem__", getitem),
        ("T", transpose_property),
        ("mT", methods.mT),
        *methods.OPERATORS.items(),
    ]:
        setattr(T, name, method)
    for name, f in [
        ("__lt__", np.less),
        ("__le__", np.less_equal),
        ("__gt__", np.greater),
        ("__ge__", np.greater_equal),
        ("__eq__", np.equal),
        ("__ne__", np.not_equal),
    ]:
        setattr(T, name, _cmp(f))
    # The math methods (x.exp(), x.sum(axis)) are the functions that tensor_api.TensorMethods
    # declares for type checkers: that class is the one list of them.
    from chainrule.tensor_api import TensorMethods

    for name, f in vars(TensorMethods).items():
        if not name.startswith("__") and callable(f):
            setattr(T, name, f)


_attach()

# The vjps' namespace when the backward pass is recorded: the names of ops.NAMESPACE, each the
# differentiable function of this module (reshape takes its shape as one argument there).
ops.TENSOR_NS.__dict__.update(
    {n: globals()[n] for n in ops.NAMESPACE}, reshape=lambda x, shape: reshape(x, shape)
)
