"""`defop`: a user's own op, an entry of the op table like the built-in ones.

Like `jax.custom_vjp` or `torch.autograd.Function`, but one call: the forward, a vjp per input
and, optionally, a SymPy twin and the names the parser should read. Imports `ops` only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chainrule import ops


def defop(
    name: str,
    forward: Callable[..., Any],
    *vjps: Callable[..., Any] | None,
    sym: Callable[..., Any] | None = None,
    names: tuple[str, ...] | None = None,
    doc: str = "",
    **fields: Any,
) -> ops.OpDef:
    """Define an op: it then works with backward, gradcheck, higher-order derivatives,
    `compile`, `viz.trace` and `viz.graph`, and, with a SymPy twin, with the parser and
    `explain` (which names its rule after the op and differentiates the twin).

    Parameters
    ----------
    name : str
        The op's name (unique; it also names the node in traces and graphs).
    forward : callable
        `forward(*arrays, **params) -> ndarray`, on NumPy arrays.
    *vjps : callable or None
        One per input: `vjp(g, out, *inputs, xp, **params)` returns the gradient of that input
        given the upstream gradient `g` and the output `out`. Write it with operators and the
        functions of `xp` (`xp.exp`, `xp.where`, `xp.sigmoid`, ... see `ops.NAMESPACE`): they
        are NumPy's on the fast path and chainrule's own differentiable ones when the backward
        pass is recorded, so higher-order derivatives work. `None` marks an input that is not
        differentiable.
    sym : callable, optional
        The SymPy twin, `sym(sympy, *symbols) -> expression`, e.g.
        `lambda sp, x: x / (1 + sp.Abs(x))`. Needed for the parser and `explain`.
    names : tuple of str, optional
        What the parser reads as this op; by default `(name,)` when there is a twin.
    doc : str
        One line of math, `"d f(x) = f'(x) dx"`.
    **fields
        Any other field of `ops.OpDef`: `local` (the trace's formula per input, as
        `("1/(1 + abs(x))^2",)`), `rule` (the rule's title in `explain`), `kink`, `infix`,
        `domain`, `dsym`.

    Returns
    -------
    OpDef
        Call it like a function: `op(x)` returns a Tensor.

    Raises
    ------
    ValueError
        If the name (or one of `names`) is taken, or the number of vjps is wrong.

    Examples
    --------
    Softsign, x / (1 + |x|) (chainrule has its own `softsign`, so this one is `my_softsign`),
    with its derivative as a textbook writes it (`dsym`), explained step by step inside a
    chain rule:

    >>> import numpy as np, chainrule as cr
    >>> my_softsign = cr.defop(
    ...     "my_softsign",
    ...     lambda x: x / (1 + np.abs(x)),
    ...     lambda g, out, x, xp: g / ((1 + abs(x)) * (1 + abs(x))),
    ...     sym=lambda sp, x: x / (1 + sp.Abs(x)),
    ...     dsym=lambda sp, F, u: 1 / (1 + sp.Abs(u)) ** 2,
    ...     rule="Softsign",
    ...     local=("1/(1 + abs(x))^2",),
    ...     doc="d my_softsign(x) = dx / (1 + |x|)^2",
    ... )
    >>> x = cr.tensor(1.0, requires_grad=True)
    >>> my_softsign(x * x).backward(); x.grad.item()
    0.5
    >>> print(cr.explain("my_softsign(x^2)").to_text())
    Differentiate y = my_softsign(x²) with respect to x.
    Chain rule: let y = my_softsign(u), u = x².
      Softsign rule (d/du(my_softsign(u)) = 1/(|u| + 1)²): dy/du = 1/(|u| + 1)²
      Power rule (d/dx(xⁿ) = n·xⁿ⁻¹): du/dx = 2x
      Multiply the links: dy/dx = dy/du·du/dx = 1/(|x²| + 1)²·2x = 2x/(x² + 1)²
    Result: dy/dx = 2x/(x² + 1)²
    """
    if names is None:
        names = (name,) if sym is not None else ()
    fields.setdefault("nosym", "" if sym is not None else "defined without a SymPy twin")
    return ops.defop(
        name, forward, *vjps, sym=sym, names=names, doc=doc or name, user=True, **fields
    )
