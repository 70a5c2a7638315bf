"""The local derivative of each op as text, for the trace, read from the op table's `local`.

An entry's formula (`ops.OpDef.local`) is written in its input names, `out` and `g`; here the
names become the node labels (`a2*(1 - a2)` for a sigmoid named a2), the formula's top-level
factors are evaluated on the node values (`0.653 * 0.347`, so the trace shows the seed's
arithmetic), and the vector-Jacobian product with the upstream gradient `g` is written out
(`g @ W^T`). The evaluator reads the formula's syntax tree and knows arithmetic, comparisons
(`[x > 0]` is 1 or 0) and a few functions; it never runs Python code. Imports NumPy and `ops`.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from chainrule.ops import OPS, OpDef
from chainrule.viz.model import ATOM, Node


@dataclass(frozen=True)
class Local:
    """d out / d input for one edge: `text`, its numeric `factors` (scalars only), `vjp_text`."""

    text: str
    factors: tuple[float, ...] | None
    vjp_text: str


def _w(n: Node, prec: int = 2) -> str:
    """A label safe inside a product (parenthesised when looser than `prec`)."""
    return n.label if n.prec >= prec else f"({n.label})"


def _v(n: Node) -> float:
    return float(np.real(n.value.reshape(-1)[0])) if n.value.size == 1 else math.nan


# --------------------------------------------------------------------------- formulas


def formula(op: OpDef, argnum: int, labels: dict[str, str], params: dict[str, Any]) -> str:
    """The entry's trace formula for input `argnum`, still in its names ("" if it has none)."""
    if not op.local:
        return ""
    f = op.local[0 if op.variadic else argnum]
    return f(labels, params) if callable(f) else f


def is_vjp(text: str) -> bool:
    """Whether a formula is a vjp (it names the upstream gradient `g`), not a local derivative."""
    return re.search(r"\bg\b", text) is not None


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _substitute(text: str, nodes: dict[str, Node]) -> str:
    """The formula with each name replaced by its node's label, parenthesised where the context
    binds tighter than the label: a lone function argument `f(x)` needs nothing, a power base or
    a denominator needs an atom, anything else a product's operand; `g` becomes `{g}`."""

    def label(m: re.Match[str]) -> str:
        name = m.group()
        if name == "g":
            return "{g}"
        if name not in nodes:
            return name
        before, after = text[: m.start()].rstrip(), text[m.end() :].lstrip()
        if before.endswith(("(", ",")) and after.startswith((")", ",")):
            need = 0
        elif after.startswith("^") or before.endswith("/"):
            need = ATOM
        else:
            need = 2
        return _w(nodes[name], need)

    return _NAME.sub(label, text)


_BINARY: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}
_COMPARE: dict[type, Callable[[Any, Any], bool]] = {
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Eq: operator.eq,
}
_FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin,
    "cos": math.cos,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "exp": math.exp,
    "log": math.log,
    "sqrt": math.sqrt,
    "sign": lambda v: float(np.sign(v)),
    "abs": abs,
    "sigmoid": lambda v: 1 / (1 + math.exp(-v)) if v >= 0 else math.exp(v) / (1 + math.exp(v)),
}


def _tree(text: str) -> ast.expr:
    """The formula's syntax tree: `^` is a power and `[...]` an Iverson bracket (1 or 0)."""
    return ast.parse(text.replace("^", "**").replace("[", "(").replace("]", ")"), mode="eval").body


def _eval(node: ast.expr, values: dict[str, float]) -> float:
    """The value of a formula's syntax tree; only numbers, names, arithmetic, comparisons and
    the functions of `_FUNCTIONS` are allowed (anything else is a ValueError)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
        return float(node.value)
    if isinstance(node, ast.Name):
        if node.id == "pi":
            return math.pi
        return values[node.id]
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        result = _BINARY[type(node.op)](_eval(node.left, values), _eval(node.right, values))
        if isinstance(result, complex):  # (-8) ** (1/3) in Python: no real value to show
            raise ValueError(f"trace formula: {ast.unparse(node)!r} is not real here")
        return result
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_eval(node.operand, values)
    if isinstance(node, ast.Compare) and all(type(o) in _COMPARE for o in node.ops):
        sides = [_eval(s, values) for s in (node.left, *node.comparators)]
        return float(all(_COMPARE[type(o)](a, b) for o, a, b in zip(node.ops, sides, sides[1:])))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        fn = _FUNCTIONS.get(node.func.id)
        if fn is not None:
            return fn(_eval(node.args[0], values))
    raise ValueError(f"trace formula: cannot evaluate {ast.unparse(node)!r}")


def _factors(node: ast.expr) -> list[ast.expr]:
    """The top-level factors of a product (a*b*c -> a, b, c); a lone term is one factor."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        return [*_factors(node.left), *_factors(node.right)]
    return [node]


def evaluate(text: str, values: dict[str, float]) -> tuple[float, ...]:
    """The numeric factors of a local-derivative formula at `values` (name -> number).

    >>> evaluate("out*(1 - out)", {"out": 0.25})
    (0.25, 0.75)
    >>> evaluate("[x > 0]", {"x": -1.0})
    (0.0,)
    """
    return tuple(_eval(f, values) for f in _factors(_tree(text)))


# --------------------------------------------------------------------------- one edge


def local(out: Node, args: list[Node], argnum: int, value: float | None) -> Local:
    """The row for input `argnum` of `out`; `value` is the true local derivative (scalars) and
    wins over the formula's factors if they disagree (or cannot be evaluated there)."""
    generic = f"d{_w(out, ATOM)}/d{_w(args[argnum], ATOM)}"
    true = None if value is None else (value,)
    op = OPS.get(out.op or "")
    params = out.tensor.params if out.tensor is not None else {}
    names = {} if op is None or op.variadic else dict(zip(op.inputs, args))
    names["out"] = out
    labels = {k: n.label for k, n in names.items()}
    f = formula(op, argnum, labels, params) if op is not None else ""
    if not f:
        return Local(generic, true, f"vjp_{out.op}[{argnum}]({{g}})")
    if is_vjp(f):
        return Local(generic, true, _substitute(f, names))
    text = _substitute(f, names)
    vjp_text = {"1": "{g}", "-1": "-{g}"}.get(
        text, "{g} * " + (text if _product(f) else f"({text})")
    )
    if value is None:
        return Local(text, None, vjp_text)
    try:
        factors = evaluate(f, {k: _v(n) for k, n in names.items()})
    except (ArithmeticError, ValueError, KeyError):  # 1/0, log of a negative: the true value
        return Local(text, true, vjp_text)
    return Local(text, factors if _close(math.prod(factors), value) else true, vjp_text)


def _product(text: str) -> bool:
    """Whether the formula can follow `g * ` bare (it is not a sum or difference at the top)."""
    node = _tree(text)
    return not (isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)))


def _close(a: Any, b: float) -> bool:
    return bool(np.isfinite(a)) and abs(a - b) <= 1e-4 * max(1.0, abs(b))
