"""`chainrule explain`: a step-by-step derivation, optionally checked numerically at a point.

`--at x=2` compares the derivation's value with central differences and with chainrule's own
autodiff. SymPy and the engine are imported inside `run`, so `chainrule --help` stays fast.
"""

from __future__ import annotations

import argparse
import math
import sys

HELP = "Explain a derivative step by step (chain rule and friends), in English or Chinese."

_AT_LABELS = {
    "en": ("At {point}:", "this derivation", "central differences", "chainrule autodiff",
           "all three agree", "they DISAGREE"),
    "zh": ("在 {point} 处：", "本推导", "中心差分", "chainrule 自动微分",
           "三者一致", "三者不一致"),
}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("expr", help='e.g. "(x^2+1)^3" or "z = (u+v)^2; u = x*y; v = x + y"')
    parser.add_argument(
        "--wrt", default=None, help="variable to differentiate by (default: d/dt's t, else x)"
    )
    parser.add_argument("--lang", choices=("en", "zh"), default="en", help="language")
    parser.add_argument(
        "--format", choices=("text", "markdown", "latex"), default="text", dest="fmt"
    )
    parser.add_argument(
        "--at",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="evaluate there and check against central differences and autodiff "
        "(repeat or comma-separate for several variables: --at x=2,y=3)",
    )


def run(args: argparse.Namespace) -> int:
    from chainrule.symbolic import ParseError, explain

    try:
        point = _parse_point(args.at)
        derivation = explain(args.expr, wrt=args.wrt, lang=args.lang)
    except (ParseError, ValueError) as exc:
        print(f"chainrule explain: {exc}", file=sys.stderr)
        return 2
    render = {"text": derivation.to_text, "markdown": derivation.to_markdown}
    print(render.get(args.fmt, derivation.to_latex)())
    if not point:
        return 0
    try:
        return _check(derivation, point, args.lang)
    except (KeyError, ValueError) as exc:
        print(f"chainrule explain: {exc}", file=sys.stderr)
        return 2


def _parse_point(items: list[str]) -> dict[str, float]:
    point: dict[str, float] = {}
    for item in (p for raw in items for p in raw.split(",") if p.strip()):
        name, sep, value = item.partition("=")
        try:
            if not sep:
                raise ValueError
            point[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"--at expects NAME=VALUE, got {item!r}") from None
    return point


def _check(derivation, point: dict[str, float], lang: str) -> int:
    """Print the derivative three ways; exit status 0 when they agree, 1 when not."""
    from chainrule.symbolic.parse import Program

    full = Program(definitions=dict(derivation.definitions), expr=derivation.expr).inline()
    names = {s.name for s in full.free_symbols} | {derivation.wrt.name}
    if missing := sorted(names - set(point)):
        raise ValueError(f"--at needs a value for {', '.join(missing)}")
    values = {k: point[k] for k in names}
    symbolic = derivation.evaluate(**values)
    central = _central_difference(full, derivation.wrt.name, values)
    engine = _autodiff(full, derivation.wrt.name, values)
    agree = _close(symbolic, engine, 1e-8) and _close(symbolic, central, 1e-5)
    head, *labels, yes, no = _AT_LABELS[lang]
    shown = ", ".join(f"{k} = {v:g}" for k, v in sorted(values.items()))
    print("\n" + head.format(point=shown))
    for label, value in zip(labels, (symbolic, central, engine)):
        print(f"  {label:<22} {value:.12g}")
    print(f"  {yes if agree else no}")
    return 0 if agree else 1


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)


def _central_difference(expr, wrt: str, values: dict[str, float]) -> float:
    from chainrule.symbolic.functions import lambdify

    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    f = lambdify(symbols, expr)
    h = 1e-6 * max(1.0, abs(values[wrt]))

    def at(delta: float) -> float:
        return float(f(*(values[s.name] + (delta if s.name == wrt else 0.0) for s in symbols)))

    return (at(h) - at(-h)) / (2 * h)


def _autodiff(expr, wrt: str, values: dict[str, float]) -> float:
    import numpy as np

    import chainrule as cr
    from chainrule.symbolic.evaluate import to_engine

    env = {
        k: cr.tensor(np.float64(v), dtype=np.float64, requires_grad=k == wrt)
        for k, v in values.items()
    }
    out = to_engine(expr, env)
    if not out.requires_grad:  # the expression does not depend on wrt at all
        return 0.0
    out.backward()
    grad = env[wrt].grad
    assert grad is not None  # backward() just filled it: out depends on wrt
    return float(grad.item())
