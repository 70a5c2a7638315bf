"""The op table drives the parser, the explainer, the trace and the graph: each test runs over
every entry (and every name of every entry), so a new entry is tested without a new test."""

from __future__ import annotations

import contextlib
import math
import warnings

import numpy as np
import pytest
from hypothesis import given, reject, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule.ops import NAMES, NUMPY_NS, OPS, OpDef

sp = pytest.importorskip("sympy")

from chainrule.symbolic import ParseError, explain, parse  # noqa: E402
from chainrule.symbolic import rules as R  # noqa: E402
from chainrule.symbolic.functions import F, lambdify, sympy_function  # noqa: E402
from chainrule.viz import trace  # noqa: E402
from chainrule.viz.formulas import evaluate, formula, is_vjp  # noqa: E402
from chainrule.viz.model import build, expression  # noqa: E402

BUILTIN = [op for op in OPS.values() if not op.user]
NAMED = sorted((n, op) for n, op in NAMES.items() if not op.user)
ONE_ARG = [op for op in dict.fromkeys(op for _, op in NAMED) if op.arity == 1]
X = sp.Symbol("x", real=True)


def _numpy(expr, symbols):
    """A NumPy function of a SymPy expression that knows the table's named functions and erf."""
    return sp.lambdify(symbols, expr, modules=[dict(_numpy_names()), "numpy"])


def _numpy_names():
    from chainrule.symbolic.functions import NUMPY_FUNCTIONS

    return {**NUMPY_FUNCTIONS, "erf": OPS["erf"].forward, "erfc": OPS["erfc"].forward}


def _points(op: OpDef, rng: np.random.Generator, n: int = 5) -> np.ndarray:
    return op.domain.sample(rng, (n,), np.float64)


def _close(a, b) -> None:
    np.testing.assert_allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-9, atol=1e-12)


# --------------------------------------------------------------------------- the parser


@pytest.mark.parametrize(("name", "op"), NAMED, ids=[n for n, _ in NAMED])
def test_every_name_parses_to_the_twin(name: str, op: OpDef, rng) -> None:
    """`name(x, ...)` is the entry's function: equal to its SymPy twin wherever it is defined."""
    n = op.nargs[0] if op.nargs else op.arity
    symbols = sp.symbols(f"x0:{n}", real=True)
    expr = parse(f"{name}({', '.join(map(str, symbols))})")
    twin = op.sym(sp, *symbols)
    values = [_points(op, rng) for _ in symbols]
    _close(_numpy(expr, symbols)(*values), _numpy(twin, symbols)(*values))


def test_log_forms() -> None:
    """ln, log, log(x, b), log_b(x), log10, lg and log2 are the logarithms they look like."""
    x = X
    assert parse("ln(x)") == parse("log(x)") == sp.log(x)
    assert parse("log(x, 3)") == parse("log_3(x)") == sp.log(x) / sp.log(3)
    assert parse("log10(x)") == parse("lg(x)") == parse("log_10 x") == sp.log(x) / sp.log(10)
    assert parse("log2(x)") == parse("log_2(x)") == sp.log(x) / sp.log(2)
    assert parse("log_e(x)") == sp.log(x)
    b = sp.Symbol("b", real=True)
    assert parse("log_b(x)") == sp.log(x) / sp.log(b)


@pytest.mark.parametrize(
    ("text", "suggestion"),
    [("foo(x)", "floor"), ("Sin(x)", "sin"), ("gelux(x)", "gelu"), ("factorial(x)", None)],
)
def test_an_unknown_name_before_a_parenthesis_is_named(text: str, suggestion: str | None):
    with pytest.raises(ParseError) as info:
        parse(text)
    err = info.value
    word = text.split("(")[0]
    assert err.message.startswith(f"unknown function {word!r}")
    assert "docs/ops.md" in err.message and "\n" not in err.message
    assert err.position == 0
    if suggestion:
        assert f"did you mean {suggestion}" in err.message
    else:
        assert "did you mean" not in err.message


@pytest.mark.parametrize("text", ["x(x + 1)", "w1(x + 1)", "xsin(x)", "2x(x - 1)"])
def test_products_before_a_parenthesis_stay_products(text: str) -> None:
    assert parse(text).has(X)


@pytest.mark.parametrize(
    ("text", "wrt", "expected"),
    [
        ("d/dx x^2", "x", 2 * X),
        ("d/dx(x^3 + x)", "x", 3 * X**2 + 1),
        ("d/dt sin(t)", "t", sp.cos(sp.Symbol("t", real=True))),
        ("diff(x*y, y)", "y", X),
        ("diff(log(x, 2), x)", "x", 1 / (X * sp.log(2))),
    ],
)
def test_derivative_requests_name_the_variable(text: str, wrt: str, expected) -> None:
    d = explain(text)
    assert d.wrt.name == wrt
    assert sp.simplify(d.result - expected) == 0


