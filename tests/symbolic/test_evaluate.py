"""to_engine: chainrule's autodiff agrees with sympy.diff on every node type the explainer knows."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")
cr = pytest.importorskip("chainrule")

from chainrule.symbolic import parse, parse_program  # noqa: E402
from chainrule.symbolic.evaluate import program_to_engine, to_engine  # noqa: E402

EXPRESSIONS = [
    "(x^2+1)^3", "sqrt(1+x^2)", "e^(x^2) + 2^x", "x^2/(x+1)", "x^x", "log(x, 2) + ln(x)",
    "sin x + cos x + tan x + sec x + csc x + cot x", "asin(x/2) + acos(x/2) + atan x + acot x",
    "sinh x + cosh x + tanh x + sech x + csch x + coth x", "asinh x + acosh(x+1) + atanh(x/2)",
    "σ(x) + relu(x - 1) + softplus(x) + |x - 2|", "erf(x) + max(x, 1) + min(x, 2)",
]  # fmt: skip


@pytest.mark.parametrize("text", EXPRESSIONS)
def test_engine_gradient_matches_sympy(text):
    expr = parse(text)
    (x,) = expr.free_symbols
    for value in (0.7, 1.3):
        xt = cr.tensor(np.float64(value), dtype=np.float64, requires_grad=True)
        out = to_engine(expr, {"x": xt})
        out.backward()
        assert out.item() == pytest.approx(float(expr.subs(x, value)), rel=1e-10)
        assert xt.grad.item() == pytest.approx(float(sp.diff(expr, x).subs(x, value)), rel=1e-9)


def test_shared_subexpressions_become_one_tensor():
    x = cr.tensor(np.float64(0.5), dtype=np.float64, requires_grad=True)
    out = to_engine(parse("sin(x^2) * sin(x^2)"), {"x": x}, name="y")
    assert out.name == "y"
    out.backward()
    assert x.grad.item() == pytest.approx(2 * np.sin(0.25) * np.cos(0.25) * 2 * 0.5)


def test_program_evaluates_in_dependency_order_with_names():
    p = parse_program("L = 0.5*(a2 - t)^2; a2 = σ(z2); z2 = w2*a1 + b2; a1 = σ(w1*x + b1)")
    leaves = {"x": 1.0, "w1": 0.5, "b1": 0.2, "w2": 0.8, "b2": 0.1, "t": 0.9}
    env = {
        k: cr.tensor(np.float64(v), dtype=np.float64, requires_grad=True) for k, v in leaves.items()
    }
    values = program_to_engine(p, env)
    assert values["a1"].item() == pytest.approx(0.668, abs=5e-4)  # seed 003, section 6.1
    assert values["L"].item() == pytest.approx(0.030, abs=5e-4)
    assert values["a2"].name == "a2"


def test_missing_values_and_unknown_nodes_are_named():
    with pytest.raises(KeyError, match="'y'"):
        to_engine(parse("x*y"), {"x": cr.tensor(1.0)})
    with pytest.raises(NotImplementedError, match="floor"):
        to_engine(sp.floor(sp.Symbol("x")), {"x": cr.tensor(1.0)})
