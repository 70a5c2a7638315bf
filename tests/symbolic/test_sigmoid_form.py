"""The seeds' sigmoid form: a derivative of a written-out 1/(1 + e^(-g)) is given as
c·σ(g)(1 - σ(g)) where such a form exists, and only there. The numeric pre-check that spares
``sympy.simplify`` (``explain._depends_on_exp``) may only ever rule out forms that do not exist.
"""

from __future__ import annotations

import sys

import pytest

sp = pytest.importorskip("sympy")
pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from chainrule.symbolic import explain, sigmoid  # noqa: E402

EX = sys.modules["chainrule.symbolic.explain"]  # the module (its name is shadowed by explain)
x = sp.Symbol("x", real=True)


def s_form(c: sp.Expr, g: sp.Expr) -> sp.Expr:
    return c * sigmoid(g) * (1 - sigmoid(g))


# typed function -> its derivative in sigmoid form, or None: no sigmoid line, no σ in the answer
SIGMOID_FORMS: dict[str, sp.Expr | None] = {
    "1/(1+e^(-x))": s_form(1, x),
    "3/(1+e^(-2x))": s_form(6, 2 * x),
    "5 - 1/(1+e^(-x))": s_form(-1, x),
    "1/(1+e^(-x)) + 5*x": None,  # the benchmark's seed example + kx
    "1/(1+e^(-x)) + x/4": None,  # the ratio is 1 + cosh(x/2)²: e^x in disguise
    "x/(1+e^(-x))": None,
    "1/(1+e^(-x)) + e^x": None,
    "1/(1+e^(-x)) + sin(x)": None,
    "1/(1+e^(-x)) - 1/(1+e^(-2x))": None,
    "1/(1+e^(-x)) + cosh(x/2)": None,
}
# those the pre-check rules out without simplify (the new-expression latency, issue 13)
PROVED = [e for e, form in SIGMOID_FORMS.items() if form is None and "/4" not in e]


@pytest.mark.parametrize("expr", SIGMOID_FORMS)
def test_sigmoid_form_fires_where_it_exists_only(expr: str) -> None:
    d = explain(expr)
    keys = [line.key for line in d.lines]
    if SIGMOID_FORMS[expr] is None:
        assert "sigmoid" not in keys and not d.result.has(sigmoid)
    else:
        assert "sigmoid" in keys and d.result == SIGMOID_FORMS[expr]


def _ratios(expr: str) -> list[tuple[sp.Expr, sp.Expr]]:
    """(ratio to e^(-g)/(1 + e^(-g))², g) for each written-out sigmoid of expr."""
    d = explain(expr)
    result = EX.learner_form(d.steps.eval(), source=d.expr)
    return [(result * (1 + sp.exp(-g)) ** 2 / sp.exp(-g), g) for g in EX._sigmoid_args(d.expr)]


@pytest.mark.parametrize("expr", PROVED)
def test_precheck_rules_out_what_simplify_rules_out(expr: str) -> None:
    for ratio, g in _ratios(expr):
        assert EX._depends_on_exp(ratio, g)
        simplified = sp.simplify(ratio)  # the slow way agrees: no exp-free form of few ops
        assert simplified.has(*EX._EXP_LIKE) or sp.count_ops(simplified) > 4


@pytest.mark.parametrize("expr", [e for e, form in SIGMOID_FORMS.items() if form is not None])
def test_precheck_leaves_existing_forms_to_simplify(expr: str) -> None:
    assert not any(EX._depends_on_exp(ratio, g) for ratio, g in _ratios(expr))


_EXP_FREE_PARTS = [sp.Integer(1), x, x**2, sp.sin(x), sp.log(x), sp.sqrt(x**2 + 1), sp.atan(x)]


@settings(max_examples=60, deadline=None)
@given(
    coeffs=st.lists(st.integers(-3, 3), min_size=len(_EXP_FREE_PARTS), max_size=7),
    g=st.sampled_from([x, 2 * x, -x, x**2 + 1, 3 * x - 1]),
    q=st.sampled_from([sp.Integer(1), sp.Integer(-1), sp.Rational(1, 2), sp.Integer(2)]),
    m=st.integers(-2, 2),
)
def test_precheck_proves_dependence_only_when_there_is_some(coeffs, g, q, m) -> None:
    """c free of e^g is never ruled out; c + m·e^(qg) (m ≠ 0) always is, written in any of
    the forms SymPy's answers take (a product over e^(-g)/(1 + e^(-g))², a cosh)."""
    c = sum((k * f for k, f in zip(coeffs, _EXP_FREE_PARTS, strict=True)), sp.Integer(0))
    t = sp.exp(-g)
    hidden = c * t / (1 + t) ** 2 * sp.expand((1 + t) ** 2) / t  # SymPy leaves it uncancelled
    assert not EX._depends_on_exp(hidden, g)
    assert not EX._depends_on_exp(c, g)
    extra = m * sp.exp(q * g) + m * sp.cosh(q * g) ** 2
    assert EX._depends_on_exp(hidden + extra, g) == (m != 0)
