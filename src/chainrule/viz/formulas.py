"""The local derivative of each op as text, for the trace: one row per (op, input).

A row gives d out / d input in terms of the node labels (`a2*(1 - a2)` for a sigmoid named a2),
its value as a product of numeric factors (`0.653 * 0.347`, so the trace can show the seed's
arithmetic), and, for tensors, the vector-Jacobian product with the upstream gradient `g`
(`g @ W^T`). Ops without a row fall back to `d out/d input` and the number the vjp computed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

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


# Each row: (out, inputs) -> (text, factors, vjp text with {g}); factors read scalar values.
Row = Callable[[Node, list[Node]], tuple[str, tuple[float, ...], str]]
_ELEMENTWISE: dict[tuple[str, int], Row] = {
    ("add", 0): lambda o, a: ("1", (), "{g}"),
    ("add", 1): lambda o, a: ("1", (), "{g}"),
    ("sub", 0): lambda o, a: ("1", (), "{g}"),
    ("sub", 1): lambda o, a: ("-1", (-1.0,), "-{g}"),
    ("neg", 0): lambda o, a: ("-1", (-1.0,), "-{g}"),
    ("mul", 0): lambda o, a: (_w(a[1]), (_v(a[1]),), "{g} * " + _w(a[1])),
    ("mul", 1): lambda o, a: (_w(a[0]), (_v(a[0]),), "{g} * " + _w(a[0])),
    ("div", 0): lambda o, a: (f"1/{_w(a[1], ATOM)}", (1 / _v(a[1]),), "{g} / " + _w(a[1], ATOM)),
    ("div", 1): lambda o, a: (
        f"-{_w(a[0])}/{_w(a[1], ATOM)}^2",
        (-_v(a[0]) / _v(a[1]) ** 2,),
        "-{g} * " + f"{_w(a[0])}/{_w(a[1], ATOM)}^2",
    ),
    ("power", 0): lambda o, a: _power_base(a[0], a[1]),
    ("power", 1): lambda o, a: (
        f"{_w(o)}*log({a[0].label})",
        (_v(o), math.log(_v(a[0])) if _v(a[0]) > 0 else math.nan),
        "{g} * " + f"{_w(o)}*log({a[0].label})",
    ),
    ("exp", 0): lambda o, a: (_w(o), (_v(o),), "{g} * " + _w(o)),
    ("log", 0): lambda o, a: (f"1/{_w(a[0], ATOM)}", (1 / _v(a[0]),), "{g} / " + _w(a[0], ATOM)),
    ("sin", 0): lambda o, a: (
        f"cos({a[0].label})",
        (math.cos(_v(a[0])),),
        "{g} * " + f"cos({a[0].label})",
    ),
    ("cos", 0): lambda o, a: (
        f"-sin({a[0].label})",
        (-math.sin(_v(a[0])),),
        "-{g} * " + f"sin({a[0].label})",
    ),
    ("tanh", 0): lambda o, a: (
        f"1 - {_w(o, 4)}^2",
        (1 - _v(o) ** 2,),
        "{g} * " + f"(1 - {_w(o, 4)}^2)",
    ),
    ("sigmoid", 0): lambda o, a: (
        f"{_w(o)}*(1 - {_w(o)})",
        (_v(o), 1 - _v(o)),
        "{g} * " + f"{_w(o)}*(1 - {_w(o)})",
    ),
    ("sqrt", 0): lambda o, a: (f"1/(2*{_w(o)})", (1 / (2 * _v(o)),), "{g} / " + f"(2*{_w(o)})"),
    ("relu", 0): lambda o, a: (
        f"[{a[0].label} > 0]",
        (float(_v(a[0]) > 0),),
        "{g} * " + f"[{a[0].label} > 0]",
    ),
    ("softplus", 0): lambda o, a: (
        f"sigmoid({a[0].label})",
        (1 / (1 + math.exp(-_v(a[0]))),),
        "{g} * " + f"sigmoid({a[0].label})",
    ),
}
# Ops whose vjp is not "g times something elementwise": only the vjp text is given.
_STRUCTURAL: dict[tuple[str, int], Callable[[Node, list[Node]], str]] = {
    ("matmul", 0): lambda o, a: "{g} @ " + f"{_w(a[1], ATOM)}^T",
    ("matmul", 1): lambda o, a: f"{_w(a[0], ATOM)}^T @ " + "{g}",
    ("linear", 0): lambda o, a: "{g} @ " + _w(a[1], ATOM),
    ("linear", 1): lambda o, a: "{g}^T @ " + _w(a[0], ATOM),
    ("linear", 2): lambda o, a: "sum_rows({g})",
    ("sum", 0): lambda o, a: "broadcast({g})",
    ("transpose", 0): lambda o, a: "{g}^T",
    ("reshape", 0): lambda o, a: "reshape({g})",
    ("broadcast_to", 0): lambda o, a: "sum_to({g})",
    ("getitem", 0): lambda o, a: "scatter({g})",
    ("logsumexp", 0): lambda o, a: "{g} * softmax(" + a[0].label + ")",
    # seed 002: delta_L = y_hat - y (divided by N when the op also takes the mean)
    ("softmax_cross_entropy", 0): lambda o, a: "{g} * (softmax(" + a[0].label + ") - onehot(y))",
    ("max", 0): lambda o, a: "{g} at argmax(" + a[0].label + ")",
    ("min", 0): lambda o, a: "{g} at argmin(" + a[0].label + ")",
    ("where", 1): lambda o, a: f"where({a[0].label}, " + "{g}, 0)",
    ("where", 2): lambda o, a: f"where({a[0].label}, 0, " + "{g})",
}


def _power_base(x: Node, y: Node) -> tuple[str, tuple[float, ...], str]:
    yv = _v(y)
    if y.kind == "const" and yv == 2:
        text, factors = f"2*{_w(x)}", (2.0, _v(x))
    elif y.kind == "const" and float(yv).is_integer():
        text, factors = f"{int(yv)}*{_w(x, 5)}^{int(yv) - 1}", (yv, _v(x) ** (yv - 1))
    else:
        text = f"{_w(y)}*{_w(x, 5)}^({y.label} - 1)"
        factors = (yv, _v(x) ** (yv - 1) if _v(x) > 0 or yv.is_integer() else math.nan)
    return text, factors, "{g} * " + text


def local(out: Node, args: list[Node], argnum: int, value: float | None) -> Local:
    """The row for input `argnum` of `out`; `value` is the true local derivative (scalars) and
    wins over the row's factors if they disagree (an op whose row is only approximate)."""
    key = (out.op or "", argnum)
    generic = f"d{_w(out, ATOM)}/d{_w(args[argnum], ATOM)}"
    if key in _ELEMENTWISE:
        try:
            text, factors, vjp_text = _ELEMENTWISE[key](out, args)
        except (ArithmeticError, ValueError):  # 1/0, log of a negative: keep the true value only
            return Local(generic, None if value is None else (value,), f"{{g}} * {generic}")
        if value is None:
            return Local(text, None, vjp_text)
        if not _close(math.prod(factors), value):
            factors = (value,)
        return Local(text, factors, vjp_text)
    if key in _STRUCTURAL:
        return Local(generic, None if value is None else (value,), _STRUCTURAL[key](out, args))
    return Local(generic, None if value is None else (value,), f"vjp_{out.op}[{argnum}]({{g}})")


def _close(a: Any, b: float) -> bool:
    return bool(np.isfinite(a)) and abs(a - b) <= 1e-4 * max(1.0, abs(b))