def test_an_explicit_wrt_wins_over_the_text() -> None:
    assert explain("d/dx x*y", wrt="y").result == X


def test_the_output_by_itself_is_one() -> None:
    """∂y/∂y = 1, and ∂z/∂z = 1 in seed 001's program (not 0)."""
    d = explain("y = x^2", wrt="y")
    assert d.result == 1
    assert "dy/dy = 1" in d.to_text()
    assert explain("z = (u+v)^2; u = x*y; v = x + y", wrt="z").result == 1


# --------------------------------------------------------------------------- the explainer


@pytest.mark.parametrize("op", ONE_ARG, ids=lambda op: op.name)
def test_explain_names_a_rule_and_equals_sympy_diff(op: OpDef, rng) -> None:
    """`name(x)` and `name(x^2 + 1)` (inside a chain rule) are explained by named rules only,
    and the result equals SymPy's derivative of the twin (the table's dsym for a step)."""
    for inner in (X, X**2 / 4 + sp.Rational(1, 2)):
        d = explain(f"{op.names[0]}({inner})")
        kinds = {type(node) for node in d.steps.walk()}
        assert R.UnknownRule not in kinds, d.to_text()
        twin = op.sym(sp, inner)
        expected = sp.diff(twin, X)
        if expected.has(sp.Derivative, sp.DiracDelta):  # floor, ceil, sign: 0 off the jumps
            expected = sp.diff(inner, X) * op.dsym(sp, F, inner)
        xs = [v for v in _points(op, rng, 8) if _inside(op, float(inner.subs(X, v)))]
        _close(_numpy(d.result, [X])(np.array(xs)), _numpy(expected, [X])(np.array(xs)))


def _inside(op: OpDef, v: float) -> bool:
    """Whether v is in the op's domain (the chain's inner value may leave it)."""
    return op.domain.lo <= v <= op.domain.hi and abs(v) >= op.domain.gap


# written out (log10 = ln/ln 10), or with a rule of its own (exp, ln): not a function rule
FUNCTION_RULED = [op for op in ONE_ARG if not op.expand and op.name not in ("exp", "log")]


@pytest.mark.parametrize("op", FUNCTION_RULED, ids=lambda op: op.name)
def test_the_rule_of_a_named_function_is_the_table_s(op: OpDef) -> None:
    """An entry with a SymPy function of its own is explained by the rule its `rule` names."""
    row = R.ELEMENTARY[sympy_function(op)]
    assert row.rule.__name__ == op.rule or row.rule is R.NamedFunctionRule
    text = explain(f"{op.names[0]}(x)").to_text()
    title = op.rule if row.rule is R.NamedFunctionRule else None
    if title:
        assert f"{title} rule" in text
    if op.kink and row.rule is R.NamedFunctionRule:
        assert op.kink in text


@pytest.mark.parametrize("name", ["gelu", "silu", "swish", "leaky_relu", "elu", "softplus"])
def test_every_engine_activation_is_explained_with_a_named_rule(name: str) -> None:
    out = explain(f"{name}(2x)").to_text()
    assert "No named rule" not in out and "Chain rule" in out


MANY_ARGS = [(n, op) for n, op in NAMED if op.arity > 1]


@pytest.mark.parametrize(("name", "op"), MANY_ARGS, ids=[n for n, _ in MANY_ARGS])
def test_functions_of_several_arguments_have_a_named_rule(name: str, op: OpDef) -> None:
    """max/min of any number of arguments: the max/min rule, equal to SymPy's derivative."""
    args = [X, X**2 / 2, sp.sin(X)][: max(op.nargs or (op.arity,))]
    d = explain(f"{name}({', '.join(map(str, args))})")
    assert R.UnknownRule not in {type(node) for node in d.steps.walk()}
    xs = np.array([-1.3, -0.4, 0.3, 0.9, 1.7, 2.6])
    expected = sp.diff(op.sym(sp, *args), X)
    _close(_numpy(d.result, [X])(xs), _numpy(expected, [X])(xs))


def test_piecewise_derivatives_read_case_by_case() -> None:
    out = explain("leaky_relu(x)").to_text()
    assert "dy/dx = (1 if x > 0; 1/100 otherwise)" in out
    assert "left slope 0.01" in out  # the kink, from the table


# --------------------------------------------------------------------------- the trace


TRACED = [(op, i) for op in BUILTIN if op.primitive for i in range(len(op.local))]


