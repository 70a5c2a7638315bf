"""Tensor: a NumPy array plus the edge to the op that made it; `apply` runs and records an op.

Owns the Tensor class, `apply` (the forward dispatch that records graph nodes) and in-place
version counting. The reverse sweep lives in `backward.py`, grad mode in `mode.py`; ops are
known only through the OpDef interface (`forward`, `vjps`, `name`). Imports NumPy only.
"""

from __future__ import annotations

import itertools
import os
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from chainrule.errors import OpError, OpIndexError, OpTypeError
from chainrule.mode import _state
from chainrule.mode import detect_anomaly as detect_anomaly
from chainrule.mode import enable_grad as enable_grad
from chainrule.mode import is_grad_enabled as is_grad_enabled
from chainrule.mode import no_grad as no_grad

if TYPE_CHECKING:  # operators and math methods, declared for mypy (attached in composite.py)
    from chainrule.tensor_api import TensorMethods as _Methods
else:
    _Methods = object

# The clock: one counter (a C iterator: atomic, so numbers are never repeated across threads)
# that stamps every graph node when its op runs and every in-place change to a Tensor.
# Two uses. Creation order is a topological order (a node is made after its inputs), so eager
# backward() sweeps its graph newest stamp first without a separate toposort. And a node made
# after the last in-place change anywhere (`_inplace_last`) has seen none, so backward skips
# its version check without looking at its inputs (the common case: an optimizer updates the
# parameters between one backward and the next forward). Process-wide on purpose, unlike the
# per-thread state in mode.py: a tensor changed in one thread must still be checked by a
# backward() in another.
_tick = itertools.count(1).__next__
_inplace_last = 0  # the stamp of the latest in-place change


class _Version:
    """A tensor's in-place changes: how many (`count`, PyTorch's `_version`) and the clock's
    value at the last one (`stamp`). Shared by the tensors that share memory through
    `detach()`, as PyTorch shares its version counter, so a change made through either one is
    seen by the graph that saved the other. Made on the first change or detach: most tensors
    never need one."""

    __slots__ = ("count", "stamp")

    def __init__(self) -> None:
        self.count = 0
        self.stamp = 0


# --------------------------------------------------------------------------- the allocator

_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3  # glibc's mallopt parameters


def _tune_malloc() -> bool:
    """Keep freed array memory in the process instead of handing it back to the kernel.

    A training step frees and reallocates the same large arrays every step. With glibc's
    defaults each one above 128 KiB (or above the dynamic mmap threshold) is unmapped or
    trimmed on free and page-faulted back in on the next step: about 2,000 minor faults per
    W1 step (benchmarks/), a third of its time. PyTorch avoids this with a caching
    allocator; we ask glibc to keep up to 1 GiB of free heap and to serve arrays up to 32 MiB
    (its maximum) from the heap. Only on glibc Linux; set CHAINRULE_NO_MALLOPT=1 to opt out.
    """
    if os.environ.get("CHAINRULE_NO_MALLOPT") or not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):  # musl and others: different knobs
            return False
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 2**20)
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 2**30)
        ok &= libc.mallopt(_M_TOP_PAD, 64 * 2**20)
        return bool(ok)
    except (OSError, AttributeError):
        return False


MALLOC_TUNED = _tune_malloc()

# --------------------------------------------------------------------------- dtypes


def _as_array(data: Any, dtype: Any = None) -> np.ndarray:
    """NumPy array for `data`; Python floats become float32, NumPy float64 stays float64."""
    if isinstance(data, Tensor):
        arr = data.data
    elif isinstance(data, (np.ndarray, np.generic)):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if dtype is None and arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    if dtype is not None:
        arr = arr.astype(dtype, copy=False)
    return arr


def _check_float(arr: np.ndarray, what: str) -> None:
    if arr.dtype.kind not in "fc":
        raise TypeError(
            f"{what}: only floating-point tensors can require gradients, got dtype {arr.dtype}"
        )


