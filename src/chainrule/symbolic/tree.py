"""The parse tree: typed math as the learner wrote it, operands in typed order.

The parser builds a ``Tree``; ``to_sympy`` turns it into SymPy's canonical expression for the
derivations, and the engine evaluates the tree itself (``evaluate.tree_to_engine``), so a trace
reads ``w1*x + b1`` and ``a2 - t`` rather than SymPy's ``b1 + w1*x`` and ``a2 + (-1)*t``.
Walks are iterative (a long sum is a deep left-leaning tree). Imports SymPy only.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import sympy as sp

__all__ = ["INFIX", "Tree", "fold", "symbols", "to_sympy"]

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


def to_sympy(tree: Tree) -> sp.Expr:
    """The canonical SymPy expression (symbols are real), with SymPy's automatic simplification.

    >>> from chainrule.symbolic.parse import parse_program
    >>> to_sympy(parse_program("0.5*(a2 - t)^2").tree)
    (a2 - t)**2/2
    """

    def combine(node: Tree, args: list[sp.Expr]) -> sp.Expr:
        if node.op == "sym":
            return sp.Symbol(node.value, real=True)
        if node.op == "num":
            return node.value
        if node.op == "call":
            return node.value(*args)
        return INFIX[node.op](*args)

    return fold(tree, combine)


def symbols(tree: Tree) -> set[str]:
    """The names the tree reads (also those SymPy would cancel, as in ``x - x``).

    >>> from chainrule.symbolic.parse import parse_program
    >>> sorted(symbols(parse_program("w1*x + b1 - x").tree))
    ['b1', 'w1', 'x']
    """
    return {n.value for n in tree.walk() if n.op == "sym"}
