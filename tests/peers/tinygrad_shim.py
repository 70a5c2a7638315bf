"""tinygrad's `Tensor` API as a thin layer over chainrule, to run tinygrad's own test_ops.py.

`tinygrad_plugin.py` installs this module as `tinygrad` (and the submodules test_ops.py
imports) in `sys.modules`, in the subprocess that runs tinygrad's tests only. It translates
names and calling conventions (tinygrad's `axis=`/`keepdim=`, its padding layouts, `cast`,
`gradient`, ...) and computes nothing itself: every value comes from chainrule. What chainrule
lacks raises `Unsupported`, naming it.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from typing import Any

import numpy as np

import chainrule as cr
from chainrule.nn import functional as F


class Unsupported(NotImplementedError):
    """A tinygrad API chainrule has no counterpart for (reported as an expected failure)."""


# --------------------------------------------------------------------------- dtypes, device


def _dt(name: str) -> np.dtype:
    return np.dtype(name)


class dtypes:
    """tinygrad's dtypes as the NumPy dtypes chainrule stores, so `t.dtype == dtypes.int32`."""

    float16 = half = _dt("float16")
    float32 = float = default_float = _dt("float32")
    float64 = double = _dt("float64")
    int8, int16, int32, int64 = (_dt(f"int{n}") for n in (8, 16, 32, 64))
    int = default_int = long = int32
    uint8 = uchar = _dt("uint8")
    uint16, uint32, uint64 = (_dt(f"uint{n}") for n in (16, 32, 64))
    bool = _dt("bool")

    @staticmethod
    def min(dt: Any) -> Any:
        dt = np.dtype(dt)
        return False if dt.kind == "b" else -np.inf if dt.kind == "f" else np.iinfo(dt).min

    @staticmethod
    def max(dt: Any) -> Any:
        dt = np.dtype(dt)
        return True if dt.kind == "b" else np.inf if dt.kind == "f" else np.iinfo(dt).max

    @staticmethod
    def is_float(dt: Any) -> bool:
        return np.dtype(dt).kind == "f"

    @staticmethod
    def is_int(dt: Any) -> bool:
        return np.dtype(dt).kind in "iu"


def _to_np_dtype(dt: Any) -> np.dtype:
    return np.dtype(dt)


def is_dtype_supported(dt: Any, device: Any = None) -> bool:
    return True  # chainrule runs on NumPy, which has every dtype test_ops.py asks about


class Device:
    DEFAULT = "CPU"


def getenv(key: str, default: Any = 0) -> Any:
    return type(default)(os.environ.get(key, default))


@contextlib.contextmanager
def Context(**kwargs: Any) -> Iterator[None]:
    yield  # tinygrad's compiler settings: nothing to set on chainrule


IMAGE = DEBUG = CPU_LLVM = AMD_LLVM = EMULATE = 0
CI = True  # quiets test_ops.py's per-test timing prints

# --------------------------------------------------------------------------- wrapping


def _unwrap(v: Any) -> Any:
    if isinstance(v, Tensor):
        return v.t
    if isinstance(v, (list, tuple)) and not hasattr(v, "_fields"):
        return type(v)(_unwrap(e) for e in v)
    if isinstance(v, dict):
        return {k: _unwrap(e) for k, e in v.items()}
    return v


def _wrap(v: Any) -> Any:
    if isinstance(v, cr.Tensor):
        return Tensor._of(v)
    if isinstance(v, (list, tuple)):
        return tuple(_wrap(e) for e in v) if isinstance(v, tuple) else [_wrap(e) for e in v]
    return v


def _call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return _wrap(fn(*_unwrap(args), **_unwrap(kwargs)))


def _lookup(name: str) -> Any:
    """chainrule's function for a tinygrad name: a Tensor method, else a module function."""
    name = _ALIASES.get(name, name)
    fn = getattr(cr.Tensor, name, None) or getattr(cr, name, None)
    if fn is None or (name.startswith("_") and name not in _ALIASES.values()):
        raise Unsupported(f"chainrule has no {name}")
    return fn


