"""Typed math -> chainrule Tensor, with the engine ops a learner would write.

``to_engine`` evaluates a SymPy expression (the ``--at`` check of ``chainrule explain``), writing
SymPy's canonical ``a + (-1)*b``, ``a*b**-1`` and ``(-1)*a`` as the engine's ``a - b``, ``a / b``
and ``-a``. ``tree_to_engine`` evaluates a parse tree in the order typed (``chainrule backprop``,
whose trace then reads ``w1*x + b1``). Walks are iterative and share repeated sub-expressions.
Imports the engine lazily (SymPy side stays light).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import reduce
from typing import Any

import numpy as np
import sympy as sp

from chainrule.ops import NAMES, OpDef
from chainrule.symbolic.functions import OpTable, sympy_function
from chainrule.symbolic.parse import Program
from chainrule.symbolic.tree import INFIX, Tree, fold, symbols

__all__ = ["program_to_engine", "to_engine", "tree_to_engine"]

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
        if not node.base.is_positive:  # (-2)^x, 0^x: ln a is not real (or -oo)
            a = f"({node.base})" if node.base.is_negative else str(node.base)
            raise ValueError(f"{a}^g is not real for a variable g (ln {a} is not a real number)")
        return cr.exp(exponent * float(sp.log(node.base)))
    return base**exponent


def _engine_function(op: OpDef) -> _Op:
    """The op on the children's tensors; an n-ary Max/Min folds the binary op (max(a, b, c))."""
    if op.arity == 2:
        return lambda *xs, node: reduce(op, xs)
    return lambda *xs, node: op(*xs)


def _table() -> dict[Any, _Op]:
    """SymPy head -> engine op, one row per function of the op table (``sp.sin`` -> ops.sin);
    Pow and the Heaviside step of relu's derivative are the two heads that are not entries.
    Add and Mul are planned by _plan_add and _plan_mul instead."""
    rows: dict[Any, _Op] = {
        sympy_function(op): _engine_function(op)
        for op in dict.fromkeys(NAMES.values())
        if not op.expand
    }
    rows[sp.Pow] = lambda b, e, node: _pow(b, e, node)
    rows[sp.Heaviside] = lambda x, *rest, node: _engine().relu(_engine().sign(x))  # H(0) := 0
    return rows


_OPS: OpTable[_Op] = OpTable(_table)


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
    plans: dict[sp.Basic, _Plan] = {}
    stack: list[sp.Basic] = [expr]
    while stack:  # iterative post-order: a node is built once all its operands are
        node = stack[-1]
        if node in done:
            stack.pop()
            continue
        if node not in plans:
            plans[node] = _plan(node, env)
        build, operands = plans[node]
        todo = [a for a in operands if a not in done]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        done[node] = build(*(done[a] for a in operands))
    out = done[expr]
    if name is not None:
        out.name = name
    return out


# How to build one SymPy node: an engine function of the tensors of its operands, and the
# operands (usually node.args; Add and Mul take the terms they subtract or divide by instead).
_Plan = tuple[Callable[..., Tensor], tuple[sp.Basic, ...]]


def _plan(node: sp.Basic, env: Mapping[str, Tensor]) -> _Plan:
    if node.is_Symbol:
        if node.name not in env:
            raise KeyError(f"to_engine: no value for symbol {node.name!r}")
        return (lambda: env[node.name]), ()
    if node.is_number:
        return (lambda: _const(float(node))), ()
    if node.is_Add:
        return _plan_add(node)
    if node.is_Mul:
        return _plan_mul(node)
    op = _OPS.get(node.func)
    if op is None:
        raise NotImplementedError(f"to_engine: no engine op for {node.func.__name__} in {node}")
    return (lambda *xs: op(*xs, node=node)), node.args


def _plan_add(node: sp.Add) -> _Plan:
    """``a + (-1)*b`` -> ``a - b``; numbers last (``x + 1``, ``x - 1``), as one writes them."""
    terms = sorted(node.args, key=lambda a: a.is_number)  # stable: SymPy's order otherwise
    minus = [a.could_extract_minus_sign() for a in terms]
    plus = [a for a, m in zip(terms, minus) if not m]
    subtracted = [-a for a, m in zip(terms, minus) if m]

    def build(*xs: Tensor) -> Tensor:
        pos, neg = xs[: len(plus)], list(xs[len(plus) :])
        acc = reduce(operator.add, pos) if pos else -neg.pop(0)
        return reduce(operator.sub, neg, acc)

    return build, (*plus, *subtracted)


