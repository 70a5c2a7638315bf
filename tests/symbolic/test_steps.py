"""The rule tree is right at every node: final answers equal sympy.diff and every step's claimed
equality holds numerically at random points (a locally wrong step fails even if the end is right).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

sp = pytest.importorskip("sympy")
hypothesis = pytest.importorskip("hypothesis")

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from chainrule.symbolic import diff_program, diff_steps, explain, parse, parse_program  # noqa: E402
from chainrule.symbolic import rules as R  # noqa: E402
from chainrule.symbolic.functions import lambdify, relu, sigmoid, softplus  # noqa: E402

x, y = sp.symbols("x y", real=True)
_RNG = np.random.default_rng(4)
# rows are points, columns symbols: half inside (0, 1) for asin/acos/sqrt(1 - x²), half beyond
POINTS = np.vstack([_RNG.uniform(0.15, 0.85, (4, 8)), _RNG.uniform(1.1, 1.9, (4, 8))])


def numerically_equal(a: sp.Expr, b: sp.Expr) -> bool:
    """a == b at eight random points where both are finite: real points first, the same points
    as complex numbers when no real one is (e.g. (-x)^g), SymPy's own check as a last resort."""
    symbols = sorted(a.free_symbols | b.free_symbols, key=lambda s: s.name)
    assert len(symbols) <= POINTS.shape[1]
    fa, fb = _numeric(symbols, a), _numeric(symbols, b)
    for dtype in (float, complex):
        verdict = _compare(fa, fb, POINTS[:, : len(symbols)].astype(dtype))
        if verdict is not None:
            return verdict
    return (a - b).equals(0) is True


def _numeric(symbols, expr):
    """lambdify, or SymPy's own evaluation where its NumPy printer fails: it simplifies the
    Piecewise conditions of relu and raises on log(relu(x)) > 0 (zoo at x = 0), 1/relu(x) or
    relu(sin(x) + asin(2)) (a complex constant)."""
    try:
        return lambdify(symbols, expr)
    except (TypeError, KeyError, ValueError):
        return lambda *row: complex(expr.subs(dict(zip(symbols, row))).evalf())


def _compare(fa, fb, points: np.ndarray) -> bool | None:
    """True/False when some point has finite values on both sides, None when none has."""
    compared = 0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex input to real-only NumPy functions
        for row in points:
            try:
                va, vb = complex(fa(*row)), complex(fb(*row))
            except (TypeError, ValueError, ZeroDivisionError):
                continue
            if np.isfinite(va) and np.isfinite(vb) and abs(va) < 1e12:
                compared += 1
                if not np.isclose(va, vb, rtol=1e-7, atol=1e-9):
                    return False
    return True if compared else None


def check_every_step(rule: R.Rule) -> int:
    """Each node's eval() equals sympy.diff of its own expression; chain links compose back."""
    checked = 0
    for node in rule.walk():
        if isinstance(node, R.MultivariableChainRule):
            claim, truth = node.inlined(node.eval()), sp.diff(node.inlined(), node.wrt)
        else:
            claim, truth = node.eval(), sp.diff(node.expr, node.wrt)
        assert numerically_equal(claim, truth), f"{type(node).__name__}: d/d{node.wrt} {node.expr}"
        if isinstance(node, R.ChainRule):
            check_links(node)
        checked += 1
    return checked


def check_links(chain: R.ChainRule) -> None:
    """'let u = g(x), so y = f(u)': substituting every link back gives the expression again."""
    composed = chain.links[-1].definition
    for link in reversed(chain.links):
        composed = link.outer.expr.xreplace({link.variable: composed})
    # xreplace re-evaluates, so an unevaluated |(|x|)| comes back as |x|: equal as functions
    assert composed == chain.expr or numerically_equal(composed, chain.expr)


# -- the generated corpus ---------------------------------------------------------------------

UNARY = [sp.sin, sp.cos, sp.tan, sp.exp, sp.log, sp.sqrt, sp.atan, sp.asin, sp.acos, sp.sinh]
UNARY += [sp.cosh, sp.tanh, sp.sec, sp.csc, sp.cot, sp.asinh, sp.Abs, sigmoid, softplus, relu]
UNARY += [sp.erf, lambda e: sp.log(e, 2), lambda e: e**2, lambda e: e ** sp.Rational(-1, 2)]
UNARY += [lambda e: 1 / e, lambda e: 3**e, lambda e: e**x, lambda e: -e]
BINARY = [sp.Add, sp.Mul, lambda a, b: a / b, lambda a, b: a - b, lambda a, b: a**b]

leaves = st.sampled_from([x, x, x, y, sp.Integer(2), sp.Rational(1, 3), x + 1, 2 * x])


def extend(children):
    return st.one_of(
        st.builds(lambda f, e: f(e), st.sampled_from(UNARY), children),
        st.builds(lambda f, a, b: f(a, b), st.sampled_from(BINARY), children, children),
    )


def nested(depth: int):
    strategy = leaves
    for _ in range(depth):
        strategy = extend(strategy)
    return strategy