# --------------------------------------------------------------------------- Tensor


class Size(int):
    """An element count that is also PyTorch's `size` method: `x.size == 6` as in NumPy,
    `x.size()` the shape and `x.size(0)` one dimension, as in PyTorch."""

    shape: tuple[int, ...]

    def __new__(cls, shape: tuple[int, ...]) -> Size:
        n = super().__new__(cls, int(np.prod(shape, dtype=np.int64)))
        n.shape = shape
        return n

    def __call__(self, dim: int | None = None) -> Any:
        if dim is None:
            return self.shape
        if not -len(self.shape) <= dim < len(self.shape):
            raise IndexError(f"size: dim {dim} is out of range for shape {self.shape}")
        return self.shape[dim]


class Tensor(_Methods):
    """An n-dimensional array that remembers how it was computed.

    Create one with :func:`chainrule.tensor`. `data` is the NumPy array, `grad` the gradient
    (a Tensor, filled in by :meth:`backward`), `requires_grad` whether gradients flow to it.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(3.0, requires_grad=True)
    >>> y = x ** 2
    >>> y.backward()
    >>> x.grad
    tensor(6.)
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_op",
        "_params",
        "_parents",
        "_retains_grad",
        "_vc",
        "data",
        "grad",
        "name",
        "requires_grad",
    )
    __array_ufunc__ = None  # make `ndarray + Tensor` call Tensor.__radd__
    __hash__ = object.__hash__  # == is elementwise, hashing is by identity

    def __init__(
        self, data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None
    ) -> None:
        arr = _as_array(data, dtype)
        if requires_grad:
            _check_float(arr, "tensor")
        self.data = arr
        self.grad: Tensor | None = None
        self.requires_grad = bool(requires_grad)
        self.name = name
        self._op: Any = None
        self._parents: tuple[Any, ...] | None = ()
        self._params: dict[str, Any] | None = None
        self._vc: _Version | None = None
        if isinstance(data, Tensor) and arr is data.data:  # the same memory, as detach()
            self._vc = data._shared_version()
        self._clock = 0
        self._retains_grad = False

    # -- basic properties -------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> Size:
        """The number of elements, as NumPy's `size`; called, PyTorch's `size()`/`size(dim)`."""
        return Size(self.data.shape)

    @property
    def is_leaf(self) -> bool:
        """True for tensors made by the user rather than by an op that records a graph."""
        return self._op is None

    @property
    def op(self) -> Any:
        """The OpDef that produced this tensor, or None for a leaf."""
        return self._op

    @property
    def parents(self) -> tuple[Any, ...]:
        """The inputs of the op that produced this tensor (Tensors or constants)."""
        if self._parents is None:
            raise RuntimeError(_freed_message(self))
        return self._parents

    @property
    def params(self) -> dict[str, Any]:
        """The op's non-tensor arguments (axis, shape, index, ...)."""
        return self._params or {}

    def item(self) -> Any:
        """The single value as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item(): tensor has {self.data.size} elements, expected 1")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (shared, not copied)."""
        return self.data

    def tolist(self) -> Any:
        return self.data.tolist()

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data and its version counter, cut from the graph.

        As in PyTorch, an in-place change made through the result counts as a change of this
        tensor: a graph that saved this tensor refuses to backward through the stale value.
        """
        t = Tensor._leaf(self.data, False)
        t._vc = self._shared_version()
        return t

    def _shared_version(self) -> _Version:
        """This tensor's version counter, made now if it has none, for an alias of its memory
        to share (`detach()`, `Tensor(t)`): an in-place change through either is then seen."""
        if self._vc is None:
            self._vc = _Version()
        return self._vc

    def requires_grad_(self, flag: bool = True) -> Tensor:
        if flag:
            _check_float(self.data, "requires_grad_")
        if not self.is_leaf and not flag:
            raise RuntimeError("requires_grad_(False) is only allowed on leaves; use detach()")
        self.requires_grad = flag
        return self

    def retain_grad(self) -> None:
        """Keep `.grad` on this non-leaf tensor after backward (leaves always keep it)."""
        self._retains_grad = True

    def zero_grad(self) -> None:
        self.grad = None

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """The array NumPy sees (`np.asarray(t)`, `np.dot(t, a)`): refused, as in PyTorch, for a
        tensor that requires grad, whose gradient NumPy's result would silently drop."""
        if self.requires_grad:
            raise RuntimeError(
                "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() "
                "(NumPy functions turn a Tensor into an array, cut from the graph; the "
                "chainrule functions of the same names keep the gradient)"
            )
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        return (self[i] for i in range(len(self)))

    def __bool__(self) -> bool:
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = []
        if self.data.dtype != np.float32:
            extra.append(f"dtype={self.data.dtype}")
        if self.requires_grad:
            extra.append("requires_grad=True")
        if self.name:
            extra.append(f"name={self.name!r}")
        elif self._op is not None:
            extra.append(f"op={self._op.name}")
        return "tensor(" + ", ".join([body, *extra]) + ")"

    # -- fast constructors --------------------------------------------------------------
    @staticmethod
    def _leaf(data: np.ndarray, requires_grad: bool) -> Tensor:
        t = object.__new__(Tensor)
        t.data = data
        t.grad = None
        t.requires_grad = requires_grad
        t.name = None
        t._op = None
        t._parents = ()
        t._params = None
        t._vc = None
        t._clock = 0
        t._retains_grad = False
        return t

    # -- in-place ---------------------------------------------------------------------
    def __setitem__(self, index: Any, value: Any) -> None:
        if _state.grad_enabled and self.requires_grad:
            raise RuntimeError(
                "in-place assignment to a tensor that requires grad would change the graph "
                "behind its back; build a new tensor (chainrule.where, concatenate) or assign "
                "under chainrule.no_grad()"
            )
        if isinstance(value, Tensor):
            if _state.grad_enabled and value.requires_grad:
                raise RuntimeError("in-place assignment of a tensor that requires grad")
            value = value.data
        self.data[_unwrap_index(index)] = value
        self._bump_version()

    def _bump_version(self) -> None:
        """Record an in-place change of `.data` made outside the graph (optimizers)."""
        global _inplace_last
        vc = self._vc
        if vc is None:
            vc = self._vc = _Version()
        vc.count += 1
        vc.stamp = _inplace_last = _tick()

    @property
    def _version(self) -> int:
        """How many in-place changes this tensor's memory has seen (PyTorch's `_version`)."""
        return 0 if self._vc is None else self._vc.count

    # -- backward -----------------------------------------------------------------------
    def backward(
        self, gradient: Any = None, retain_graph: bool = False, create_graph: bool = False
    ) -> None:
        """Accumulate d(self)/d(leaf) into every leaf's `.grad`, walking the graph once.

        Parameters
        ----------
        gradient : array_like, optional
            The upstream gradient (same shape as self); required unless self has one element.
        retain_graph : bool
            Keep the graph so backward can run through it again.
        create_graph : bool
            Record the backward pass itself, for higher-order derivatives.

        Raises
        ------
        RuntimeError
            If self does not require grad, or its graph was already freed.
        ValueError
            If self is not a scalar and no `gradient` is given, or shapes disagree.
        """
        if not self.requires_grad:
            raise RuntimeError(
                "backward(): this tensor does not require grad and has no graph "
                "(were the inputs created with requires_grad=True? was it made under no_grad?)"
            )
        if gradient is None:
            if self.data.size != 1:
                raise ValueError(
                    f"backward(): output has shape {self.shape}; gradient can be implicit only "
                    "for a scalar output, pass gradient= of the same shape"
                )
            # np.array(1, dtype) is a C call; np.ones_like goes through Python (~1 us)
            seed: Any = np.array(1, dtype=self.data.dtype)
            if self.data.ndim:
                seed = seed.reshape(self.data.shape)
        else:
            seed = gradient if isinstance(gradient, Tensor) else _as_array(gradient, self.dtype)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward(): gradient has shape {seed.shape}, output has shape {self.shape}"
                )
        backprop(  # bound at the end of this module (backward.py imports tensor.py)
            [self], [seed], retain_graph=retain_graph or create_graph, create_graph=create_graph
        )

    # Operators, math methods and indexing are attached in `composite.py`.


