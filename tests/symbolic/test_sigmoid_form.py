"""The seeds' sigmoid form: a derivative of a written-out 1/(1 + e^(-g)) is given with
σ(g) (d/dz σ(z) = σ(z)(1 - σ(z)), seed 000), term by term, with g' from the chain rule, and
only where it is proved equal to the derivative. The answer never uses a function the learner
did not type (no 1/(4cosh²(x/2)) for exponentials). The numeric pre-check that spares
``sympy.simplify`` (``explain._depends_on_exp``) may only ever rule out forms that do not exist.
"""

from __future__ import annotations

import math
import sys

import pytest

sp = pytest.importorskip("sympy")
pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from chainrule.symbolic import explain, learner_form, sigmoid  # noqa: E402
from chainrule.symbolic.functions import lambdify  # noqa: E402
from chainrule.symbolic.parse import parse_program  # noqa: E402

EX = sys.modules["chainrule.symbolic.explain"]  # the module (its name is shadowed by explain)
x = sp.Symbol("x", real=True)
RESULT = {"en": "Result: ", "zh": "结果："}


def s_form(c: sp.Expr, g: sp.Expr) -> sp.Expr:
    return c * sigmoid(g) * (1 - sigmoid(g))


# typed function -> the answer as printed (the same math in both languages), or None: no
# sigmoid line and no σ in the answer. The first is the playground's seed example.
SIGMOID_FORMS: dict[str, str | None] = {
    "1/(1+exp(-x)) + k*x": "∂y/∂x = k + σ(x)(1 − σ(x))",
    "1/(1+e^(-x))": "dy/dx = σ(x)(1 − σ(x))",
    "2/(1+e^(-x))": "dy/dx = 2σ(x)(1 − σ(x))",
    "3/(1+e^(-2x))": "dy/dx = 6σ(2x)(1 − σ(2x))",
    "5 - 1/(1+e^(-x))": "dy/dx = −σ(x)(1 − σ(x))",
    "1/(1+e^(-x^2))": "dy/dx = 2x·σ(x²)(1 − σ(x²))",
    "1/(1+e^(-3x+1))": "dy/dx = 3σ(3x − 1)(1 − σ(3x − 1))",
    "1/(1+e^(-a x))": "∂y/∂x = a·σ(ax)(1 − σ(ax))",
    "1/(1+e^(-x)) + 5*x": "dy/dx = σ(x)(1 − σ(x)) + 5",
    "1/(1+e^(-x)) + x/4": "dy/dx = σ(x)(1 − σ(x)) + 1/4",
    "1/(1+e^(-x)) + e^x": "dy/dx = σ(x)(1 − σ(x)) + eˣ",
    "1/(1+e^(-x)) + sin(x)": "dy/dx = σ(x)(1 − σ(x)) + cos(x)",
    "1/(1+e^(-x)) - 1/(1+e^(-2x))": "dy/dx = σ(x)(1 − σ(x)) − 2σ(2x)(1 − σ(2x))",
    "1/(1+e^(-x)) + cosh(x/2)": "dy/dx = σ(x)(1 − σ(x)) + sinh(x/2)/2",
    "x/(1+e^(-x))": "dy/dx = x·σ(x)(1 − σ(x)) + σ(x)",  # the product rule, σ' inside
    "e^(-x)/(1+e^(-x))": "dy/dx = −σ(x)(1 − σ(x))",  # 1 - σ(x): σ found in the whole answer
    "(1/(1+e^(-x)))^2": "dy/dx = 2σ²(x)(1 − σ(x))",
    "e^(1/(1+e^(-x)))": "dy/dx = e^(σ(x))·σ(x)(1 − σ(x))",  # the chain rule through σ
    "e^x/(1+e^(-x))": None,  # e^x·σ(x) mixes the two forms, and no c·σ(1 - σ) exists
    "sigmoid(x) + 1/(1+e^(-x))": "dy/dx = 2σ(x)(1 − σ(x))",  # one typed, one written out
    "ln(1/(1+e^(-x)))": "dy/dx = 1 − σ(x)",
    "1/(1+e^(-k)) + x^2": None,  # a constant σ(k): nothing to show
    "1/(1+e^(-k))*1/(1+e^(-x))": "∂y/∂x = σ(k)·σ(x)(1 − σ(x))",
    "x^2 + e^(-x)": None,  # no written-out sigmoid
}


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("expr", SIGMOID_FORMS)
def test_sigmoid_form_table(expr: str, lang: str) -> None:
    d = explain(expr, lang=lang)
    keys = [line.key for line in d.lines]
    last = d.to_text().splitlines()[-1]
    if SIGMOID_FORMS[expr] is None:
        assert "sigmoid" not in keys and not d.result.has(sigmoid)
    else:
        assert "sigmoid" in keys and last == RESULT[lang] + SIGMOID_FORMS[expr]
    assert "cosh" not in d.to_text() or "cosh" in expr  # never a function the learner never typed


def test_a_program_gives_its_result_in_sigma_as_its_last_line() -> None:
    d = explain("z = 1/(1+e^(-u)) + k*u; u = 3x+1")
    assert d.to_text().endswith("Result: ∂z/∂x = 3k + 3σ(3x + 1)(1 − σ(3x + 1))")
    k = next(s for s in d.result.free_symbols if s.name == "k")
    assert d.result == 3 * k + 3 * s_form(1, 3 * x + 1)