@pytest.mark.parametrize(("op", "argnum"), TRACED, ids=[f"{op.name}-{i}" for op, i in TRACED])
def test_trace_formula_equals_the_vjp(op: OpDef, argnum: int, rng) -> None:
    """Each local-derivative formula, evaluated on the inputs, is the vjp with g = 1; a vjp
    formula names the upstream gradient g."""
    labels = {n: n for n in (*op.inputs, "out")}
    text = formula(op, argnum, labels, {})
    if op.vjps[0 if op.variadic else argnum] is None:
        assert text == ""
        return
    if is_vjp(text) or op.cases is None:
        assert is_vjp(text), f"{op.name}: {text!r}"
        return
    for inputs, params in op.cases(rng, np.float64, op):
        for k in range(inputs[0].size if inputs[0].ndim else 1):
            xs = [np.asarray(a).reshape(-1)[k % max(np.size(a), 1)] for a in inputs]
            out = op.forward(*xs, **params)
            vjp = op.vjps[argnum](np.ones_like(out), out, *xs, NUMPY_NS, **params)
            values = {**dict(zip(op.inputs, map(float, xs))), "out": float(out)}
            f = formula(op, argnum, labels, params)
            assert math.prod(evaluate(f, values)) == pytest.approx(float(vjp), rel=1e-9)


def test_every_elementwise_op_traces_with_its_formula() -> None:
    """A trace of op(x) names the formula with x's label, never a bare dy/dx."""
    for op in BUILTIN:
        if not (op.primitive and op.arity == 1 and op.sym is not None and op.cases):
            continue
        lo, hi = op.domain.lo, op.domain.hi
        x = cr.tensor((lo + hi) / 2 + 0.3, dtype=np.float64, requires_grad=True, name="x")
        y = op(x)
        y.name = "y"
        line = trace(y).to_text().splitlines()[-1]
        assert "* dy/dx = " not in line.split(" = ", 2)[-1], f"{op.name}: {line}"


def test_cross_entropy_trace_shows_the_mean() -> None:
    """The fused mean cross-entropy's formula divides by N, as its numbers do."""
    from chainrule.composite import softmax_cross_entropy

    z = cr.tensor(np.zeros((4, 3)), requires_grad=True, name="z")
    loss = softmax_cross_entropy(z, [0, 1, 2, 0], mean=True)
    loss.name = "L"
    text = trace(loss).to_text()
    assert "(softmax(z) - onehot(y)) / 4" in text


@pytest.mark.parametrize(
    ("labels", "error", "message"),
    [
        ([-1, 0], ValueError, "label -1 is out of range for 3 classes"),
        ([0, 3], ValueError, "label 3 is out of range for 3 classes"),
        ([0.0, 1.0], TypeError, "labels must be integers"),
    ],
)
def test_the_fused_cross_entropy_refuses_labels_it_would_misread(labels, error, message) -> None:
    """A negative label indexes from the end: without the check it picked another class's
    logit and gave a finite, wrong loss."""
    from chainrule.composite import softmax_cross_entropy

    z = cr.tensor(np.zeros((2, 3)), requires_grad=True)
    with pytest.raises(error, match=message):
        softmax_cross_entropy(z, labels, mean=True)


# --------------------------------------------------------------------------- the graph


@pytest.mark.parametrize("op", [op for op in BUILTIN if op.primitive], ids=lambda op: op.name)
def test_graph_label_comes_from_the_table(op: OpDef, rng) -> None:
    inputs, params = op.cases(rng, np.float64, op)[0]
    names = iter("abcdefgh")
    xs = [
        cr.tensor(a, requires_grad=a.dtype.kind == "f", name=next(names))
        if isinstance(a, np.ndarray) and a.dtype.kind == "f"
        else a
        for a in inputs
    ]
    out = op(*xs, **params)
    model = build(out, max_label=1000)
    root = model.nodes[model.root]
    args = [model.nodes[i] for i in root.inputs]
    label, _ = expression(op.name, args)
    assert root.label == label
    if op.infix is not None:
        assert root.label == op.infix[0].format(*(a.label for a in args))
    else:
        assert root.label.startswith(f"{op.name}(")


# --------------------------------------------------------------------------- round trip

LEAVES = st.sampled_from([("x", X), ("y", sp.Symbol("y", real=True)), ("2", sp.Integer(2))])
CALLS = sorted(NAMED, key=lambda item: item[0])


@st.composite
def _call(draw, children):
    name, op = draw(st.sampled_from(CALLS))
    n = draw(st.sampled_from(op.nargs or (op.arity,)))
    args = [draw(children) for _ in range(n)]
    text = f"{name}({', '.join(t for t, _ in args)})"
    try:
        return text, sympy_function(op)(*(e for _, e in args))
    except ValueError:  # SymPy's own Max and Min refuse a non-real argument (max(atanh(2), x))
        reject()