def _plan_mul(node: sp.Mul) -> _Plan:
    """``(-1)*a`` -> ``-a``; ``a*b**-1`` -> ``a / b``; ``x/2`` stays a division by 2."""
    coeff, rest = node.as_coeff_Mul()
    negate = coeff.is_Rational and coeff.p == -1
    num: list[sp.Basic] = [coeff]
    den: list[sp.Basic] = []
    if coeff.is_Rational:  # p/q: -1 is the negation, 1 no factor at all
        num = [] if abs(coeff.p) == 1 else [sp.Integer(coeff.p)]
        den = [] if coeff.q == 1 else [sp.Integer(coeff.q)]
    for f in sp.Mul.make_args(rest):
        inverse = f.is_Pow and f.exp.is_number and f.exp.is_negative
        (den if inverse else num).append(sp.Pow(f.base, -f.exp) if inverse else f)

    def build(*xs: Tensor) -> Tensor:
        top, bottom = xs[: len(num)], xs[len(num) :]
        acc = reduce(operator.mul, top) if top else _const(1.0)
        acc = acc / reduce(operator.mul, bottom) if bottom else acc
        return -acc if negate else acc

    return build, (*num, *den)


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
    trees = program.trees
    reads = {
        k: symbols(trees[k]) if k in trees else {s.name for s in v.free_symbols}
        for k, v in program.definitions.items()
    }
    pending = list(program.definitions)
    while pending:
        ready = [k for k in pending if reads[k] <= values.keys()]
        if not ready:
            missing = set().union(*(reads[k] for k in pending)) - set(values)
            missing -= {k.name for k in pending}
            raise KeyError(f"program_to_engine: no value for {', '.join(sorted(missing))}")
        for k in ready:
            if k in trees:
                values[k.name] = tree_to_engine(trees[k], values, name=k.name)
            else:
                values[k.name] = to_engine(program.definitions[k], values, name=k.name)
        pending = [k for k in pending if k not in ready]
    return values


def tree_to_engine(tree: Tree, env: Mapping[str, Tensor], *, name: str | None = None) -> Tensor:
    """Evaluate a parse tree with the engine, operands in the order typed.

    ``+ - * /`` and unary minus become the engine's add, sub, mul, div and neg; a constant
    sub-expression (``0.5``, ``2*pi``) becomes one number; a function or power becomes what
    ``to_engine`` makes of it (``sigmoid``, ``x**2``, ``sqrt``, ``exp`` for ``e^x``).

    Parameters
    ----------
    tree : Tree
        From ``parse_program(text).tree`` (or ``.trees[name]``).
    env : mapping of str to Tensor
        A value for every name the tree reads.
    name : str, optional
        Label for the result tensor.

    Raises
    ------
    KeyError, NotImplementedError
        As ``to_engine``.

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> from chainrule.symbolic import parse_program
    >>> a2, t = (cr.tensor(v, dtype=np.float64, requires_grad=True) for v in (0.6, 0.9))
    >>> loss = tree_to_engine(parse_program("0.5*(a2 - t)^2").tree, {"a2": a2, "t": t})
    >>> loss.op.name, loss.parents[1].op.name, loss.parents[1].parents[0].op.name
    ('mul', 'power', 'sub')
    >>> round(loss.item(), 3)
    0.045
    """

    def combine(node: Tree, args: list[Any]) -> Any:
        if node.op == "sym":
            if node.value not in env:
                raise KeyError(f"to_engine: no value for symbol {node.value!r}")
            return env[node.value]
        if node.op == "num":
            return node.value
        if node.op == "call":
            return _call(node.value, args)
        if all(isinstance(a, sp.Basic) for a in args):  # a constant: stays an exact number
            return INFIX[node.op](*args)
        return INFIX[node.op](*(_const(float(a)) if isinstance(a, sp.Basic) else a for a in args))

    out = fold(tree, combine)
    out = _const(float(out)) if isinstance(out, sp.Basic) else out
    if name is not None:
        out.name = name
    return out


def _call(fn: Callable[..., sp.Expr], args: list[Any]) -> Tensor:
    """``fn`` (a SymPy head such as ``sp.sin`` or ``sp.Pow``) on tensors: SymPy builds it on
    placeholder symbols, which keeps one table of function semantics (the op table), then
    ``to_engine`` evaluates that with the tensors in place of the placeholders."""
    env = {f"_{i}": a for i, a in enumerate(args) if not isinstance(a, sp.Basic)}
    if not env:  # a constant: stays an exact number
        return fn(*args)
    slots = [sp.Symbol(f"_{i}", real=True) if f"_{i}" in env else a for i, a in enumerate(args)]
    return to_engine(fn(*slots), env)
