"""PyTorch's Tensor methods that are not math: views, conversions, in-place updates, bitwise
and integer-division operators. `tensor_api.TensorMethods` lists them; `composite._attach`
attaches them. Builds on `composite` (differentiable functions) and `tensor` only; no op table
entries and no derivative code live here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import composite as _c
from chainrule import ops
from chainrule.errors import OpTypeError
from chainrule.tensor import Tensor, is_grad_enabled, no_grad

# --------------------------------------------------------------------------- shape and views


def view(x: Tensor, *shape: Any) -> Tensor:
    """reshape under PyTorch's name. The result may share memory with x, as NumPy's reshape
    does, but in-place changes go through the version checks, never silently into a graph.
    `x.view(dtype)` reinterprets the bytes instead (see `view_dtype`)."""
    if len(shape) == 1 and _is_dtype(shape[0]):
        return view_dtype(x, shape[0])
    return _c.reshape(x, *shape)


def _is_dtype(a: Any) -> bool:
    if isinstance(a, (int, np.integer, tuple, list, Tensor)):
        return False
    try:
        np.dtype(a)
    except TypeError:
        return False
    return True


def view_dtype(x: Tensor, dtype: Any) -> Tensor:
    """The same bytes read as `dtype`, as torch's `Tensor.view(dtype)`: the last dimension
    scales by the ratio of the item sizes (it must divide evenly; a 0-d tensor keeps its
    item size). Not differentiable (bits have no derivative): a tensor that requires grad is
    refused, unless the dtype is its own. Memory is shared when x is contiguous.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.tensor([1.0], dtype="float32").view("int32").tolist()
    [1065353216]
    """
    new = np.dtype(dtype)
    if new == x.dtype:
        return _c.reshape(x, x.shape)
    if x.requires_grad and is_grad_enabled():
        raise OpTypeError(
            f"view: reading a tensor that requires grad as {new} is not differentiable "
            "(its bits have no derivative); call .detach() first"
        )
    old = x.dtype.itemsize
    if old != new.itemsize:
        if x.ndim == 0:
            raise ValueError(
                f"view: a 0-d {x.dtype} tensor ({old} bytes) cannot be read as {new} "
                f"({new.itemsize} bytes)"
            )
        if (x.shape[-1] * old) % new.itemsize:
            raise ValueError(
                f"view: the last dimension ({x.shape[-1]} x {old} bytes) is not a multiple of "
                f"{new}'s {new.itemsize} bytes"
            )
    arr = x.data if x.data.flags.c_contiguous else x.data.copy()  # (ascontiguousarray: 1-d)
    return Tensor(arr.view(new))


def permute(x: Tensor, *dims: Any) -> Tensor:
    """The axes reordered: `x.permute(1, 0)` or `x.permute((1, 0))` (NumPy's transpose(axes))."""
    return _c.transpose(x, _c._shape_arg(dims))


def t(x: Tensor) -> Tensor:
    """The transpose of a matrix; 0-d and 1-d tensors are returned as they are (torch.t)."""
    if x.ndim > 2:
        raise ValueError(f"t: expects a tensor of at most 2 dims, got shape {x.shape}")
    return _c.transpose(x) if x.ndim == 2 else x


def _matrix_transpose(x: Tensor) -> Tensor:
    if x.ndim < 2:
        raise ValueError(f"mT: needs at least 2 dims, got shape {x.shape}")
    return _c.swapaxes(x, -1, -2)


mT = property(_matrix_transpose, doc="The last two axes swapped (a batch of matrices transposed).")


def contiguous(x: Tensor) -> Tensor:
    """x itself: NumPy copies where it must, so no layout needs fixing."""
    return x


def dim(x: Tensor) -> int:
    """The number of axes (`ndim`)."""
    return x.ndim


def numel(x: Tensor) -> int:
    """The number of elements (`size` as NumPy counts it)."""
    return int(x.data.size)


def clamp(x: Any, min: Any = None, max: Any = None) -> Tensor:
    """PyTorch's name for `clip` (bounds included; the gradient passes at the bounds)."""
    return _c.clip(x, min, max)


# --------------------------------------------------------------------------- dtypes


def to(x: Tensor, target: Any) -> Tensor:
    """Cast to a dtype (`x.to(np.float64)`, `x.to("float64")`) or to another tensor's dtype.

    The device "cpu" is accepted and changes nothing; chainrule has no other device.
    """
    if isinstance(target, Tensor):
        return _c.astype(x, target.dtype)
    if isinstance(target, str) and target.split(":")[0] in ("cpu", "cuda", "mps"):
        if target != "cpu":
            raise ValueError(f"to: chainrule runs on NumPy, on the CPU only; got {target!r}")
        return x
    try:
        dtype = np.dtype(target)
    except TypeError:
        raise TypeError(f"to: expected a dtype, a tensor or 'cpu', got {target!r}") from None
    return _c.astype(x, dtype)


def float_(x: Tensor) -> Tensor:
    """Cast to float32."""
    return _c.astype(x, np.float32)


def double(x: Tensor) -> Tensor:
    """Cast to float64."""
    return _c.astype(x, np.float64)


def half(x: Tensor) -> Tensor:
    """Cast to float16."""
    return _c.astype(x, np.float16)


def clone(x: Tensor) -> Tensor:
    """A copy that stays in the graph (its gradient flows back to x), as torch.clone."""
    return ops.astype(x, dtype=x.dtype)  # astype always copies: a new node, new memory


# --------------------------------------------------------------------------- in-place updates


def _inplace(x: Tensor, name: str, f: Callable[..., Tensor], *others: Any) -> Tensor:
    """Write `f(x, *others)` into x's own array and make x the result's node.

    The old x lives on as a copy (the node the new one reads), so the graph before the change
    stays right; tensors computed from the old x notice the change through the version checks
    backward() already makes. A leaf that requires grad may change only under no_grad (an
    optimizer's update), as in PyTorch. A view (memory shared with another tensor) may change
    in place only outside the graph: it writes through to the other tensor, as in PyTorch, but
    without bumping that tensor's version.
    """
    record = is_grad_enabled() and (
        x.requires_grad or any(isinstance(o, Tensor) and o.requires_grad for o in others)
    )
    if record and x.is_leaf and x.requires_grad:
        raise RuntimeError(
            f"{name}: a leaf tensor that requires grad cannot change in place while gradients "
            "are recorded; use the out-of-place op, or change it under chainrule.no_grad()"
        )
    if record and x.data.base is not None:
        # the array is a view of another tensor's (view, reshape, T, basic indexing), whose
        # version counter would not see the change: its saved values would go silently wrong
        raise RuntimeError(
            f"{name}: this tensor shares memory with another (a view made by view, reshape, "
            "T or indexing) and the change would not be tracked; clone() it first"
        )
    if record:
        old = Tensor._leaf(x.data.copy(), x.requires_grad)
        # old is a copy no later change touches; the node's stamp still dates its inputs
        old._op, old._parents, old._params, old._clock = x._op, x._parents, x._params, x._clock
        out = f(old, *others)
    else:
        with no_grad():
            out = f(x, *others)
    if out.shape != x.shape:
        raise ValueError(
            f"{name}: the result has shape {out.shape}, but the tensor changed in place has "
            f"shape {x.shape} (the other operand must broadcast to it)"
        )
    if not np.can_cast(out.dtype, x.dtype, "same_kind"):
        raise TypeError(f"{name}: a {out.dtype} result cannot be stored in a {x.dtype} tensor")
    np.copyto(x.data, out.data, casting="same_kind")
    x._bump_version()
    if record:
        out = ops.astype(out, dtype=x.dtype)  # a fresh node of x's dtype for x to become
        x._op, x._parents, x._params = out._op, out._parents, out._params
        x._clock = out._clock  # made after x's own change above, so that one is not stale
        x.requires_grad = True
    return x


def add_(x: Tensor, other: Any, alpha: float = 1) -> Tensor:
    """x += alpha * other, in place."""
    return _inplace(x, "add_", lambda a, o: a + (o if alpha == 1 else alpha * o), other)


def sub_(x: Tensor, other: Any, alpha: float = 1) -> Tensor:
    """x -= alpha * other, in place."""
    return _inplace(x, "sub_", lambda a, o: a - (o if alpha == 1 else alpha * o), other)


def mul_(x: Tensor, other: Any) -> Tensor:
    """x *= other, in place."""
    return _inplace(x, "mul_", _c.multiply, other)


def div_(x: Tensor, other: Any) -> Tensor:
    """x /= other, in place."""
    return _inplace(x, "div_", _c.divide, other)


def copy_(x: Tensor, src: Any) -> Tensor:
    """x's values replaced by src's (broadcast, cast to x's dtype); the gradient flows to src."""
    return _inplace(
        x, "copy_", lambda a, s: _c.broadcast_to(_c.astype(_c._t(s), a.dtype), a.shape), src
    )


def fill_(x: Tensor, value: Any) -> Tensor:
    """Every element set to `value` (a number, or a 0-d tensor whose gradient is the sum)."""
    return copy_(x, value)


def zero_(x: Tensor) -> Tensor:
    """Every element set to 0: `x.grad.zero_()` clears an accumulated gradient."""
    return copy_(x, 0)


# --------------------------------------------------------------------------- operators


def _integral(name: str, *xs: Any) -> list[Any]:
    arrays = [x.data if isinstance(x, Tensor) else x for x in xs]
    for a in arrays:
        if np.asarray(a).dtype.kind not in "biu":
            raise OpTypeError(
                f"{name}: needs bool or integer tensors, got dtype {np.asarray(a).dtype}"
            )
    # Python ints stay Python ints, so they take the tensor's dtype (int32 & 7 is int32, as in
    # PyTorch and NumPy), not int64's
    return arrays


def _bitwise(name: str, f: Callable[..., Any]) -> Callable[[Tensor, Any], Tensor]:
    def method(self: Tensor, other: Any) -> Tensor:
        return Tensor(f(*_integral(name, self, other)))

    return method


def _rbitwise(name: str, f: Callable[..., Any]) -> Callable[[Tensor, Any], Tensor]:
    def method(self: Tensor, other: Any) -> Tensor:
        return Tensor(f(*_integral(name, other, self)))

    return method


def invert(x: Tensor) -> Tensor:
    """~x: logical not of a bool tensor, bitwise not of an integer one."""
    return Tensor(np.invert(_integral("~", x)[0]))


def floor_divide(x: Any, y: Any) -> Tensor:
    """x // y, rounded toward -inf as Python and NumPy do (one of x, y a Tensor).

    Its gradient is 0 (floor's) where PyTorch raises that floor_divide has no derivative.
    Python numbers stay numbers (not 0-d arrays), so they do not promote float32 to float64.
    """
    value = np.floor_divide(_c._data(x), _c._data(y))
    if value.dtype.kind not in "fc":  # integers: exact, and nothing to differentiate
        return Tensor(value)
    return _exact(ops.floor(x / y), value)


def remainder(x: Any, y: Any) -> Tensor:
    """x % y with the sign of y (Python's and NumPy's `%`, torch.remainder): the op table's
    mod, with its gradients (1 for x, -floor(x / y) for y, as torch.remainder)."""
    return _c.mod(x, y)


def _exact(t: Tensor, value: np.ndarray) -> Tensor:
    """t with NumPy's exactly rounded `value` and t's gradient: floor(x / y) can be off by one
    from x // y (1 // 0.1 is 9, floor(1 / 0.1) is 10), so the difference is added as a constant."""
    delta = value.astype(t.dtype) - t.data
    return t if not delta.any() else t + delta


def _reflected(f: Callable[[Any, Any], Tensor]) -> Callable[[Tensor, Any], Tensor]:
    return lambda self, other: f(other, self)


OPERATORS: dict[str, Any] = {
    "__and__": _bitwise("&", np.bitwise_and),
    "__or__": _bitwise("|", np.bitwise_or),
    "__xor__": _bitwise("^", np.bitwise_xor),
    "__rand__": _rbitwise("&", np.bitwise_and),
    "__ror__": _rbitwise("|", np.bitwise_or),
    "__rxor__": _rbitwise("^", np.bitwise_xor),
    "__lshift__": _bitwise("<<", np.left_shift),
    "__rshift__": _bitwise(">>", np.right_shift),
    "__rlshift__": _rbitwise("<<", np.left_shift),
    "__rrshift__": _rbitwise(">>", np.right_shift),
    "__invert__": invert,
    "__floordiv__": floor_divide,
    "__rfloordiv__": _reflected(floor_divide),
    "__mod__": remainder,
    "__rmod__": _reflected(remainder),
}
