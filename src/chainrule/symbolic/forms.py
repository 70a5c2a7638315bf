"""Keeping a learner's own sum visible: SymPy distributes a number over a sum, the notes do not.

``keep_coefficient`` turns SymPy's 18x + 12 back into 6(3x + 2) when 3x + 2 is a sum in what
was differentiated, as seed 000 writes d/dx (3x + 2)² = 2(3x + 2)·3. Imports SymPy only.
"""

from __future__ import annotations

import sympy as sp

__all__ = ["keep_coefficient"]


def keep_coefficient(e: sp.Expr, source: sp.Expr | None) -> sp.Expr:
    """``c·s`` (an unevaluated product) when ``e`` is a number ``c`` times a sum ``s`` (or −s)
    that occurs in ``source``; ``e`` itself otherwise (2x + 2 from x² + 2x stays as it is).

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> keep_coefficient(18*x + 12, (3*x + 2)**2)
    6*(3*x + 2)
    >>> keep_coefficient(18*x - 6, (1 - 3*x)**2)
    -6*(1 - 3*x)
    >>> keep_coefficient(2*x + 2, x**2 + 2*x)
    2*x + 2
    """
    if source is None or not e.is_Add:
        return e
    c, s = e.primitive()
    if c == 1 or not s.is_Add:
        return e
    sums = {n for n in sp.preorder_traversal(source) if n.is_Add}
    for k, t in ((c, s), (-c, -s)):
        if t in sums:
            return sp.Mul(k, t, evaluate=False)
    return e