# tinygrad names whose chainrule function has another name (same meaning, same arguments)
_ALIASES = {
    "neg": "negative",
    "asin": "arcsin",
    "acos": "arccos",
    "atan": "arctan",
    "asinh": "arcsinh",
    "acosh": "arccosh",
    "atanh": "arctanh",
    "swish": "silu",
    "sub": "subtract",
    "mul": "multiply",
    "clamp": "clip",
    "pow": "power",
    "mod": "remainder",
    "logical_not": "__invert__",
    "bitwise_not": "__invert__",
    "bitwise_and": "__and__",
    "bitwise_or": "__or__",
    "bitwise_xor": "__xor__",
    "lshift": "__lshift__",
    "rshift": "__rshift__",
}


def _shape(shape: tuple[Any, ...]) -> tuple[int, ...]:
    """tinygrad's `f(2, 3)` and `f((2, 3))`; a negative size is tinygrad's ValueError."""
    dims = tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    if any(d < 0 for d in dims):
        raise ValueError(f"negative dimension in shape {dims}")
    return tuple(dims)


def _default_dtype(value: Any) -> np.dtype:
    """tinygrad's dtype for a Python value: bool, int32 for ints, float32 for floats."""
    if isinstance(value, (bool, np.bool_)):
        return dtypes.bool
    return dtypes.int32 if isinstance(value, (int, np.integer)) else dtypes.float32


def _python_array(data: Any) -> np.ndarray:
    """A Python list or number as tinygrad types it (ints int32, floats float32)."""
    arr = np.asarray(data)
    if arr.dtype.kind == "i":
        return arr.astype(np.int32)
    if arr.dtype.kind == "f":
        return arr.astype(np.float32)
    return arr


def _axis(axis: Any) -> Any:
    return tuple(axis) if isinstance(axis, list) else axis


def _tensors(first: Any, rest: tuple[Any, ...]) -> list[Any]:
    """tinygrad's `Tensor.stack(a, b)`, `a.stack(b)` and `Tensor.stack((a, b))`."""
    if isinstance(first, (list, tuple)):
        if rest:
            raise ValueError("give the tensors either as arguments or as one sequence")
        return list(first)
    return [first, *rest]


def _int32(v: Any) -> Any:
    """A Python int as tinygrad types it (int32; chainrule's default int is int64)."""
    return np.int32(v) if isinstance(v, int) and not isinstance(v, bool) else v


def _pairs(padding: Any, ndim: int) -> list[tuple[int, int]]:
    """tinygrad's two padding layouts as (before, after) per axis, first axis first: flat
    PyTorch order (last axis first) or one pair (or None) per axis."""
    if all(isinstance(p, (int, np.integer)) for p in padding):
        if len(padding) % 2 or len(padding) > 2 * ndim:
            raise ValueError(f"pad: flat padding {tuple(padding)} for {ndim} dims")
        flat = [(int(padding[i]), int(padding[i + 1])) for i in range(0, len(padding), 2)]
        return [(0, 0)] * (ndim - len(flat)) + flat[::-1]
    if len(padding) != ndim:
        raise ValueError(f"pad: {len(padding)} pairs for {ndim} dims")
    return [(0, 0) if p is None else (int(p[0]), int(p[1])) for p in padding]


def _flat(pairs: list[tuple[int, int]]) -> list[int]:
    """(before, after) per axis as PyTorch's flat list, last axis first."""
    return [p for pair in pairs[::-1] for p in pair]


def _conv_pads(padding: Any, dims: int) -> tuple[Any, list[tuple[int, int]] | None]:
    """tinygrad's conv/pool padding: an int, one per spatial dim, or 2 per dim in flat
    (PyTorch pad) order. Symmetric ones go to chainrule's `padding=`; the rest as pairs."""
    if isinstance(padding, (int, np.integer)) or len(padding) == dims:
        return padding, None
    if len(padding) != 2 * dims:
        raise ValueError(f"padding {padding} must have {dims} or {2 * dims} entries")
    pairs = [(padding[i], padding[i + 1]) for i in range(0, len(padding), 2)][::-1]
    if all(a == b for a, b in pairs):
        return tuple(a for a, _ in pairs), None
    return 0, pairs


_FNS = {1: "1d", 2: "2d", 3: "3d"}


def _spatial(fn: str, dims: int) -> Any:
    if dims not in _FNS:
        raise Unsupported(f"chainrule has no {fn}{dims}d")
    return getattr(F, f"{fn}{_FNS[dims]}")


# --------------------------------------------------------------------------- Tensor


