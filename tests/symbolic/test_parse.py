"""The safe parser: what typed math means, where malformed input is reported, what is refused."""

from __future__ import annotations

import pytest

sp = pytest.importorskip("sympy")

from chainrule.symbolic import ParseError, parse, parse_program  # noqa: E402
from chainrule.symbolic.functions import relu, sigmoid, softplus  # noqa: E402

x, y, z, a, b, t = sp.symbols("x y z a b t", real=True)
w1, b1, w2, b2 = sp.symbols("w1 b1 w2 b2", real=True)

GOOD = [
    ("(3x+2)^2", (3 * x + 2) ** 2),
    ("(x^2+1)**3", (x**2 + 1) ** 3),
    ("2x", 2 * x),
    ("3(x+1)", 3 * (x + 1)),
    ("x y", x * y),
    ("xy", x * y),
    ("(x+1)(x-1)", (x + 1) * (x - 1)),
    ("-x^2", -(x**2)),
    ("2^3^2", sp.Integer(2) ** 9),
    ("x^-1", 1 / x),
    ("1/2x", x / 2),
    ("0.5*x", x / 2),
    ("1e-3 x", x / 1000),
    ("sin x^2", sp.sin(x**2)),
    ("sin 2x", sp.sin(2 * x)),
    ("sin x cos x", sp.sin(x) * sp.cos(x)),
    ("sin^2 x + cos²x", sp.sin(x) ** 2 + sp.cos(x) ** 2),
    ("sin(x)^2", sp.sin(x) ** 2),
    ("xsinx", x * sp.sin(x)),
    ("e^x", sp.exp(x)),
    ("e^-x", sp.exp(-x)),
    ("exp(x^2)", sp.exp(x**2)),
    ("ln x", sp.log(x)),
    ("log(x)", sp.log(x)),
    ("log(x, 2)", sp.log(x) / sp.log(2)),
    ("pi x + π", sp.pi * x + sp.pi),
    ("√(1+x²)", sp.sqrt(1 + x**2)),
    ("√2x", sp.sqrt(2) * x),
    ("sqrt(x)", sp.sqrt(x)),
    ("x³ + x⁻¹", x**3 + 1 / x),
    ("|x - 1|", sp.Abs(x - 1)),
    ("abs(x)", sp.Abs(x)),
    ("σ(z)", sigmoid(z)),
    ("sigmoid(z)", sigmoid(z)),
    ("relu(x) + ReLU(x) + softplus(x)", 2 * relu(x) + softplus(x)),
    ("tanh(x) + arctan(x) + asin(x)", sp.tanh(x) + sp.atan(x) + sp.asin(x)),
    ("a·b×t÷x − 1", a * b * t / x - 1),
    ("[x + 1]^2", (x + 1) ** 2),
    ("w1*x+b1", w1 * x + b1),
    ("theta^2", sp.Symbol("theta", real=True) ** 2),
    ("max(0, x)", sp.Max(0, x)),
    ("x^x", x**x),
    # superscripts as the explainer prints them: the exponent they spell, never a product
    ("eˣ", sp.exp(x)),
    ("e⁻ˣ/(1 + e⁻ˣ)²", sp.exp(-x) / (1 + sp.exp(-x)) ** 2),
    ("e¹⁻³ˣ", sp.exp(1 - 3 * x)),
    ("nxⁿ⁻¹", sp.Symbol("n", real=True) * x ** (sp.Symbol("n", real=True) - 1)),
    ("e⁽ˣ⁺¹⁾", sp.exp(x + 1)),
    ("2ˣ + xʸ", 2**x + x**y),
    ("xᵃ", x**a),
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[g[0] for g in GOOD])
def test_reads_typed_math(text, expected):
    assert parse(text) == expected


def test_printed_answers_read_back_as_themselves():
    """What the explainer prints (superscript exponents included) parses to the expression it
    printed: a learner pasting an answer into "check my answer" must get that function."""
    from chainrule.symbolic import explain
    from chainrule.symbolic.mathprint import TextMath

    for text in ["1/(1+e^(-x))", "x^n", "e^(1-3x) sin(x)", "(x^2+1)^3", "x e^(-x^2)", "2^x"]:
        d = explain(text)
        printed = TextMath().expr(d.result)
        assert sp.simplify(parse(printed) - d.result) == 0, printed