def usable(e: sp.Expr) -> bool:
    """Depends on x, is finite, has no 0^g (whose derivative is SymPy's zoo·log(0)) and no
    complex constant such as asin(2) (relu and |u| are defined on reals only)."""
    bad = (sp.zoo, sp.nan, sp.oo, -sp.oo)
    nodes = list(sp.preorder_traversal(e))
    zero_base = any(p.is_Pow and p.base.is_zero for p in nodes)
    complex_constant = any(n.is_number and n.is_real is False for n in nodes)
    return e.has(x) and not e.has(*bad) and not zero_base and not complex_constant


expressions = st.integers(1, 4).flatmap(nested).filter(usable)


@settings(max_examples=320, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_generated_expressions_every_step_and_the_answer(expr):
    rule = diff_steps(expr, x)
    assert numerically_equal(rule.eval(), sp.diff(expr, x))
    assert check_every_step(rule) >= 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(expressions)
def test_explain_result_equals_sympy_diff(expr):
    d = explain(expr, wrt=x)
    assert numerically_equal(d.result, sp.diff(expr, x))


# -- every rule is reached -----------------------------------------------------------------------

RULE_EXAMPLES = {
    R.ConstantRule: "y^2",
    R.IdentityRule: "x",
    R.ConstantMultipleRule: "3 sin x",
    R.SumRule: "x^2 + 3x + 5",
    R.PowerRule: "x^(-3/2)",
    R.ExpRule: "2^x",
    R.LogRule: "log(x, 10)",
    R.TrigRule: "sec x",
    R.InverseTrigRule: "acos x",
    R.HyperbolicRule: "tanh x",
    R.SigmoidRule: "σ(x)",
    R.SoftplusRule: "softplus(x)",
    R.ReluRule: "relu(x)",
    R.AbsRule: "|x|",
    R.ProductRule: "x^2 e^x",
    R.QuotientRule: "x^2/(x+1)",
    R.ChainRule: "(x^2+1)^3",
    R.LogDiffRule: "x^x",
    R.NamedFunctionRule: "erf(x)",
    R.ExtremumRule: "max(1, x^2, sin x)",
    R.UnknownRule: sp.sinc(x),  # no function the parser reads lacks a rule: SymPy input
}


@pytest.mark.parametrize("rule", list(RULE_EXAMPLES), ids=lambda r: r.__name__)
def test_each_rule_is_used_and_right(rule):
    example = RULE_EXAMPLES[rule]
    expr = parse(example) if isinstance(example, str) else example
    tree = diff_steps(expr, x)
    assert rule in {type(node) for node in tree.walk()}
    check_every_step(tree)


def test_multivariable_rule_every_step():
    p = parse_program("z = (u+v)^2; u = x*y; v = x + y")
    tree = diff_program(p, x)
    assert isinstance(tree, R.MultivariableChainRule)
    assert [t.via.name for t in tree.terms] == ["u", "v"]
    assert check_every_step(tree) >= 6


def test_direct_dependence_is_its_own_term():
    p = parse_program("z = u*x + u^2; u = sin(x)")
    tree = diff_program(p, x)
    assert tree.direct is not None
    check_every_step(tree)


def test_nested_chains_flatten_to_one_product():
    tree = diff_steps(parse("sin((x^2+1)^3)"), x)
    assert isinstance(tree, R.ChainRule)
    assert [ln.variable.name for ln in tree.links] == ["u", "v"]
    assert [ln.definition for ln in tree.links] == [(x**2 + 1) ** 3, x**2 + 1]
    assert isinstance(tree.inner, R.SumRule)


def test_fresh_names_avoid_the_expression():
    tree = diff_steps(parse("(u + x^2)^2"), x)
    assert tree.links[0].variable.name != "u"


def test_unknown_rule_gives_sympys_answer():
    tree = diff_steps(sp.sinc(x**2), x)
    unknown = [n for n in tree.walk() if isinstance(n, R.UnknownRule)]
    assert unknown and unknown[0].eval() == sp.diff(sp.sinc(x**2), x)


def test_relu_kink_convention_is_zero():
    tree = diff_steps(relu(x), x)
    assert tree.eval().subs(x, 0) == 0


def test_sympy_input_with_plain_symbols_is_explained_over_the_reals() -> None:
    """sp.Symbol('x') carries no assumptions; the explanation must not fall back to SymPy's
    complex formula for |x|' (re(x), im(x), Derivative(re(x), x))."""
    from chainrule.symbolic import explain

    x = sp.Symbol("x")
    d = explain(sp.exp(x) * sp.Abs(x), wrt=x)
    assert "re(" not in d.to_text() and "Derivative" not in d.to_text()
    assert d.result.free_symbols == {x}  # given back in the caller's own symbol
    xr = sp.Symbol("x", real=True)
    assert sp.simplify(d.result.subs(x, xr) - sp.diff(sp.exp(xr) * sp.Abs(xr), xr)) == 0
