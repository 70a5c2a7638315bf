"""How big a program's derivation would be, estimated before any derivative is taken.

``explain`` reads these sizes to decide, in time linear in the program, whether the answer can
be written out in the inputs or must be given statement by statement (``limits.max_output``,
``max_depth``, ``max_steps``). Writing out is what costs: ``a2 = a1·sin(a1)`` doubles the
printed answer per statement, ``a3 = a2·a1`` doubles the one-tree derivation about every 1.5
statements. Imports SymPy and parse.py only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass

import sympy as sp

from chainrule.symbolic.parse import dependency_order

__all__ = ["Size", "estimate"]


@dataclass(frozen=True)
class Size:
    """Estimated size of one defined name, written out in the program's inputs.

    Attributes
    ----------
    chars : int
        Characters of the definition printed with every intermediate substituted.
    depth : int
        Nesting depth of that written-out expression (SymPy's printers recurse on it).
    lines : int
        Lines of the one-tree derivation d name/dx (``diff_program`` derives an intermediate
        again on every path that reaches it).
    depends : bool
        Whether the name depends on x at all.
    """

    chars: int
    depth: int
    lines: int
    depends: bool


def estimate(defs: Mapping[sp.Symbol, sp.Expr], x: sp.Symbol) -> dict[sp.Symbol, Size]:
    """The estimated ``Size`` of every defined name, in one pass in dependency order.

    Examples
    --------
    >>> a, b, x = sp.symbols("a b x")
    >>> sizes = estimate({a: x * sp.sin(x), b: a * sp.sin(a)}, x)
    >>> sizes[a].chars, sizes[b].chars  # x*sin(x), then (x*sin(x))*sin((x*sin(x)))
    (8, 26)
    """
    sizes: dict[sp.Symbol, Size] = {}
    for u in dependency_order(defs):
        e = defs[u]
        nodes = list(sp.preorder_traversal(e))
        uses = Counter(n for n in nodes if n in defs)
        chars = len(str(e)) + sum(k * (sizes[v].chars + 2 - len(v.name)) for v, k in uses.items())
        via = [v for v in uses if sizes[v].depends]
        # about two lines for every three nodes of a partial derivative (measured on chains,
        # sigmoid layers and diamonds), one partial per intermediate used and one direct
        own = len(nodes) * (1 + len(via)) * 2 // 3
        lines = own + sum(sizes[v].lines for v in via)
        # exact integers: at most (uses per statement)^statements, a few hundred digits
        depth = _depth(e) + max((sizes[v].depth for v in uses), default=0)
        sizes[u] = Size(chars=chars, depth=depth, lines=lines, depends=bool(via) or e.has(x))
    return sizes


def _depth(e: sp.Expr) -> int:
    """Nesting depth of one (small, typed) definition, without recursion."""
    deepest, stack = 0, [(e, 0)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((a, level + 1) for a in node.args)
    return deepest
