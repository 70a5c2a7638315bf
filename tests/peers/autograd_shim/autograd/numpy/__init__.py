"""autograd.numpy for the peer suite: NumPy's names, differentiable where chainrule has the op.

A name chainrule implements maps to its chainrule function (aliases only where NumPy's own
names are aliases: `absolute` is `abs`). Any other NumPy function runs as NumPy on constants,
and raises `Unsupported` when handed a Tensor that is being differentiated: NumPy would turn
it into a plain array and the gradient would be silently lost, which is exactly the wrong
value this adapter exists to rule out.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as _onp

import chainrule as _cr
from autograd import Unsupported

from . import random  # noqa: F401  (autograd.numpy.random)

# chainrule's functions under their NumPy names
# Derived, not listed: every NumPy function name chainrule also defines (a hand-written list
# fell behind as the op table grew), less chainrule's checkpoint I/O and the creation and
# random functions (their NumPy results are constants either way; chainrule's are Tensors).
_NOT_NUMPY = {"load", "save"}
_CREATION = {
    name for name, op in _cr.ops.OPS.items() if op.arity == 0 and not op.differentiable
}  # zeros, ones, full, empty, eye, arange, linspace, logspace, randn, ...
_NAMES = sorted(
    name
    for name in dir(_onp)
    if not name.startswith("_")
    and not isinstance(getattr(_onp, name), type)
    and callable(getattr(_cr, name, None))
    and name not in _NOT_NUMPY | _CREATION
)
_CHAINRULE = {name: getattr(_cr, name) for name in _NAMES}
_ALIASES = {"absolute": "abs", "true_divide": "divide", "amax": "max", "amin": "min"}


def _needs_grad(x: Any) -> bool:
    if isinstance(x, _cr.Tensor):
        return x.requires_grad
    if isinstance(x, (list, tuple)):
        return any(_needs_grad(v) for v in x)
    return False


def _plain(x: Any) -> Any:
    if isinstance(x, _cr.Tensor):
        return x.data
    if isinstance(x, (list, tuple)):
        return type(x)(_plain(v) for v in x)
    return x


def _numpy_only(name: str, f: Any) -> Any:
    @functools.wraps(f)
    def call(*args: Any, **kwargs: Any) -> Any:
        if _needs_grad(args) or _needs_grad(list(kwargs.values())):
            raise Unsupported(f"chainrule has no numpy.{name}")
        return f(*_plain(args), **_plain(kwargs))

    return call


def array(obj: Any, *args: Any, **kwargs: Any) -> Any:
    """Traced Tensors, alone or in nested lists, stay connected (chainrule.tensor does this)."""
    if _needs_grad(obj):
        if args or kwargs:
            raise Unsupported("numpy.array with a dtype or options, of traced values")
        return _cr.tensor(obj)
    return _onp.array(_plain(obj), *args, **kwargs)


# NumPy's index tricks: chainrule's, which join Tensors differentiably
r_, c_ = _cr.r_, _cr.c_


def linspace(start: Any, stop: Any, *args: Any, **kwargs: Any) -> Any:
    """chainrule's linspace where an end is a Tensor (it is differentiable in both ends);
    NumPy's, a constant, otherwise (creation functions are NumPy's here, see _CREATION)."""
    if isinstance(start, _cr.Tensor) or isinstance(stop, _cr.Tensor):
        return _cr.linspace(start, stop, *args, **kwargs)
    return _onp.linspace(start, stop, *args, **kwargs)


asarray = array


def _guarded(module: Any, prefix: str) -> Any:
    """A submodule (linalg, fft) whose functions refuse traced Tensors."""

    class Guarded:
        def __getattr__(self, name: str) -> Any:
            value = getattr(module, name)
            return _numpy_only(f"{prefix}.{name}", value) if callable(value) else value

    return Guarded()


linalg = _guarded(_onp.linalg, "linalg")
fft = _guarded(_onp.fft, "fft")


def __getattr__(name: str) -> Any:
    name = _ALIASES.get(name, name)
    if name in _CHAINRULE:
        return _CHAINRULE[name]
    value = getattr(_onp, name)
    if callable(value) and not isinstance(value, type):  # dtypes and classes stay as they are
        return _numpy_only(name, value)
    return value