def test_symbols_are_real():
    assert all(s.is_real for s in parse("x y + w1").free_symbols)


def test_declared_names_are_single_symbols():
    assert parse("xy + 1", names={"xy"}) == sp.Symbol("xy", real=True) + 1


BAD = [
    ("x⁻", 1, "malformed superscript exponent '⁻'"),
    ("eˣ⁺", 1, "malformed superscript exponent 'ˣ⁺'"),
    ("x +", 3, "found end of input"),
    ("x + * 2", 4, "found '*'"),
    ("(x+1", 4, "expected ')' to close the '(' at column 1"),
    ("2x)", 2, "unexpected ')'"),
    ("sin()", 4, "found ')'"),
    ("log(x, 2, 3)", 0, "log takes 1 or 2 argument(s), got 3"),
    ("x $ 2", 2, "unexpected character '$'"),
    ("x^", 2, "found end of input"),
    ("|x", 2, "expected '|'"),
    ("", 0, "found end of input"),
    ("sin = x", 0, "cannot assign to 'sin'"),
    ("a = x; b = y", 7, "exactly one output"),
    ("a = b; b = a", 0, "exactly one output"),
    ("z = x; z = y", 7, "defined twice"),
    ("x = 1; y", 7, "name = expression"),
]


@pytest.mark.parametrize(("text", "position", "message"), BAD, ids=[b[0] for b in BAD])
def test_malformed_input_points_at_the_character(text, position, message):
    with pytest.raises(ParseError) as info:
        parse_program(text)
    err = info.value
    assert err.position == position
    assert message in str(err)
    caret_line = str(err).splitlines()[-1]
    assert caret_line.index("^") - 2 == position - (text.rfind("\n", 0, position) + 1)


def test_parse_error_is_a_value_error():
    assert issubclass(ParseError, ValueError)


MALICIOUS = [
    "__import__('os').system('x')",
    "x.__class__",
    "eval('1')",
    "lambda: 0",
    "x; import os",
    "`x`",
    "open('/etc/passwd')",
]


@pytest.mark.parametrize("text", MALICIOUS)
def test_never_evaluates_python(text, monkeypatch):
    import builtins

    def forbidden(*args, **kwargs):
        raise AssertionError("the parser must not evaluate its input")

    monkeypatch.setattr(builtins, "eval", forbidden)
    monkeypatch.setattr(builtins, "exec", forbidden)
    monkeypatch.setattr(sp, "sympify", forbidden)
    with pytest.raises(ParseError):
        parse(text)


def test_an_unknown_name_called_is_an_error_never_a_product_of_letters():
    # `eval` has no meaning here: it is an unknown function, never Python's eval nor e·v·a·l.
    with pytest.raises(ParseError, match="unknown function 'eval'") as info:
        parse("eval(x)")
    assert info.value.position == 0


def test_program_finds_the_output_and_inlines():
    p = parse_program("z = (u+v)^2; u = x*y; v = x + y")
    u, v = sp.symbols("u v", real=True)
    assert p.output == z
    assert p.expr == (u + v) ** 2
    assert list(p.definitions) == [z, u, v]
    assert p.inline() == (x * y + x + y) ** 2


def test_program_in_forward_order_with_newlines():
    text = "z1 = w1 x + b1\na1 = σ(z1)\nz2 = w2 a1 + b2\na2 = σ(z2)\nL = 1/2 (a2 - t)^2"
    p = parse_program(text)
    assert p.output.name == "L"
    assert p.inline() == (sigmoid(w2 * sigmoid(w1 * x + b1) + b2) - t) ** 2 / 2


def test_issue5_loss_reads_digit_names_as_symbols():
    p = parse_program("L = 0.5*(sigmoid(w2*sigmoid(w1*x+b1)+b2) - t)^2")
    assert {s.name for s in p.expr.free_symbols} == {"w1", "w2", "b1", "b2", "x", "t"}


def test_parse_refuses_a_program():
    with pytest.raises(ParseError, match="parse_program"):
        parse("y = x^2")
