"""What each interaction of the page computes: plain functions from JSON-able arguments to
JSON-able answers, run in a worker process (``worker.py``) under the time budget.

They call the library's public API only, the same calls the CLI makes: ``symbolic.explain`` for
derivations, ``viz.graph`` and ``viz.trace`` for backprop (through ``commands.backprop.build``,
which reads a program as ``chainrule backprop`` does), so the page cannot disagree with them.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp

from chainrule.symbolic import Derivation, explain
from chainrule.symbolic.functions import lambdify
from chainrule.symbolic.mathprint import TextMath
from chainrule.web import mathml
from chainrule.web.limits import SLIDER_RANGE, InputError

PLOT_POINTS = 161
PLOT_RANGE = (-3.0, 3.0)
CENTRAL_H = 1e-7  # seed 003's numerical_gradient template: (f(x + h) - f(x - h)) / (2h)

# The graph view's examples: seed 003 §6.1's network, seed 001's z = (u+v)², seed 003 §4.3's neuron
EXAMPLES: dict[str, dict[str, Any]] = {
    "seed-network": {
        "title": "Seed 003 §6.1: a 2-layer network",
        "program": "z1 = w1*x + b1; a1 = sigmoid(z1); z2 = w2*a1 + b2; a2 = sigmoid(z2); "
        "L = 0.5*(a2 - t)^2",
        "at": {"x": 1.0, "w1": 0.5, "b1": 0.2, "w2": 0.8, "b2": 0.1, "t": 0.9},
    },
    "seed-composite": {
        "title": "Seed 001: z = (u+v)², u = xy, v = x + y",
        "program": "u = x*y; v = x + y; z = (u + v)^2",
        "at": {"x": 1.0, "y": 2.0},
    },
    "seed-neuron": {
        "title": "Seed 003 §4.3: one neuron, L = (a − t)²",
        "program": "z = w1*x1 + w2*x2 + b; a = sigmoid(z); L = (a - t)^2",
        "at": {"x1": 0.4, "x2": -1.2, "w1": 0.7, "w2": 0.3, "b": 0.1, "t": 1.0},
    },
}


@functools.lru_cache(maxsize=64)
def _explain(expr: str, wrt: str, lang: str) -> Derivation:
    """Derivations are cached per worker: dragging the point re-asks for the same one."""
    return explain(expr, wrt=wrt, lang=lang)


def _engine_value(d: Derivation, t: Any) -> Any:
    """f on chainrule's engine at the tensor t, statement by statement."""
    from chainrule.symbolic.evaluate import to_engine

    return d.run({d.wrt.name: t}, to_engine)


def _function_on(d: Derivation, xs: np.ndarray) -> np.ndarray:
    """f on all of xs, a program statement by statement (never written out)."""
    return d.run({d.wrt.name: xs}, lambda e, env: _sample_with(e, env, xs))


def _text(e: sp.Expr) -> str:
    return TextMath().expr(e)


def _finite(values: np.ndarray) -> list[float | None]:
    return [float(v) if math.isfinite(v) else None for v in values.tolist()]


def derive(expr: str, wrt: str = "x", lang: str = "en") -> dict[str, Any]:
    """The derivation as a tree of named steps (MathML), the result, and a plot of f and f'."""
    d = _explain(expr, wrt, lang)
    names = sorted(d.inputs | {d.wrt.name})
    printer = mathml.MathMLMath()
    top = printer.deriv(d.name, d.wrt, len(names) > 1)
    out: dict[str, Any] = {
        "steps": mathml.step_tree(d.lines, lang),
        "result": mathml.math(f"{top} = {printer.expr(d.result)}"),
        "result_text": _text(d.result),
        "variables": names,
        "wrt": d.wrt.name,
        "plot": None,
    }
    if names == [d.wrt.name]:
        out["plot"] = _plot(d)
    return out