def _freed_message(t: Tensor) -> str:
    return (
        f"the graph behind {_label(t)} was freed by an earlier backward(); call "
        "backward(retain_graph=True) the first time to backward through it again"
    )


def _label(t: Tensor) -> str:
    if t.name:
        return f"tensor {t.name!r}"
    return f"the output of {t._op.name}" if t._op is not None else "a leaf tensor"


def _unwrap_index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index


# --------------------------------------------------------------------------- apply


def apply(op: Any, *args: Any, **params: Any) -> Tensor:
    """Run `op.forward` on the arrays of `args` and record the node if a gradient may flow.

    `args` are Tensors or constants (Python numbers, ndarrays); `params` are non-tensor
    arguments passed to forward and to every vjp. This is the hot path of every op (W3 in
    benchmarks/ measures it): one pass over `args`, no helper calls unless anomaly mode is on.
    """
    state = _state
    if state.hooked:  # tracing for chainrule.compile, detecting anomalies, or inside vmap
        if state.levels and _batched(args, params):
            return _vmap.batch_apply(op, args, params)
        if state.recorder is not None:
            if any((type(a) is list or type(a) is tuple) and _holds_grad(a) for a in args):
                args = tuple(_stacked(args))  # the stacking is traced too
            return state.recorder.apply(op, args, params)
        if state.anomaly:
            return _apply_checked(op, args, params)
    n = len(args)
    if n == 2:  # `_arrays` without its call, for the two commonest counts
        x, y = args
        arrays: Sequence[Any] = (
            x.data if isinstance(x, Tensor) else x,
            y.data if isinstance(y, Tensor) else y,
        )
    elif n == 1:
        x = args[0]
        arrays = (x.data if isinstance(x, Tensor) else x,)
    else:
        arrays = _arrays(args)
    try:
        out = op.forward(*arrays, **params)
    except (ValueError, TypeError, IndexError) as exc:
        raise _forward_error(op, arrays, exc) from None
    except RuntimeError:  # Tensor.__array__ refused a list of tensors that require grad
        if any((type(a) is list or type(a) is tuple) and _holds_grad(a) for a in args):
            return apply(op, *_stacked(args), **params)  # rare: stacked, differentiably
        raise
    if type(out) is not np.ndarray:
        out = np.asarray(out)
    t = _new_tensor(Tensor)
    t.data = out
    t.grad = None
    t.name = None
    t._retains_grad = False
    t._vc = None
    if state.grad_enabled:
        needs = False
        for a in args:
            if isinstance(a, Tensor):
                if a.requires_grad:
                    needs = True
            elif (type(a) is list or type(a) is tuple) and _holds_grad(a):
                return apply(op, *_stacked(args), **params)  # rare: run again, connected
        if needs:
            t.requires_grad = True
            t._op = op
            t._parents = args
            t._params = params or None
            t._clock = _tick()
            return t
    t.requires_grad = False
    t._op = None
    t._parents = ()
    t._params = None
    t._clock = 0
    return t


