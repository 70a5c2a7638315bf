"""`chainrule explain`: a step-by-step derivation, optionally checked numerically at a point.

`--at x=2` compares the derivation's value with central differences and with chainrule's own
autodiff; a point where the function or its derivative is undefined, complex or beyond float64
is reported as such (exit 2), with the one-sided limits of the derivative where they are clear.
Every failure is one line on stderr, exit 2; exit 1 means only "the --at check disagrees".
SymPy and the engine are imported inside `run`, so `chainrule --help` stays fast.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
from typing import Any

from chainrule import limits as L

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
    L.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    try:
        limits = L.from_args(args)
        with L.enforced(limits):
            return _run(args)
    except (ValueError, ArithmeticError) as exc:  # ParseError, LimitError, bad --at: one line
        print(f"chainrule explain: {exc}", file=sys.stderr)
        return 2
    except (RecursionError, MemoryError):
        print("chainrule explain: the formula is too large to explain", file=sys.stderr)
        return 2
    except ModuleNotFoundError:  # a missing extra: cli.main names the one to install
        raise
    except Exception as exc:  # a bug, still one line (the fuzz suite fails on this message)
        print(f"chainrule explain: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    import numpy as np

    from chainrule.symbolic import explain

    point = _parse_point(args.at)
    derivation = explain(args.expr, wrt=args.wrt, lang=args.lang)
    render = {"text": derivation.to_text, "markdown": derivation.to_markdown}
    print(render.get(args.fmt, derivation.to_latex)())
    if not point:
        return 0
    with np.errstate(all="ignore"):  # a domain error is diagnosed below, never a raw warning
        return _check(derivation, point, args.lang, args.expr)


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
        if not math.isfinite(point[name.strip()]):
            raise ValueError(f"--at {name.strip()} = {value.strip()} is not a finite number")
    return point


def _check(derivation, point: dict[str, float], lang: str, typed: str) -> int:
    """Print the derivative three ways; exit status 0 when they agree, 1 when not.

    Raises PointError when the function or its derivative has no real float64 value there.
    """
    from chainrule.symbolic.parse import Program

    if derivation.rates:
        # Given statement by statement (too big to write out in its inputs, limits.max_output):
        # f, its central differences and autodiff are computed one statement at a time too.
        full: Any = _Statements(derivation)
    else:
        full = Program(definitions=dict(derivation.definitions), expr=derivation.expr).inline()
    inputs = derivation.inputs if derivation.rates else {s.name for s in full.free_symbols}
    names = inputs | {derivation.wrt.name}
    if missing := sorted(names - set(point)):
        raise ValueError(f"--at needs a value for {', '.join(missing)}")
    values = {k: point[k] for k in names}
    shown_f = str(derivation.name) if derivation.definitions else typed.strip()
    where = ", ".join(f"{k} = {v:g}" for k, v in sorted(values.items()))
    if isinstance(full, _Statements):
        if not math.isfinite(full.value(values)):
            raise PointError(f"{shown_f} at {where} is not a finite real float64 number")
    else:
        _real_value(full, values, f"{shown_f} at {where}")
    symbolic = _derivative_value(derivation, values, shown_f, where)
    if isinstance(full, _Statements):
        h = 1e-6 * max(1.0, abs(values[derivation.wrt.name]))
        x = derivation.wrt.name
        shifted = [{**values, x: values[x] + d} for d in (h, -h)]
        central = (full.value(shifted[0]) - full.value(shifted[1])) / (2 * h)
    else:
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


class _Statements:
    """A program kept as its statements (`Derivation.run`): evaluated one statement at a time,
    in float64 or on chainrule's engine, so a program whose written-out form is exponentially
    long still has values (a diamond: each statement uses the two before it)."""

    def __init__(self, derivation: Any) -> None:
        self.derivation = derivation

    def value(self, values: dict[str, float]) -> float:
        """f at the point in float64; nan where a statement has no real value."""
        import numpy as np

        from chainrule.symbolic.functions import lambdify

        def evaluate(e: Any, env: dict[str, Any]) -> float:
            symbols = sorted(e.free_symbols, key=lambda s: s.name)
            try:
                with np.errstate(all="ignore"):
                    v = complex(lambdify(symbols, e)(*(np.float64(env[s.name]) for s in symbols)))
            except (ArithmeticError, ValueError, TypeError, KeyError):
                return math.nan
            return v.real if v.imag == 0 else math.nan

        return float(self.derivation.run(dict(values), evaluate))

    def engine(self, env: dict[str, Any]) -> Any:
        """f on chainrule's engine (the tensors in env are the inputs)."""
        from chainrule.symbolic.evaluate import to_engine

        return self.derivation.run(dict(env), to_engine)


class PointError(ValueError):
    """The function or its derivative has no real float64 value at the --at point."""


# Exact substitution lets SymPy say why there is no value, but SymPy then computes exact powers:
# x^x at 1e308 never ends. Past this size the error only says there is no finite real value.
_EXACT_MAX = 1e3


def _exact(expr, values: dict[str, float], skip=None):
    """expr with the point's values substituted as exact rationals (SymPy decides what it is)."""
    import sympy as sp

    return expr.xreplace({s: sp.Rational(values[s.name]) for s in expr.free_symbols if s != skip})