def _plot(d: Derivation) -> dict[str, Any]:
    """f and f' sampled on PLOT_RANGE; None where undefined; a y-window that ignores poles."""
    x = sp.Symbol(d.wrt.name, real=True)
    xs = np.linspace(*PLOT_RANGE, PLOT_POINTS)
    f = _function_on(d, xs)
    if d.rates:  # given statement by statement: evaluated that way, never written out
        df = d.run_derivative({d.wrt.name: xs}, lambda e, env: _sample_with(e, env, xs))
    else:
        df = _sample(lambdify([d.wrt], d.result.xreplace({d.wrt: x}).subs(x, d.wrt)), xs)
    both = np.concatenate([f, df])
    both = both[np.isfinite(both)]
    if both.size:
        lo, hi = np.percentile(both, [8, 92])  # a steep end or a pole must not flatten the rest
        pad = max(0.5, 0.15 * (hi - lo))
        window = [float(lo - pad), float(hi + pad)]
    else:
        window = [-1.0, 1.0]
    return {"x": xs.tolist(), "f": _finite(f), "df": _finite(df), "y": window}


def _sample_with(e: sp.Expr, known: dict[str, np.ndarray], xs: np.ndarray) -> np.ndarray:
    """e on xs given its free symbols' values there (point by point where NumPy refuses)."""
    symbols = sorted(e.free_symbols, key=lambda s: s.name)
    fn = lambdify(symbols, e)
    args = [np.broadcast_to(known[s.name], xs.shape) for s in symbols]
    with np.errstate(all="ignore"):
        try:
            values = np.asarray(fn(*args), dtype=float)
        except (ArithmeticError, TypeError, ValueError):
            values = np.array([_one(fn, *point) for point in zip(*args)] if args else [math.nan])
    return np.broadcast_to(values, xs.shape).astype(float)


def _sample(fn: Callable[..., Any], xs: np.ndarray) -> np.ndarray:
    with np.errstate(all="ignore"):
        try:
            values = np.asarray(fn(xs), dtype=float)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            values = np.array([_one(fn, v) for v in xs], dtype=float)
    return np.broadcast_to(values, xs.shape).astype(float)


def _one(fn: Callable[..., Any], *v: float) -> float:
    try:
        return float(fn(*v))
    except (TypeError, ValueError, ZeroDivisionError, OverflowError):
        return math.nan


def point(expr: str, wrt: str, x: float, lang: str = "en") -> dict[str, Any]:
    """At x: f, the tangent, and f'(x) three ways (the derivation, central differences as seed
    003's template with h = 1e-7, chainrule's autodiff)."""
    import chainrule as cr

    d = _explain(expr, wrt, lang)
    if d.inputs - {d.wrt.name}:
        raise InputError("the point check needs a function of one variable")
    fx, below, above = _function_on(d, np.array([x, x - CENTRAL_H, x + CENTRAL_H])).tolist()
    central = (above - below) / (2 * CENTRAL_H)
    try:
        analytic = d.evaluate(**{d.wrt.name: x})
    except (TypeError, ValueError):  # complex or undefined there
        analytic = math.nan
    t = cr.tensor(np.float64(x), dtype=np.float64, requires_grad=True)
    with np.errstate(all="ignore"):
        out = _engine_value(d, t)
        if out.requires_grad:
            out.backward()
        autodiff = float(t.grad.item()) if t.grad is not None else 0.0
    values = [fx, analytic, central, autodiff]
    agree = all(map(math.isfinite, values)) and (
        math.isclose(analytic, autodiff, rel_tol=1e-8, abs_tol=1e-8)
        and math.isclose(analytic, central, rel_tol=1e-5, abs_tol=1e-5)
    )
    return {
        "x": x,
        "f": fx if math.isfinite(fx) else None,
        "analytic": analytic if math.isfinite(analytic) else None,
        "central": central if math.isfinite(central) else None,
        "autodiff": autodiff if math.isfinite(autodiff) else None,
        "agree": agree,
    }


