"""A stand-in for HIPS autograd's public transforms, backed by chainrule (peer suite adapter).

Only what autograd's own tests import from `autograd` is here: `grad`, `value_and_grad`,
`jacobian`, `elementwise_grad`, `deriv`, `hessian`; `holomorphic_grad` raises `Unsupported`,
which the adapter reports as a skip. Test files of autograd's own machinery (boxes, vspaces,
containers) are not run.
"""

from __future__ import annotations

from typing import Any

import numpy as _onp

import chainrule as _cr


class Unsupported(Exception):
    """A case needing something chainrule does not have; reported as a skip, never a failure."""


def _traced(args: Any) -> bool:
    return any(isinstance(a, _cr.Tensor) for a in args)


def _out(value: Any, traced: bool) -> Any:
    """A Tensor where a graph still needs it (an enclosing transform, a closed-over traced
    value), so transforms compose; otherwise NumPy, as autograd returns."""
    if traced or not isinstance(value, _cr.Tensor) or value.requires_grad:
        return value
    return value.data[()] if value.ndim == 0 else value.data


def _args(args: Any) -> list[Any]:
    """Python numbers as float64 (chainrule makes them float32); arrays keep their dtype."""
    return [_onp.float64(a) if isinstance(a, (int, float)) else a for a in args]


def _transform(make: Any) -> Any:
    def transform(fun: Any, argnum: Any = 0) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            traced = _traced(args)
            res = make(fun, argnum)(*_args(args), **kwargs)
            if isinstance(res, tuple):
                return tuple(_out(r, traced) for r in res)
            return _out(res, traced)

        return call

    return transform


grad = _transform(lambda f, n: _cr.grad(f, argnums=n))
value_and_grad = _transform(lambda f, n: _cr.value_and_grad(f, argnums=n))
jacobian = _transform(lambda f, n: _cr.jacobian(f, argnums=n))
hessian = _transform(lambda f, n: _cr.hessian(f, argnums=n))


def elementwise_grad(fun: Any, argnum: int = 0) -> Any:
    """The vjp with a cotangent of ones: the gradient of sum(f) (autograd's definition)."""
    return grad(lambda *a, **k: _cr.sum(fun(*a, **k)), argnum)


deriv = elementwise_grad


def holomorphic_grad(fun: Any, argnum: int = 0) -> Any:
    def call(*args: Any, **kwargs: Any) -> Any:
        raise Unsupported("complex differentiation (chainrule's gradients are real)")

    return call