def _real_value(expr, values: dict[str, float], what: str) -> float:
    """expr at the point as a float; PointError says why there is none (undefined, complex,
    beyond float64's range)."""
    from chainrule.symbolic.functions import lambdify

    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    try:
        value = complex(lambdify(symbols, expr)(*(values[s.name] for s in symbols)))
    except (ArithmeticError, ValueError, TypeError, KeyError):  # KeyError: lambdify of zoo
        value = complex("nan")
    if value.imag == 0 and math.isfinite(value.real):
        return value.real
    import sympy as sp

    if max(map(abs, values.values())) > _EXACT_MAX:
        raise PointError(f"{what} is not a finite real float64 number (overflow, pole or complex)")
    exact = _exact(expr, values)
    if exact.has(sp.zoo, sp.nan, sp.oo, -sp.oo):
        raise PointError(f"{what} is undefined")
    if exact.is_extended_real is False:
        raise PointError(f"{what} is not a real number")
    if exact.is_finite:
        raise PointError(f"{what} is beyond the float64 range (about 1.8e308)")
    raise PointError(f"{what} is not finite")


def _derivative_value(derivation, values: dict[str, float], shown_f: str, where: str) -> float:
    """The derivation's answer at the point; when it has none, PointError names the point and
    gives the one-sided limits of the derivative where they are clear numerically."""
    from chainrule.symbolic.functions import lambdify

    x = derivation.wrt
    if derivation.rates:  # given statement by statement (limits.max_output): evaluated so too
        try:
            return derivation.evaluate(**values)
        except ValueError:
            raise PointError(f"the derivative of {shown_f} at {where} has no real value") from None
    try:
        return _real_value(derivation.result, values, "the derivative")
    except PointError as exc:
        reason = str(exc).removeprefix("the derivative ")
        if "float64" in reason:
            raise PointError(f"the derivative of {shown_f} at {where} {reason}") from None
    try:
        if max(map(abs, values.values())) > _EXACT_MAX:
            raise KeyError  # no exact substitution of large values (see _EXACT_MAX): no hint
        f = lambdify([x], _exact(derivation.result, values, skip=x))
    except KeyError:  # NumPy has no name for SymPy's zoo or nan: no hint
        raise PointError(f"{shown_f} is not differentiable at {where}") from None
    x0 = values[x.name]
    sides = [
        f"from the {side} it tends to {limit}"
        for side, sign in (("left", -1), ("right", 1))
        if (limit := _one_sided_limit(f, x0, sign)) is not None
    ]
    hint = f" ({'; '.join(sides)})" if sides else ""
    raise PointError(f"{shown_f} is not differentiable at {where}{hint}")


def _one_sided_limit(f, x0: float, sign: int) -> str | None:
    """The limit of f at x0 from one side, read off f at x0 ± 10^-3 ... 10^-9 (float64): "+∞" or
    "-∞" when |f| keeps growing at least as fast as log(1/h), a number when f settles, None when
    f is not real there or the values say neither. Numeric on purpose: sympy.limit can run for
    minutes on a small expression, and the limit is only a hint in an error message."""
    import numpy as np

    scale = max(1.0, abs(x0))
    try:
        with np.errstate(all="ignore"):
            vals = [complex(f(np.float64(x0 + sign * h * scale))) for h in (1e-3, 1e-5, 1e-7, 1e-9)]
    except (ArithmeticError, ValueError, TypeError):
        return None
    if any(v.imag != 0 or not math.isfinite(v.real) for v in vals):
        return None
    v = [c.real for c in vals]
    size = [abs(a) for a in v]
    steps = [b - a for a, b in itertools.pairwise(size)]
    same_sign = all(a > 0 for a in v) or all(a < 0 for a in v)
    if same_sign and all(d > 0 for d in steps) and steps[-1] >= 0.5 * steps[0]:
        return "+∞" if v[-1] > 0 else "-∞"
    if abs(v[-1] - v[-2]) <= 1e-6 * max(1.0, abs(v[-1])):
        return f"{v[-1]:.6g}"
    return None


def _close(a: float, b: float, rtol: float) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=rtol)


def _central_difference(expr, wrt: str, values: dict[str, float]) -> float:
    import numpy as np

    from chainrule.symbolic.functions import lambdify

    symbols = sorted(expr.free_symbols, key=lambda s: s.name)
    try:
        f = lambdify(symbols, expr)
    except KeyError:  # NumPy has no name for SymPy's zoo or nan
        return math.nan
    h = 1e-6 * max(1.0, abs(values[wrt]))

    def at(delta: float) -> float:
        # float64 arguments: an overflow is inf and a domain error nan, never an exception
        args = (np.float64(values[s.name] + (delta if s.name == wrt else 0.0)) for s in symbols)
        try:  # complex(): NumPy may hand back a complex128 with a zero imaginary part
            value = complex(f(*args))
        except (TypeError, ArithmeticError, ValueError):
            return math.nan
        return value.real if value.imag == 0 else math.nan  # complex: no real quotient

    return (at(h) - at(-h)) / (2 * h)


def _autodiff(expr, wrt: str, values: dict[str, float]) -> float:
    import numpy as np

    import chainrule as cr
    from chainrule.symbolic.evaluate import to_engine

    env = {
        k: cr.tensor(np.float64(v), dtype=np.float64, requires_grad=k == wrt)
        for k, v in values.items()
    }
    out = expr.engine(env) if isinstance(expr, _Statements) else to_engine(expr, env)
    if not out.requires_grad:  # the expression does not depend on wrt at all
        return 0.0
    out.backward()
    grad = env[wrt].grad
    assert grad is not None  # backward() just filled it: out depends on wrt
    return float(grad.item())