@pytest.mark.parametrize("expr", ["1/(1+exp(-x)) + k*x", "1/(1+e^(-x^2))", "x/(1+e^(-3x+1))"])
def test_a_wrong_sigma_form_is_never_claimed(expr: str) -> None:
    """The check behind every σ form refuses a form off by a factor, in g or in g'."""
    e = parse_program(expr, names={"x"}).expr
    v = next(s for s in e.free_symbols if s.name == "x")
    written = EX._with_sigma(e)
    form, result = sp.diff(written, v), sp.diff(e, v)
    assert EX._same(form, result, written, e)
    g = EX._sigmoid_args(e)[0]
    for wrong in (2 * form, form.subs(sigmoid(g), sigmoid(2 * g)), form + s_form(v, g)):
        assert not EX._same(wrong, result, written, e)
    assert not EX._same(form, result, written.subs(sigmoid(g), sigmoid(2 * g)), e)


def test_no_sigma_form_where_it_cannot_be_checked() -> None:
    """A SymPy input's undefined f(x) has no value at a point: nothing is claimed, no error."""
    v = sp.Symbol("x")
    d = explain(sp.Function("f")(v) / (1 + sp.exp(-v)))
    assert "sigmoid" not in [line.key for line in d.lines] and not d.result.has(sigmoid)


# Functions whose derivative SymPy's simplify writes with cosh (1/(4cosh²(x/2)), ...).
NEW_FUNCTIONS = ["1/(1+e^(-x))", "1/(1+e^(-x^2))", "1/(1+e^(-3x+1))", "x - 2/(1+e^(2x))"]


@pytest.mark.parametrize("expr", NEW_FUNCTIONS)
def test_learner_form_never_brings_in_a_new_function(expr: str) -> None:
    e = parse_program(expr, names={"x"}).expr
    raw = sp.diff(e, next(s for s in e.free_symbols if s.name == "x"))
    assert sp.simplify(raw).has(sp.cosh)  # the trap is real
    tidy = learner_form(raw, source=e)
    assert {type(f) for f in tidy.atoms(sp.Function)} <= {type(f) for f in raw.atoms(sp.Function)}
    assert "cosh" not in explain(expr).to_text() + explain(expr, lang="zh").to_text()


_G = st.sampled_from(["x", "2x", "-x", "x^2", "3x - 1", "x^2 + 1", "a x", "x/2"])
# e^(x²), not e^x: the parser reads a printed eˣ as e·x (superscript letters are not exponents)
_OTHER = st.sampled_from(["", " + k*x", " + x^3", " - e^(x^2)", " + sin(x)", " + 5"])


@settings(max_examples=30, deadline=None)
@given(
    parts=st.lists(
        st.tuples(st.integers(-3, 3).filter(bool), _G),
        min_size=1,
        max_size=2,
        unique_by=lambda p: p[1],  # σ(x) - σ(x) has nothing left to show
    ),
    other=_OTHER,
    outer=st.sampled_from(["{}", "x*({})", "sin({})", "({})^2", "e^({})"]),
)
def test_every_printed_sigmoid_form_is_the_derivative(parts, other, outer) -> None:
    """Sums of c/(1 + e^(-g)), as they are or inside a product, a function or a power, beside a
    term without a sigmoid: the σ form is given, and the printed answer, read back by the
    parser, equals SymPy's derivative."""
    typed = outer.format(" + ".join(f"{c}/(1+e^(-({g})))" for c, g in parts))
    d = explain(typed + other)
    assert "sigmoid" in [line.key for line in d.lines]
    printed = d.to_text().splitlines()[-1].split(" = ", 1)[1]
    back = parse_program(printed, names={"x"}).expr
    e = parse_program(typed + other, names={"x"}).expr
    v = next(s for s in e.free_symbols if s.name == "x")
    symbols = sorted(e.free_symbols, key=str)
    want, got = lambdify(symbols, sp.diff(e, v)), lambdify(symbols, back.xreplace(_real(back)))
    for t in (-1.3, 0.4, 2.1):
        point = [t if s == v else 0.7 for s in symbols]
        assert math.isclose(got(*point), want(*point), rel_tol=1e-9, abs_tol=1e-12)


def _real(e: sp.Expr) -> dict[sp.Symbol, sp.Symbol]:
    return {s: sp.Symbol(s.name, real=True) for s in e.free_symbols}


def _ratios(expr: str) -> list[tuple[sp.Expr, sp.Expr]]:
    """(ratio to e^(-g)/(1 + e^(-g))², g) for each written-out sigmoid of expr."""
    d = explain(expr)
    result = EX.learner_form(d.steps.eval(), source=d.expr)
    return [(result * (1 + sp.exp(-g)) ** 2 / sp.exp(-g), g) for g in EX._sigmoid_args(d.expr)]


# those the pre-check rules out without simplify (the new-expression latency, issue 13)
PROVED = [
    "1/(1+e^(-x)) + 5*x",
    "x/(1+e^(-x))",
    "1/(1+e^(-x)) + e^x",
    "1/(1+e^(-x)) + sin(x)",
    "1/(1+e^(-x)) - 1/(1+e^(-2x))",
    "1/(1+e^(-x)) + cosh(x/2)",
    "e^x/(1+e^(-x))",
]
# whole answers that are c·σ(g)(1 - σ(g)): the pre-check must leave them to simplify
WHOLE = ["1/(1+e^(-x))", "3/(1+e^(-2x))", "5 - 1/(1+e^(-x))", "e^(-x)/(1+e^(-x))"]


@pytest.mark.parametrize("expr", PROVED)
def test_precheck_rules_out_what_simplify_rules_out(expr: str) -> None:
    for ratio, g in _ratios(expr):
        assert EX._depends_on_exp(ratio, g)
        simplified = sp.simplify(ratio)  # the slow way agrees: no exp-free form of few ops
        assert simplified.has(*EX._EXP_LIKE) or sp.count_ops(simplified) > 4


@pytest.mark.parametrize("expr", WHOLE)
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