def graph(program: str, at: dict[str, float], digits: int = 3) -> dict[str, Any]:
    """The computational graph with values and gradients, and the backward trace, step by step."""
    from chainrule import viz
    from chainrule.commands.backprop import InputError as CliInputError
    from chainrule.commands.backprop import build

    for k, v in at.items():
        if not (isinstance(v, int | float) and abs(v) <= SLIDER_RANGE * 10):
            raise InputError(f"{k}: {v!r} is not a number within ±{SLIDER_RANGE * 10:g}")
    try:
        out = build(program, {k: float(v) for k, v in at.items()})
    except CliInputError as exc:
        raise InputError(str(exc)) from None
    if not out.requires_grad:
        raise InputError("the program does not depend on any input")
    with np.errstate(all="ignore"):
        drawing = viz.graph(out, backward=True, digits=digits)
        trace = viz.trace(out, digits=digits)
    text = trace.to_text().splitlines()
    backward = text[text.index(next(s for s in text if s.startswith("Backward"))) + 1 :]
    forward = text[1 : len(text) - len(backward) - 1]
    steps = [
        {"node": f"n{s.node.index}", "label": s.node.label, "line": line.strip()}
        for s, line in zip(trace.steps, backward)
    ]
    grads = {k: float(np.asarray(v).reshape(-1)[0]) for k, v in trace.inputs.items()}
    return {
        "svg": mathml.to_tree(drawing.to_svg().split("?>", 1)[-1].strip(), mathml.SVG_TAGS),
        "forward": [s.strip() for s in forward],
        "steps": steps,
        "inputs": [{"name": k, "value": float(v), "grad": grads.get(k)} for k, v in at.items()],
        "output": trace.output.label,
    }


def check(expr: str, wrt: str, answer: str, lang: str = "en") -> dict[str, Any]:
    """The learner's derivative judged against the derivation (see ``answers.check``)."""
    from chainrule.web import answers

    return answers.check(_explain(expr, wrt, lang), answer, lang)


def practice(rule: str, difficulty: int, index: int, lang: str = "en") -> dict[str, Any]:
    """Exercise ``index`` for ``rule`` and ``difficulty``, with its function as MathML."""
    from chainrule.symbolic import parse_program
    from chainrule.web.practice import exercise

    ex = exercise(rule, difficulty, index)
    program = parse_program(ex["expr"])
    printer = mathml.MathMLMath()
    if program.definitions:
        shown = ", ".join(
            f"{printer.expr(k)} = {printer.expr(v)}" for k, v in program.definitions.items()
        )
    else:
        shown = f"{printer.expr(sp.Symbol('y'))} = {printer.expr(program.expr)}"
    return {**ex, "math": mathml.math(shown)}


# One of each kind of interaction, run in the worker pool's forkserver (``preload.py``): every
# worker is forked from it with SymPy's caches filled and its lazily imported printers, solvers
# and lambdify code already loaded. Measured on the 2-core machine: a fresh worker's first new
# expression took 850-970 ms (then ~100 ms), its first check 330 ms, its first graph 170 ms.
WARM_UP: tuple[tuple[str, dict[str, Any]], ...] = (
    *(("derive", {"expr": e}) for e in ("(x^2+1)^3", "x^2*e^x", "x^2/(x+1)", "1/(1+e^(-x))")),
    *(("derive", {"expr": e}) for e in ("sin(x)/x + ln(x)", "sqrt(1+x^2)", "e^(x^2)")),
    ("derive", {"expr": "z = (u+v)^2; u = x*y; v = x + y"}),
    ("point", {"expr": "(x^2+1)^3", "wrt": "x", "x": 0.5}),
    ("check", {"expr": "(x^2+1)^3", "wrt": "x", "answer": "3*(x^2+1)^2*x"}),
    ("check", {"expr": "x^2*sin(x)", "wrt": "x", "answer": "2*x*sin(x) + x^2*cos(x)"}),
    *(("graph", {"program": ex["program"], "at": ex["at"]}) for ex in EXAMPLES.values()),
    ("practice", {"rule": "chain", "difficulty": 2, "index": 5}),
)


def warm() -> None:
    """Run ``WARM_UP`` once (in the forkserver, so that the workers forked from it start warm)."""
    from chainrule.limits import applied
    from chainrule.web.limits import LIBRARY_LIMITS

    for name, kwargs in WARM_UP:
        try:
            with applied(LIBRARY_LIMITS):
                VIEWS[name](**kwargs)
        except Exception:  # a failed warm-up only means a colder first request
            continue


VIEWS: dict[str, Callable[..., Any]] = {
    "derive": derive,
    "point": point,
    "graph": graph,
    "check": check,
    "practice": practice,
}