_new_tensor = object.__new__


class _Vmap:
    """vmap's dispatch, `batching.batch_apply`, set when batching.py is imported (it imports
    this module; a vmapped call has made a BatchTensor, so it has been). An import statement
    inside `apply` cost ~0.5 us on every batched op (W7 runs ~30 per step)."""

    batch_apply: Any = None


_vmap = _Vmap()


def _arrays(args: Sequence[Any]) -> Sequence[Any]:
    """The arrays of Tensor arguments, constants as they are. Unrolled for one to three
    arguments, most ops' counts (three: `linear`): a comprehension is a call of its own."""
    n = len(args)
    if n == 2:
        x, y = args
        return (
            x.data if isinstance(x, Tensor) else x,
            y.data if isinstance(y, Tensor) else y,
        )
    if n == 1:
        x = args[0]
        return (x.data if isinstance(x, Tensor) else x,)
    if n == 3:
        x, y, z = args
        return (
            x.data if isinstance(x, Tensor) else x,
            y.data if isinstance(y, Tensor) else y,
            z.data if isinstance(z, Tensor) else z,
        )
    return [a.data if isinstance(a, Tensor) else a for a in args]


def _batched(args: Sequence[Any], params: dict[str, Any]) -> bool:
    """Whether an argument or parameter is a vmap BatchTensor (see batching.py)."""
    return any(getattr(a, "_level", 0) for a in args) or any(
        getattr(p, "_level", 0) for p in params.values()
    )