class _TensorType(type):
    """`Tensor.relu(x)`, `Tensor.maximum(a, b)`, `Tensor.einsum(...)`: chainrule's function."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fn = _lookup(name)
        return lambda *args, **kwargs: _call(fn, *args, **kwargs)


class Tensor(metaclass=_TensorType):
    """tinygrad's Tensor: holds a chainrule Tensor `t` and forwards to it."""

    __slots__ = ("t",)
    t: cr.Tensor

    def __init__(
        self, data: Any, device: Any = None, dtype: Any = None, requires_grad: bool | None = None
    ) -> None:
        if isinstance(data, Tensor):
            data = data.t.data
        elif not isinstance(data, np.ndarray):
            data = _python_array(data)
        arr = np.asarray(data, dtype=dtype)
        if requires_grad is None:  # tinygrad: any float tensor may be differentiated
            requires_grad = arr.dtype.kind == "f"
        self.t = cr.tensor(arr, requires_grad=bool(requires_grad))

    @classmethod
    def _of(cls, t: cr.Tensor) -> Tensor:
        self = object.__new__(cls)
        self.t = t
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        fn = _lookup(name)
        return functools.partial(_call, fn, self)

    def __repr__(self) -> str:
        return f"<Tensor {self.t!r}>"

    # -- properties and tinygrad's own lifecycle ------------------------------------
    shape = property(lambda self: tuple(self.t.shape))
    dtype = property(lambda self: self.t.dtype)
    ndim = property(lambda self: self.t.ndim)
    device = property(lambda self: Device.DEFAULT)
    T = property(lambda self: _wrap(self.t.T))

    @property
    def grad(self) -> Tensor | None:
        return _wrap(self.t.grad)

    @grad.setter
    def grad(self, value: Any) -> None:
        self.t.grad = _unwrap(value)

    @property
    def requires_grad(self) -> bool:
        return self.t.requires_grad

    @requires_grad.setter
    def requires_grad(self, value: Any) -> None:
        self.t.requires_grad = bool(value)

    def numel(self) -> int:
        return int(self.t.data.size)

    def numpy(self) -> np.ndarray:
        return np.array(self.t.data)

    def item(self) -> Any:
        return self.t.data.item()

    def tolist(self) -> Any:
        return self.t.data.tolist()

    def realize(self, *others: Tensor) -> Tensor:
        return self  # chainrule is eager

    def contiguous(self) -> Tensor:
        return self

    def detach(self) -> Tensor:
        return _wrap(self.t.detach())

    def backward(self, gradient: Any = None) -> Tensor:
        self.t.backward(_unwrap(gradient))
        return self

    def gradient(self, *targets: Tensor) -> list[Tensor]:
        """d self / d target for each target, without touching their `.grad`."""
        ts = [x.t for x in targets]
        saved = [t.grad for t in ts]
        for t in ts:
            t.grad = None
        try:
            self.t.backward(cr.ones_like(self.t), retain_graph=True)
            grads = [t.grad for t in ts]
        finally:
            for t, g in zip(ts, saved):
                t.grad = g
        for t, g in zip(ts, grads):
            if g is None:  # a zero would pass for a value: say that no gradient came back
                raise Unsupported(f"chainrule sends no gradient to an input of shape {t.shape}")
        return [_wrap(g) for g in grads]

    # -- creation ------------------------------------------------------------------
    @staticmethod
    def empty(*shape: Any, dtype: Any = None, requires_grad: Any = None, **kw: Any) -> Tensor:
        return Tensor.full(
            _shape(shape), 0, dtype=dtype or dtypes.float32, requires_grad=requires_grad
        )

    @staticmethod
    def zeros(*shape: Any, dtype: Any = None, requires_grad: Any = None, **kw: Any) -> Tensor:
        return Tensor.full(
            _shape(shape), 0, dtype=dtype or dtypes.float32, requires_grad=requires_grad
        )

    @staticmethod
    def ones(*shape: Any, dtype: Any = None, requires_grad: Any = None, **kw: Any) -> Tensor:
        return Tensor.full(
            _shape(shape), 1, dtype=dtype or dtypes.float32, requires_grad=requires_grad
        )

    @staticmethod
    def full(
        shape: Any, fill_value: Any, dtype: Any = None, requires_grad: Any = None, **kw: Any
    ) -> Tensor:
        shape = _shape((shape,) if isinstance(shape, int) else tuple(shape))
        made = cr.full(shape, fill_value, dtype=dtype or _default_dtype(fill_value))
        return Tensor(made.data, requires_grad=requires_grad)

    def full_like(self, fill_value: Any, dtype: Any = None, **kw: Any) -> Tensor:
        return Tensor.full(self.shape, fill_value, dtype=dtype or self.dtype, **kw)

    def zeros_like(self, dtype: Any = None, **kw: Any) -> Tensor:
        return Tensor.full(self.shape, 0, dtype=dtype or self.dtype, **kw)

    def ones_like(self, dtype: Any = None, **kw: Any) -> Tensor:
        return Tensor.full(self.shape, 1, dtype=dtype or self.dtype, **kw)

    @staticmethod
    def rand(*shape: Any, dtype: Any = None, requires_grad: Any = None, **kw: Any) -> Tensor:
        return Tensor(cr.rand(*_shape(shape), dtype=dtype).data, requires_grad=requires_grad)

    @staticmethod
    def randn(*shape: Any, dtype: Any = None, requires_grad: Any = None, **kw: Any) -> Tensor:
        return Tensor(cr.randn(*_shape(shape), dtype=dtype).data, requires_grad=requires_grad)

    @staticmethod
    def randint(*shape: Any, low: int = 0, high: int = 10, dtype: Any = None, **kw: Any) -> Tensor:
        return _wrap(cr.randint(low, high, _shape(shape), dtype=dtype or dtypes.int32))

    @staticmethod
    def normal(
        *shape: Any, mean: float = 0.0, std: float = 1.0, requires_grad: Any = None, **kw: Any
    ) -> Tensor:
        made = cr.normal(mean, std, _shape(shape))
        return Tensor(made.data, requires_grad=requires_grad)

    @staticmethod
    def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None, **kw: Any) -> Tensor:
        args = (start,) if stop is None else (start, stop, step)
        if dtype is None:
            dtype = dtypes.float32 if any(isinstance(a, float) for a in args) else dtypes.int32
        return _wrap(cr.arange(*args, dtype=dtype))

    @staticmethod
    def linspace(start: Any, stop: Any, steps: int, dtype: Any = None, **kw: Any) -> Tensor:
        return _wrap(cr.linspace(start, stop, steps, dtype=dtype or dtypes.float32))

    @staticmethod
    def eye(n: int, m: int | None = None, dtype: Any = None, **kw: Any) -> Tensor:
        if n < 0 or (m is not None and m < 0):
            raise ValueError(f"eye: negative size {(n, m)}")
        return _wrap(cr.eye(n, m, dtype=dtype or dtypes.float32))

    @staticmethod
    def manual_seed(seed: int = 0) -> None:
        cr.manual_seed(seed)

    # -- reductions: tinygrad's axis= with keepdim= ----------------------------------
    def _reduce(self, name: str, axis: Any = None, keepdim: bool = False, **kw: Any) -> Any:
        return _call(getattr(cr, name), self, axis=_axis(axis), keepdims=keepdim, **kw)

    def sum(self, axis: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
        out = self._reduce("sum", axis, keepdim)
        return out if dtype is None else out.cast(dtype)

    def prod(self, axis: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
        out = self._reduce("prod", axis, keepdim)
        return out if dtype is None else out.cast(dtype)

    def max(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("max", axis, keepdim)

    def min(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("min", axis, keepdim)

    def mean(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("mean", axis, keepdim)

    def any(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("any", axis, keepdim)

    def all(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("all", axis, keepdim)

    def var(self, axis: Any = None, keepdim: bool = False, correction: int = 1) -> Tensor:
        return self._reduce("var", axis, keepdim, correction=correction)

    def std(self, axis: Any = None, keepdim: bool = False, correction: int = 1) -> Tensor:
        return self._reduce("std", axis, keepdim, correction=correction)

    def var_mean(self, axis: Any = None, keepdim: bool = False, correction: int = 1) -> Any:
        return self.var(axis, keepdim, correction), self.mean(axis, keepdim)

    def std_mean(self, axis: Any = None, keepdim: bool = False, correction: int = 1) -> Any:
        return self.std(axis, keepdim, correction), self.mean(axis, keepdim)

    def logsumexp(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("logsumexp", axis, keepdim)

    def argmax(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("argmax", axis, keepdim).cast(dtypes.int32)

    def argmin(self, axis: Any = None, keepdim: bool = False) -> Tensor:
        return self._reduce("argmin", axis, keepdim).cast(dtypes.int32)

    def softmax(self, axis: int = -1) -> Tensor:
        return _call(cr.softmax, self, axis=axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return _call(cr.log_softmax, self, axis=axis)

    def cumsum(self, axis: int = 0) -> Tensor:
        return _call(cr.cumsum, self, axis=axis)

    def cumprod(self, axis: int) -> Tensor:
        return _call(cr.cumprod, self, axis=axis)

    def logcumsumexp(self, axis: int = 0) -> Tensor:
        return _call(cr.logcumsumexp, self, axis=axis)

    def cummax(self, axis: int = 0) -> Tensor:
        return _call(cr.cummax, self, axis=axis)[0]  # tinygrad: the values only

    def sort(self, dim: int = -1, descending: bool = False) -> Any:
        values, indices = _call(cr.sort, self, dim=dim, descending=descending)
        return values, indices.cast(dtypes.int32)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted_: bool = True) -> Any:
        values, indices = _call(cr.topk, self, k, dim=dim, largest=largest, sorted=sorted_)
        return values, indices.cast(dtypes.int32)

    def argsort(self, dim: int = -1, descending: bool = False) -> Tensor:
        return self.sort(dim, descending)[1]

    # -- casts ----------------------------------------------------------------------
    def cast(self, dtype: Any) -> Tensor:
        return _call(cr.astype, self, np.dtype(dtype))

    def bitcast(self, dtype: Any) -> Tensor:
        """PyTorch's view(dtype); tinygrad's bitcast has no gradient, so the graph is cut."""
        return _wrap(self.t.detach().view(np.dtype(dtype)))

    def float(self) -> Tensor:
        return self.cast(dtypes.float32)

    def half(self) -> Tensor:
        return self.cast(dtypes.float16)

    def int(self) -> Tensor:
        return self.cast(dtypes.int32)

    def bool(self) -> Tensor:
        return self.cast(dtypes.bool)

    # -- movement -------------------------------------------------------------------
    def pad(self, padding: Any, mode: str = "constant", value: float = 0.0) -> Tensor:
        return _call(F.pad, self, _flat(_pairs(padding, self.ndim)), mode=mode, value=value)

    def shrink(self, arg: Any) -> Tensor:
        return self[tuple(slice(None) if a is None else slice(a[0], a[1]) for a in arg)]

    def roll(self, shifts: Any, dims: Any = None) -> Tensor:
        return _call(cr.roll, self, shifts, dims=dims)

    def squeeze(self, dim: Any = None) -> Tensor:
        return _call(cr.squeeze, self) if dim is None else _call(cr.squeeze, self, dim=dim)

    def transpose(self, dim0: int = 1, dim1: int = 0) -> Tensor:
        return _call(cr.swapaxes, self, dim0, dim1)

    def cat(self, *args: Tensor, dim: int = 0) -> Tensor:
        return _call(cr.cat, _tensors(self, args), dim=dim)

    def stack(self, *args: Tensor, dim: int = 0) -> Tensor:
        return _call(cr.stack, _tensors(self, args), dim=dim)

    def split(self, sizes: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """tinygrad's split takes chunk sizes (torch's), chainrule's NumPy's sections."""
        n = self.shape[dim]
        if isinstance(sizes, int):
            sizes = [min(sizes, n - i) for i in range(0, n, max(sizes, 1))]
        cuts = np.cumsum(sizes)[:-1].tolist()
        return tuple(_call(cr.split, self, cuts, axis=dim))

    def reshape(self, shape: Any, *more: Any) -> Tensor:
        dims = (shape, *more) if more or not isinstance(shape, (tuple, list)) else tuple(shape)
        # tinygrad: None keeps that dimension
        return _call(
            cr.reshape,
            self,
            tuple(s if d is None else d for d, s in zip(dims, self.shape))
            + tuple(dims[self.ndim :]),
        )

    def one_hot(self, num_classes: int = -1) -> Tensor:
        return _call(cr.one_hot, self, num_classes).cast(dtypes.int32)  # tinygrad's int

    def scatter(self, dim: int, index: Tensor, src: Any, reduce: str | None = None) -> Tensor:
        if reduce is None:
            return _call(cr.scatter, self, dim, index, src)
        if reduce == "add":  # tinygrad and torch's reduce= take a number for src too
            if not isinstance(src, Tensor):
                src = Tensor.full(index.shape, src, dtype=self.dtype)
            return _call(cr.scatter_add, self, dim, index, src)
        raise Unsupported(f"chainrule's scatter has no reduce={reduce!r}")

    def dot(self, w: Tensor, dtype: Any = None) -> Tensor:
        return _call(cr.matmul, self, w)

    def matmul(self, x: Tensor, reverse: bool = False, dtype: Any = None) -> Tensor:
        return _call(cr.matmul, x, self) if reverse else _call(cr.matmul, self, x)

    def where(self, x: Any, y: Any) -> Tensor:
        return _call(cr.where, self, _int32(x), _int32(y))

    def leaky_relu(self, neg_slope: float = 0.01) -> Tensor:
        return _call(cr.leaky_relu, self, neg_slope)

    def gelu(self) -> Tensor:
        return _call(cr.gelu, self, approximate="tanh")  # tinygrad's gelu is the tanh form

    def clip(self, min_: Any = None, max_: Any = None) -> Tensor:
        return _call(cr.clip, self, min_, max_)

    clamp = clip

    def div(self, x: Any, reverse: bool = False, rounding_mode: str | None = None) -> Tensor:
        a, b = (x, self) if reverse else (self, x)
        return _call(cr.divide, a, b, rounding_mode=rounding_mode)

    def idiv(self, x: Any, reverse: bool = False) -> Tensor:
        return self.div(x, reverse, rounding_mode="trunc")

    def einsum(formula: str, *operands: Any, dtype: Any = None) -> Tensor:  # type: ignore[misc]
        if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
            operands = tuple(operands[0])
        return _call(cr.einsum, formula, *operands)

    einsum = staticmethod(einsum)  # type: ignore[assignment]

    # -- nn --------------------------------------------------------------------------
    def conv2d(
        self, weight: Tensor, bias: Any = None, groups: int = 1, stride: Any = 1,
        dilation: Any = 1, padding: Any = 0, dtype: Any = None,
    ) -> Tensor:  # fmt: skip
        dims = weight.ndim - 2
        pad, pairs = _conv_pads(padding, dims)
        if pairs is None and np.min(pad) < 0:  # tinygrad: negative padding crops
            pad, pairs = 0, [(int(p), int(p)) for p in np.broadcast_to(pad, (dims,))]
        x = self if pairs is None else self.pad([(0, 0), (0, 0), *pairs])
        conv = _spatial("conv", dims)
        return _call(
            conv, x, weight, bias, stride=stride, padding=pad, dilation=dilation, groups=groups
        )

    def conv_transpose2d(
        self, weight: Tensor, bias: Any = None, groups: int = 1, stride: Any = 1,
        dilation: Any = 1, padding: Any = 0, output_padding: Any = 0,
    ) -> Tensor:  # fmt: skip
        conv = _spatial("conv_transpose", weight.ndim - 2)
        return _call(
            conv,
            self,
            weight,
            bias,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            groups=groups,
            dilation=dilation,
        )

    def _pool(self, kind: str, kernel_size: Any, padding: Any, **kw: Any) -> Any:
        dims = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 2
        pad, pairs = _conv_pads(padding, dims)
        x = self
        if pairs is not None:  # asymmetric: pad first, with what the pool ignores
            if kind != "max_pool" or self.dtype.kind != "f":
                raise Unsupported(f"chainrule's {kind} takes symmetric padding, not {padding}")
            lead = [(0, 0)] * (self.ndim - dims)
            x = self.pad([*lead, *pairs], value=-np.inf)
        out = _call(_spatial(kind, dims), x, kernel_size, padding=pad, **kw)
        if isinstance(out, tuple):  # (values, indices): tinygrad's int32 indices
            return out[0], out[1].cast(dtypes.int32)
        return out

    def max_pool2d(
        self, kernel_size: Any = (2, 2), stride: Any = None, dilation: Any = 1, padding: Any = 0,
        ceil_mode: bool = False, return_indices: bool = False,
    ) -> Any:  # fmt: skip
        return self._pool(
            "max_pool",
            kernel_size,
            padding,
            stride=stride,
            dilation=dilation,
            ceil_mode=ceil_mode,
            return_indices=return_indices,
        )

    def max_unpool2d(
        self, indices: Tensor, kernel_size: Any = (2, 2), stride: Any = None, dilation: Any = 1,
        padding: Any = 0, output_size: Any = None,
    ) -> Tensor:  # fmt: skip
        if dilation != 1:
            raise Unsupported("chainrule's max_unpool has no dilation (PyTorch's neither)")
        dims = len(kernel_size) if isinstance(kernel_size, (tuple, list)) else 2
        return _call(
            _spatial("max_unpool", dims),
            self,
            indices,
            kernel_size,
            stride=stride,
            padding=padding,
            output_size=output_size,
        )

    def avg_pool2d(
        self, kernel_size: Any = (2, 2), stride: Any = None, dilation: Any = 1, padding: Any = 0,
        ceil_mode: bool = False, count_include_pad: bool = True,
    ) -> Tensor:  # fmt: skip
        if dilation != 1:
            raise Unsupported("chainrule's avg_pool has no dilation")
        return self._pool(
            "avg_pool",
            kernel_size,
            padding,
            stride=stride,
            ceil_mode=ceil_mode,
            count_include_pad=count_include_pad,
        )

    def interpolate(self, size: Any, mode: str = "linear", align_corners: bool = False) -> Any:
        if mode == "linear":  # tinygrad's linear is over every spatial dim
            mode = {3: "linear", 4: "bilinear", 5: "trilinear"}.get(self.ndim, mode)
        corners = align_corners if "linear" in mode else None
        return _call(F.interpolate, self, size=size, mode=mode, align_corners=corners)

    def scaled_dot_product_attention(
        self, key: Tensor, value: Tensor, attn_mask: Any = None, dropout_p: float = 0.0,
        is_causal: bool = False, enable_gqa: bool = False,
    ) -> Tensor:  # fmt: skip
        return _call(
            F.scaled_dot_product_attention,
            self,
            key,
            value,
            attn_mask=attn_mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            enable_gqa=enable_gqa,
        )

    def sparse_categorical_crossentropy(
        self, Y: Tensor, ignore_index: int = -1, label_smoothing: float = 0.0,
        reduction: str = "mean",
    ) -> Tensor:  # fmt: skip
        x = self if self.ndim <= 2 else _call(cr.moveaxis, self, -1, 1)  # tinygrad: classes last
        return _call(
            F.cross_entropy,
            x,
            Y,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=label_smoothing,
        )

    def cross_entropy(
        self, Y: Tensor, reduction: str = "mean", label_smoothing: float = 0.0
    ) -> Any:
        return _call(F.cross_entropy, self, Y, reduction=reduction, label_smoothing=label_smoothing)

    def nll_loss(
        self, Y: Tensor, weight: Any = None, ignore_index: Any = None, reduction: str = "mean"
    ) -> Tensor:
        ignore = -100 if ignore_index is None else ignore_index
        return _call(F.nll_loss, self, Y, weight, ignore_index=ignore, reduction=reduction)

    def binary_crossentropy(self, Y: Tensor, reduction: str = "mean") -> Tensor:
        return _call(F.binary_cross_entropy, self, Y, reduction=reduction)

    def binary_crossentropy_logits(
        self, Y: Tensor, reduction: str = "mean", pos_weight: Any = None
    ) -> Tensor:
        return _call(
            F.binary_cross_entropy_with_logits, self, Y, reduction=reduction, pos_weight=pos_weight
        )

    # -- operators ---------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Tensor:
        return _wrap(self.t[_unwrap(index)])

    def __setitem__(self, index: Any, value: Any) -> None:
        self.t[_unwrap(index)] = _unwrap(value)

    def __len__(self) -> int:
        return len(self.t)

    def __bool__(self) -> bool:
        return bool(self.t)


def _dunder(name: str) -> Any:
    def op(self: Tensor, *args: Any) -> Any:
        return _call(getattr(cr.Tensor, name), self, *args)

    op.__name__ = name
    return op


for _name in [
    "add",
    "radd",
    "sub",
    "rsub",
    "mul",
    "rmul",
    "truediv",
    "rtruediv",
    "floordiv",
    "rfloordiv",
    "mod",
    "rmod",
    "pow",
    "rpow",
    "matmul",
    "rmatmul",
    "neg",
    "pos",
    "abs",
    "invert",
    "and",
    "rand",
    "or",
    "ror",
    "xor",
    "rxor",
    "lshift",
    "rlshift",
    "rshift",
    "rrshift",
    "lt",
    "le",
    "gt",
    "ge",
    "eq",
    "ne",
]:
    setattr(Tensor, f"__{_name}__", _dunder(f"__{_name}__"))
