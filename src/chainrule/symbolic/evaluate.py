"""SymPy expression -> chainrule Tensor: each SymPy node becomes one engine op where possible.

``to_engine`` lets the autodiff engine differentiate what the explainer derived by hand (the
``--at`` check of ``chainrule explain`` and the ``backprop`` command use it). The walk is
iterative and shares repeated sub-expressions. Imports the engine lazily (SymPy side stays light).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import numpy as np
import sympy as sp

from chainrule.symbolic.functions import relu, sigmoid, softplus
from chainrule.symbolic.parse import Program

__all__ = ["program_to_engine", "to_engine"]

Tensor = Any  # chainrule.Tensor; imported lazily so this module loads without the engine
_Op = Callable[..., Tensor]


def _engine():
    import chainrule as cr

    return cr


def _const(value: float) -> Tensor:
    return _engine().tensor(np.float64(value), dtype=np.float64)


def _pow(base: Tensor, exponent: Tensor, node: sp.Pow) -> Tensor:
    cr, e = _engine(), node.exp
    if e == sp.S.Half:
        return cr.sqrt(base)
    if e == -1:
        return _const(1.0) / base
    if e.is_number:
        return base ** float(e)
    if node.base.is_number:  # a^g = e^(g·ln a): the engine's ** wants a tensor base
        return cr.exp(exponent * float(sp.log(node.base)))
    return base**exponent


def _unary(name: str) -> _Op:
    return lambda x, node: getattr(_engine(), name)(x)


def _reciprocal(name: str) -> _Op:
    return lambda x, node: _const(1.0) / getattr(_engine(), name)(x)


# SymPy head -> engine op on the children's tensors (the node is passed for its exponent etc.)
_OPS: dict[type, _Op] = {
    sp.Add: lambda *xs, node: reduce(operator.add, xs),
    sp.Mul: lambda *xs, node: reduce(operator.mul, xs),
    sp.Pow: lambda b, e, node: _pow(b, e, node),
    sp.exp: _unary("exp"),
    sp.log: _unary("log"),
    sp.sin: _unary("sin"),
    sp.cos: _unary("cos"),
    sp.tan: _unary("tan"),
    sp.sec: _reciprocal("cos"),
    sp.csc: _reciprocal("sin"),
    sp.cot: _reciprocal("tan"),
    sp.asin: _unary("arcsin"),
    sp.acos: _unary("arccos"),
    sp.atan: _unary("arctan"),
    sp.acot: lambda x, node: _engine().arctan(_const(1.0) / x),
    sp.sinh: _unary("sinh"),
    sp.cosh: _unary("cosh"),
    sp.tanh: _unary("tanh"),
    sp.sech: _reciprocal("cosh"),
    sp.csch: _reciprocal("sinh"),
    sp.coth: _reciprocal("tanh"),
    sp.asinh: lambda x, node: _engine().log(x + _engine().sqrt(x * x + _const(1.0))),
    sp.acosh: lambda x, node: _engine().log(x + _engine().sqrt(x * x - _const(1.0))),
    sp.atanh: lambda x, node: (
        (_engine().log(_const(1.0) + x) - _engine().log(_const(1.0) - x)) * _const(0.5)
    ),
    sp.Abs: _unary("abs"),
    sp.sign: _unary("sign"),
    sp.erf: _unary("erf"),
    sigmoid: _unary("sigmoid"),
    relu: _unary("relu"),
    softplus: _unary("softplus"),
    sp.Heaviside: lambda x, *rest, node: _engine().relu(_engine().sign(x)),  # H(0) := 0
    sp.Max: lambda *xs, node: reduce(_engine().maximum, xs),
    sp.Min: lambda *xs, node: reduce(_engine().minimum, xs),
}


def to_engine(expr: sp.Expr, env: Mapping[str, Tensor], *, name: str | None = None) -> Tensor:
    """Evaluate ``expr`` with chainrule's engine; symbols are looked up by name in ``env``.

    Parameters
    ----------
    expr : sympy.Expr
        Built from Add, Mul, Pow, exp, log, trig/hyperbolic functions, Abs, sigmoid, relu, ...
    env : mapping of str to Tensor
        A value for every free symbol (tensors that require grad are differentiated as usual).
    name : str, optional
        Label for the result tensor.

    Returns
    -------
    Tensor

    Raises
    ------
    KeyError
        A free symbol has no value in ``env``.
    NotImplementedError
        A node the engine has no op for (the message names it).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> from chainrule.symbolic import parse
    >>> x = cr.tensor(2.0, dtype=np.float64, requires_grad=True)
    >>> y = to_engine(parse("(x^2+1)^3"), {"x": x})
    >>> y.backward()
    >>> y.item(), x.grad.item()
    (125.0, 300.0)
    """
    done: dict[sp.Basic, Tensor] = {}
    stack: list[sp.Basic] = [expr]
    while stack:  # iterative post-order: a node is built once all its arguments are
        node = stack[-1]
        if node in done:
            stack.pop()
            continue
        todo = [a for a in _operands(node) if a not in done]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        done[node] = _build(node, env, done)
    out = done[expr]
    if name is not None:
        out.name = name
    return out


def _operands(node: sp.Basic) -> tuple[sp.Basic, ...]:
    return () if node.is_Symbol or node.is_number else node.args


def _build(node: sp.Basic, env: Mapping[str, Tensor], done: Mapping[sp.Basic, Tensor]) -> Tensor:
    if node.is_Symbol:
        if node.name not in env:
            raise KeyError(f"to_engine: no value for symbol {node.name!r}")
        return env[node.name]
    if node.is_number:
        return _const(float(node))
    op = _OPS.get(node.func)
    if op is None:
        raise NotImplementedError(f"to_engine: no engine op for {node.func.__name__} in {node}")
    return op(*(done[a] for a in node.args), node=node)


def program_to_engine(program: Program, env: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Evaluate every definition of a program in dependency order, each tensor named after its
    left-hand side; returns ``env`` extended with the intermediates and the output.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> from chainrule.symbolic import parse_program
    >>> p = parse_program("z = (u+v)^2; u = x*y; v = x + y")
    >>> x, y = (cr.tensor(v, dtype=np.float64, requires_grad=True) for v in (2.0, 3.0))
    >>> values = program_to_engine(p, {"x": x, "y": y})
    >>> values["z"].item(), values["u"].name
    (121.0, 'u')
    """
    values = dict(env)
    pending = list(program.definitions.items())
    while pending:
        ready = [(k, v) for k, v in pending if all(s.name in values for s in v.free_symbols)]
        if not ready:
            missing = {s.name for _, v in pending for s in v.free_symbols} - set(values)
            missing -= {k.name for k, _ in pending}
            raise KeyError(f"program_to_engine: no value for {', '.join(sorted(missing))}")
        for k, v in ready:
            values[k.name] = to_engine(v, values, name=k.name)
        pending = [p for p in pending if p not in ready]
    return values