def _holds_grad(data: Any) -> bool:
    """Whether nested lists/tuples hold a Tensor that requires grad."""
    if isinstance(data, Tensor):
        return data.requires_grad
    return isinstance(data, (list, tuple)) and any(_holds_grad(d) for d in data)


def _stacked(args: tuple[Any, ...]) -> list[Any]:
    """`args` with each list/tuple of Tensors stacked differentiably (as autograd's np.array),
    so `x + [x, 2 * x]` is not silently cut from the graph by NumPy's conversion."""
    from chainrule.composite import tensor

    return [tensor(a) if type(a) in (list, tuple) and _holds_grad(a) else a for a in args]


# NumPy's error in a forward -> what chainrule raises: the same type, and also PyTorch's
# RuntimeError (chainrule.errors), so `except RuntimeError` ported from PyTorch catches it
_AS_OP_ERROR: dict[type, type] = {
    ValueError: OpError,
    TypeError: OpTypeError,
    IndexError: OpIndexError,
}


def _forward_error(op: Any, arrays: Sequence[Any], exc: Exception) -> Exception:
    kind = _AS_OP_ERROR.get(type(exc), type(exc))
    if str(exc).startswith(("shapes", "dtypes")):
        return kind(f"{op.name}: {exc}")
    shapes = ", ".join(str(np.shape(a)) for a in arrays)
    return kind(f"{op.name}: inputs of shapes {shapes}: {exc}")


def _apply_checked(op: Any, args: tuple[Any, ...], params: Any) -> Tensor:
    """`apply` under detect_anomaly: the forward runs with NumPy warnings silenced, and a
    non-finite result from finite inputs is reported by op name."""
    _state.anomaly = False  # the inner apply takes the fast path; the check happens here
    try:
        with np.errstate(all="ignore"):
            t = apply(op, *args, **params)
    finally:
        _state.anomaly = True
    _check_forward(op, [a.data if isinstance(a, Tensor) else a for a in args], t.data)
    return t


def _check_forward(op: Any, arrays: Sequence[Any], out: np.ndarray) -> None:
    if out.dtype.kind not in "fc" or np.isfinite(out).all():
        return
    if all(np.isfinite(np.asarray(a)).all() for a in arrays if np.asarray(a).dtype.kind in "fc"):
        raise FloatingPointError(
            f"{op.name}: forward produced NaN/inf from finite inputs (output shape {out.shape})"
        )


# The reverse sweep, re-exported for code that knows it from here (backward.py imports this
# module, so the import must come after Tensor is defined).
from chainrule.backward import backprop as backprop  # noqa: E402
from chainrule.backward import toposort as toposort  # noqa: E402
