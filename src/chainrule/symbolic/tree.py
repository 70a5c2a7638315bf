"""The parse tree: typed math as the learner wrote it, operands in typed order.

The parser builds a ``Tree``; ``to_sympy`` turns it into SymPy's canonical expression for the
derivations, and the engine evaluates the tree itself (``evaluate.tree_to_engine``), so a trace
reads ``w1*x + b1`` and ``a2 - t`` rather than SymPy's ``b1 + w1*x`` and ``a2 + (-1)*t``.
Walks are iterative (a long sum is a deep left-leaning tree). ``to_sympy`` enforces the exact
numbers' size limit (``chainrule.limits``) and refuses undefined constants such as ``1/0``.
Imports SymPy and chainrule.limits only.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import sympy as sp

from chainrule.limits import LimitError, active, check_time

__all__ = ["INFIX", "Tree", "UndefinedError", "fold", "symbols", "to_sympy"]

# The arithmetic nodes, each one engine op; the same operator works on SymPy expressions and on
# Tensors. Every other inner node is a "call".
INFIX: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "neg": operator.neg,
}


@dataclass(frozen=True, eq=False)  # identity equality: a deep tree is never hashed recursively
class Tree:
    """One node: ``op`` is add, sub, mul, div, neg (operands in ``args``), call (``value`` is the
    SymPy constructor, e.g. ``sympy.sin``, ``sympy.Pow``, ``sigmoid``), sym (``value`` is the
    name) or num (``value`` is a SymPy number, e.g. ``Rational(1, 2)``, ``E``).

    Examples
    --------
    >>> from chainrule.symbolic.parse import parse_program
    >>> tree = parse_program("w1*x + b1").tree
    >>> tree.op, [a.op for a in tree.args]
    ('add', ['mul', 'sym'])
    """

    op: str
    args: tuple[Tree, ...] = ()
    value: Any = None
    pos: int = field(default=-1, compare=False)  # where it was typed (for error carets)

    def walk(self) -> Iterator[Tree]:
        """Every node, preorder, without recursion."""
        stack = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.args))


def fold(tree: Tree, combine: Callable[[Tree, list[Any]], Any]) -> Any:
    """Post-order evaluation: ``combine(node, values of its args)``, once per distinct subtree.

    Subtrees typed twice (``sin(x^2) * sin(x^2)``) are combined once and share the value, as
    SymPy shares equal sub-expressions; equality is decided on keys built bottom-up, so no walk
    recurses.
    """
    index_of: dict[int, int] = {}  # id(node) -> index of its distinct subtree in `values`
    distinct: dict[tuple[Any, ...], int] = {}  # (op, value, indices of the args) -> index
    values: list[Any] = []
    stack: list[tuple[Tree, bool]] = [(tree, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in index_of:
            continue
        if not expanded:
            stack.append((node, True))
            stack.extend((a, False) for a in reversed(node.args) if id(a) not in index_of)
            continue
        args = tuple(index_of[id(a)] for a in node.args)
        key = (node.op, _hashable(node.value), args)
        if key not in distinct:
            distinct[key] = len(values)
            values.append(combine(node, [values[i] for i in args]))
        index_of[id(node)] = distinct[key]
    return values[index_of[id(tree)]]


def _hashable(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return id(value)
    return value


class UndefinedError(ValueError):
    """A constant the formula needs is undefined (``1/0``, ``log(0)``, ``0^-1``): ``message``
    names it, ``position`` is where its operator or function was typed (-1 when unknown)."""

    def __init__(self, message: str, position: int):
        self.message, self.position = message, position
        super().__init__(message)


_UNDEFINED = {sp.zoo: "complex infinity", sp.nan: "not a number", sp.oo: "infinite"}
_UNDEFINED[-sp.oo] = "infinite"
_SHOWN = {"add": "+", "sub": "-", "mul": "*", "div": "/"}  # "^" for a power


class _Terms:
    """The terms of a typed sum, shared link by link: ``a + b + c`` is built in linear time
    (adding to a SymPy Add one term at a time copies it: quadratic in a long sum)."""

    __slots__ = ("before", "term")

    def __init__(self, before: _Terms | None, term: sp.Expr):
        self.before, self.term = before, term

    def expr(self) -> sp.Expr:
        terms: list[sp.Expr] = []
        link: _Terms | None = self
        while link is not None:
            terms.append(link.term)
            link = link.before
        return sp.Add(*reversed(terms))


def to_sympy(tree: Tree) -> sp.Expr:
    """The canonical SymPy expression (symbols are real), with SymPy's automatic simplification.

    Raises LimitError before SymPy would compute an exact power with more than
    ``Limits.max_digits`` digits (``9^9^9``), and UndefinedError for an undefined constant.

    >>> from chainrule.symbolic.parse import parse_program
    >>> to_sympy(parse_program("0.5*(a2 - t)^2").tree)
    (a2 - t)**2/2
    """
    max_digits = active().max_digits

    def combine(node: Tree, args: list[Any]) -> Any:
        check_time("reading the formula")
        if node.op in ("add", "sub"):
            left = args[0] if isinstance(args[0], _Terms) else _Terms(None, args[0])
            right = _expr(args[1])
            return _Terms(left, right if node.op == "add" else -right)
        values = [_expr(a) for a in args]
        if node.op == "sym":
            return sp.Symbol(node.value, real=True)
        if node.op == "num":
            return node.value
        if node.op == "call":
            if node.value is sp.Pow:
                _check_power(values[0], values[1], max_digits)
            try:
                value = node.value(*values)
            except (TypeError, ValueError, ArithmeticError, AttributeError):  # asin(sin(10^999)):
                what = f"{_typed(node, values)} cannot be evaluated"  # SymPy cannot compare it
                raise UndefinedError(what, node.pos) from None
        else:
            value = INFIX[node.op](*values)
        _check_value(node, values, value, max_digits)
        return value

    return _expr(fold(tree, combine))


def _expr(value: Any) -> sp.Expr:
    return value.expr() if isinstance(value, _Terms) else value


def _digits(n: sp.Expr) -> float:
    """About how many decimal digits SymPy writes out for the exact number n (0: kept symbolic)."""
    if n.is_Rational:
        return math.log10(max(abs(n.p), abs(n.q), 1))
    if n.is_Pow and n.exp.is_Rational:
        return _digits(n.base) * abs(float(n.exp))
    if n.is_Mul:
        return sum(map(_digits, n.args))
    return 0.0


def _check_power(base: sp.Expr, exponent: sp.Expr, max_digits: int) -> None:
    """Refuse base^exponent before SymPy computes it, when it would be a huge exact number."""
    if not (base.is_number and exponent.is_Rational) or abs(exponent) <= 1:
        return
    size = _digits(base) * abs(float(exponent))
    if size > max_digits:
        shown = f"{_short(base)}^{_short(exponent)}"
        raise LimitError("max_digits", f"{shown} would have about {size:.3g} digits")


def _check_value(node: Tree, values: list[sp.Expr], value: sp.Expr, max_digits: int) -> None:
    if value.is_Rational and _digits(value) > max_digits:
        raise LimitError("max_digits", f"a number in the formula has more than {max_digits} digits")
    parts = (value, *value.args) if value.is_Mul or value.is_Add else (value,)
    undefined = next((_UNDEFINED[p] for p in parts if p in _UNDEFINED), None)
    if undefined is not None and not any(v in _UNDEFINED for v in values):
        raise UndefinedError(f"{_typed(node, values)} is undefined ({undefined})", node.pos)
    # A complex constant (asin(3√10), √-1) is outside the real calculus the rules assume, and
    # SymPy's automatic evaluation of a function of one can run for minutes (sec(ln²(asin 3√10))).
    complex_constant = node.op == "call" and value.is_number and value.is_extended_real is False
    if undefined is None and complex_constant:
        raise UndefinedError(f"{_typed(node, values)} is not a real number", node.pos)


def _typed(node: Tree, values: list[sp.Expr]) -> str:
    """The failing node as typed, e.g. ``1/0``, ``(-8)^(1/3)``, ``log(0)``."""
    if node.op == "call" and node.value is not sp.Pow:
        name = getattr(node.value, "__name__", str(node.value)).lstrip("_")
        return f"{name}({', '.join(_short(v, bare=True) for v in values)})"
    shown = [_short(v) for v in values]
    if node.op == "neg":
        return f"-{shown[0]}"
    return _SHOWN.get(node.op, "^").join(shown)


def _short(e: sp.Expr, bare: bool = False) -> str:
    if e.is_Integer and abs(e) > 10**20:
        return f"a {len(str(abs(e)))}-digit number"
    plain = bare or (e.is_Integer and e >= 0) or e.is_Symbol or e.is_NumberSymbol
    text = str(e) if plain else f"({e})"
    return text if len(text) <= 40 else text[:36] + "..."


def symbols(tree: Tree) -> set[str]:
    """The names the tree reads (also those SymPy would cancel, as in ``x - x``).

    >>> from chainrule.symbolic.parse import parse_program
    >>> sorted(symbols(parse_program("w1*x + b1 - x").tree))
    ['b1', 'w1', 'x']
    """
    return {n.value for n in tree.walk() if n.op == "sym"}
