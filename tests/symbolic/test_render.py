"""The seeds' worked derivations: final forms, golden renderings in both languages, the template
table and the renderers. Regenerate goldens with CHAINRULE_UPDATE_GOLDEN=1 and read the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

sp = pytest.importorskip("sympy")

from chainrule.symbolic import explain, parse, sigmoid  # noqa: E402
from chainrule.symbolic.render import LANGUAGES, TEMPLATES  # noqa: E402

GOLDEN = Path(__file__).parent / "golden"
x, y, z = sp.symbols("x y z", real=True)

# name -> (input, wrt, the seed's final form)
SEEDS = {
    "square_linear": ("(3x+2)^2", "x", 6 * (3 * x + 2)),
    "cube_chain": ("(x^2+1)^3", "x", 6 * x * (x**2 + 1) ** 2),
    "sqrt_chain": ("sqrt(1+x^2)", "x", x / sp.sqrt(1 + x**2)),
    "exp_chain": ("e^(x^2)", "x", 2 * x * sp.exp(x**2)),
    "product": ("x^2 e^x", "x", sp.exp(x) * (2 * x + x**2)),
    "quotient": ("x^2/(x+1)", "x", (x**2 + 2 * x) / (x + 1) ** 2),
    "sigmoid_rule": ("σ(z)", "z", sigmoid(z) * (1 - sigmoid(z))),
    "sigmoid_by_hand": ("1/(1+e^(-z))", "z", sigmoid(z) * (1 - sigmoid(z))),
    "tanh": ("tanh(x)", "x", 1 - sp.tanh(x) ** 2),
    "multivariable_x": ("z = (u+v)^2; u = x*y; v = x + y", "x", 2 * (x * y + x + y) * (y + 1)),
    "multivariable_y": ("z = (u+v)^2; u = x*y; v = x + y", "y", 2 * (x * y + x + y) * (x + 1)),
    "triple_chain": ("sin((x^2+1)^3)", "x", 6 * x * (x**2 + 1) ** 2 * sp.cos((x**2 + 1) ** 3)),
    "general_power": ("x^x", "x", x**x * (sp.log(x) + 1)),
}


@pytest.mark.parametrize("name", SEEDS)
def test_seed_final_forms(name):
    text, wrt, expected = SEEDS[name]
    result = explain(text, wrt=wrt).result
    assert sp.simplify(result - expected) == 0
    # the form too, not only the value: same factors as the seed writes them
    assert sp.factor_terms(result) == sp.factor_terms(expected) or result == expected


def test_seed_forms_are_not_expanded():
    assert explain("(x^2+1)^3").result == 6 * x * (x**2 + 1) ** 2
    assert explain("x^2 e^x").result == (x**2 + 2 * x) * sp.exp(x)
    assert explain("x^2/(x+1)").result == (x**2 + 2 * x) / (x + 1) ** 2
    seed_form = sp.Mul(2, y + 1, x * y + x + y)  # Python's 2 * (y + 1) would distribute
    assert explain("z = (u+v)^2; u = x*y; v = x + y").result == seed_form
    # seed 000: 2(3x + 2)·3 = 6(3x + 2); SymPy alone would distribute to 18x + 12
    assert explain("(3x+2)^2").result == sp.Mul(6, 3 * x + 2, evaluate=False)
    assert explain("(1-3x)^2").result == sp.Mul(-6, 1 - 3 * x, evaluate=False)
    assert explain("x^2 + 2x").result == 2 * x + 2  # no sum of the input to keep


CASES = [(name, lang) for name in SEEDS for lang in LANGUAGES]


@pytest.mark.parametrize(("name", "lang"), CASES, ids=[f"{n}-{lang}" for n, lang in CASES])
def test_golden_text(name, lang):
    text, wrt, _ = SEEDS[name]
    rendered = explain(text, wrt=wrt, lang=lang).to_text() + "\n"
    path = GOLDEN / f"{name}.{lang}.txt"
    if os.environ.get("CHAINRULE_UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8")


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
@pytest.mark.parametrize("lang", LANGUAGES)
def test_golden_markdown_and_latex(fmt, lang):
    d = explain("(x^2+1)^3", lang=lang)
    rendered = (d.to_markdown() if fmt == "markdown" else d.to_latex()) + "\n"
    path = GOLDEN / f"cube_chain.{lang}.{'md' if fmt == 'markdown' else 'tex'}"
    if os.environ.get("CHAINRULE_UPDATE_GOLDEN"):
        path.write_text(rendered, encoding="utf-8")
    assert rendered == path.read_text(encoding="utf-8")


MATH = re.compile(r"[^\u4e00-\u9fff\uff00-\uffef\u3000-\u303fA-Za-z ,.:;()（）]")


@pytest.mark.parametrize("name", SEEDS)
def test_languages_show_the_same_steps(name):
    """Same number of lines, same indentation, same math symbols on each line."""
    text, wrt, _ = SEEDS[name]
    d = explain(text, wrt=wrt)
    en, zh = d.to_text("en").splitlines(), d.to_text("zh").splitlines()
    assert len(en) == len(zh)
    for a, b in zip(en, zh):
        assert len(a) - len(a.lstrip()) == len(b) - len(b.lstrip())
        assert sorted(MATH.findall(a)) == sorted(MATH.findall(b)), (a, b)


def test_every_template_has_both_languages_with_the_same_placeholders():
    keys = {key for key, _ in TEMPLATES}
    for key in keys:
        fields = [set(re.findall(r"{(\w+)}", TEMPLATES[key, lang])) for lang in LANGUAGES]
        assert fields[0] == fields[1], key


def test_markdown_and_latex_wrap_math():
    d = explain("(x^2+1)^3")
    assert "$\\frac{dy}{dx} = 6 x \\left(x^{2} + 1\\right)^{2}$" in d.to_markdown()
    assert d._repr_latex_().startswith("$$\\begin{array}{l}")
    assert "\\textbf{Chain rule}" in d.to_latex()
    assert "\\textbf{链式法则}" in d.to_latex("zh")


def test_chain_rule_names_the_substitution():
    out = explain("(x^2+1)^3").to_text()
    assert "let y = u³, u = x² + 1" in out
    assert "dy/dx = dy/du·du/dx = 3(x² + 1)²·2x = 6x(x² + 1)²" in out


def test_unknown_part_is_named_not_invented():
    x = sp.Symbol("x")
    out = explain(x * sp.sinc(x)).to_text()
    assert "No named rule for sinc(x); SymPy's derivative" in out


def test_sympy_expression_input_and_partial_derivatives():
    a, b = sp.symbols("a b")
    d = explain(a**2 * b, wrt=a)
    assert d.result == 2 * a * b
    assert "∂" in d.to_text()
    assert explain("x^2 y + sin(x y)", wrt="y").result == x**2 + x * sp.cos(x * y)


def test_evaluate_and_errors():
    assert explain("sqrt(1+x^2)").evaluate(x=0) == 0.0
    with pytest.raises(ValueError, match="no value for x"):
        explain("x^2").evaluate()
    with pytest.raises(ValueError, match="lang"):
        explain("x", lang="fr")


def test_log_base_and_exponential_base_rules_are_named():
    out = explain("log(x, 2) + 2^x").to_text()
    assert "Logarithm rule" in out and "Exponential rule" in out
    assert parse("log(x, 2)") == sp.log(x) / sp.log(2)


_P = lambda b, e: sp.Pow(b, e, evaluate=False)  # a power SymPy would not combine
# nested powers: a superscript on a superscript is parenthesised (x²² would read as x^22)
NESTED_POWERS = {
    "pow_of_pow": (_P(_P(x, 2), 2), "(x²)²", r"\left(x^{2}\right)^{2}"),
    "exp_of_pow_of_pow": (sp.exp(-_P(_P(x, 2), 2)), "e^(−(x²)²)", r"e^{- \left(x^{2}\right)^{2}}"),
    "symbolic_pow_of_pow": ((x**y) ** y, "(xʸ)ʸ", r"\left(x^{y}\right)^{y}"),
    "pow_of_exp": (_P(sp.exp(x), 2), "(eˣ)²", r"\left(e^{x}\right)^{2}"),
    "pow_of_function_power": (_P(sp.sin(x) ** 2, 2), "(sin²(x))²", None),
    "tower": (x ** (x**2), "x^(x²)", "x^{x^{2}}"),
    "simplified": (sp.exp(-((x**2) ** 2)), "e^(−x⁴)", "e^{- x^{4}}"),
}


@pytest.mark.parametrize("name", NESTED_POWERS)
def test_nested_powers_print_unambiguously(name):
    from chainrule.symbolic.mathprint import LatexMath, TextMath

    e, text, latex = NESTED_POWERS[name]
    assert TextMath().expr(e) == text
    if latex is not None:
        assert LatexMath().expr(e) == latex


# typed -> (shown in the derivation, never shown): SymPy writes (x²)² as x⁴ itself
NESTED_TYPED = {
    "exp(-(x^2)^2)": ("e^(−x⁴)", "²²"),
    "exp(-(x^y)^y)": ("e^(−(xʸ)ʸ)", "xʸʸ"),
    "(x^y)^y": ("(xʸ)ʸ⁻¹", "xʸʸ"),
}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("typed", NESTED_TYPED)
def test_derivations_with_nested_powers_never_stack_superscripts(typed, lang):
    out = explain(typed, wrt="x", lang=lang).to_text()
    shown, never = NESTED_TYPED[typed]
    assert shown in out and never not in out, out