@st.composite
def _infix(draw, children):
    (a, ea), (b, eb) = draw(children), draw(children)
    sign = draw(st.sampled_from(["+", "-", "*"]))
    return f"({a}) {sign} ({b})", {"+": ea + eb, "-": ea - eb, "*": ea * eb}[sign]


EXPRESSIONS = st.recursive(
    LEAVES, lambda children: st.one_of(_call(children), _infix(children)), max_leaves=5
)


@settings(max_examples=60, deadline=None)
@given(EXPRESSIONS)
def test_round_trip_text_parse_same_expression(pair) -> None:
    """Random trees over every name of the table, written as text, parse back to the same
    SymPy expression."""
    text, expected = pair
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            got = parse(text)
        except ParseError as err:
            # the parser refuses a constant that is not a real number (atanh(2), log(0)): the
            # tree must hold one, or SymPy folded it away ((x - x)*atanh(2) is 0) and the one
            # the message names is
            constants = [e for e in sp.preorder_traversal(expected) if not e.free_symbols]
            with contextlib.suppress(sp.SympifyError):  # log10's name prints as <lambda>
                constants.append(sp.sympify(err.message.split(" is ")[0]))
            assert any(e.is_extended_real is False or e.has(sp.zoo, sp.nan) for e in constants)
            return
        assert got == expected, text


# --------------------------------------------------------------------------- custom ops


def test_a_user_op_works_everywhere() -> None:
    """A user's op: gradients (orders 1 and 2), compile, trace, graph, parser and explain."""
    square_plus = cr.defop(
        "sqplus_test_op",
        lambda x: x * x + x,
        lambda g, out, x, xp: g * (2 * x + 1),
        sym=lambda sp, x: x**2 + x,
        names=("sqplus",),
        local=("2*x + 1",),
        rule="Square-plus",
        doc="d (x^2 + x) = (2x + 1) dx",
    )
    x = cr.tensor(np.array([0.5, -1.5]), requires_grad=True)
    assert cr.gradcheck(square_plus, [x], order=2)
    f = cr.compile(lambda t: square_plus(t).sum())
    assert [f(x).item() for _ in range(3)] == [pytest.approx(1.5)] * 3
    named = cr.tensor(3.0, dtype=np.float64, requires_grad=True, name="x")
    y = square_plus(named)
    y.name = "y"
    assert "2*x + 1" in trace(y).to_text()
    assert cr.viz.graph(y).model.nodes[-1].label == "y"
    d = explain("sqplus(sin x)")
    assert sp.simplify(d.result - sp.cos(X) * (2 * sp.sin(X) + 1)) == 0
    assert "Square-plus rule" in d.to_text()
    assert str(parse("sqplus(x)")) == "sqplus(x)"
    with pytest.raises(ValueError, match="already defined"):
        cr.defop("sqplus_test_op", np.sin, None, sym=lambda sp, x: sp.sin(x))
    from chainrule.docs import ops_markdown

    assert "sqplus" not in ops_markdown()


def test_user_op_named_function_is_explained_with_its_rule() -> None:
    """A twin that is not one SymPy function becomes a named function with the op's rule."""
    cr.defop(
        "softsign_test_op",
        lambda x: x / (1 + np.abs(x)),
        lambda g, out, x, xp: g / ((1 + abs(x)) * (1 + abs(x))),
        sym=lambda sp, x: x / (1 + sp.Abs(x)),
        names=("softsign_t",),
        rule="Softsign",
    )
    d = explain("softsign_t(3x)")
    assert "Softsign rule" in d.to_text()
    v = d.evaluate(x=0.2)
    assert v == pytest.approx(3 / (1 + 0.6) ** 2)
    assert lambdify([X], parse("softsign_t(x)"))(2.0) == pytest.approx(2 / 3)


# --------------------------------------------------------------------------- reprs


def test_reprs_are_readable() -> None:
    d = explain("(x^2+1)^3")
    assert repr(d) == "<Derivation dy/dx = 6x(x² + 1)²>"
    assert repr(explain("z = (u+v)^2; u = x*y; v = x + y", lang="zh")).startswith("<Derivation")
    x = cr.tensor(2.0, requires_grad=True, name="x")
    y = x * x
    y.name = "y"
    t = trace(y)
    assert repr(t) == "<Trace of y: 2 nodes, dy/dx = 4.000>"
    assert str(t) == t.to_text()
    g = cr.viz.graph(y)
    assert repr(g) == "<Graph of y: 2 nodes, 2 edges>"
    assert "0x" not in repr(d) + repr(t) + repr(g)
