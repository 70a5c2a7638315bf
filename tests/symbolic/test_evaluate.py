"""to_engine: chainrule's autodiff agrees with sympy.diff on every node type the explainer knows."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")
cr = pytest.importorskip("chainrule")

from chainrule.symbolic import parse, parse_program  # noqa: E402
from chainrule.symbolic.evaluate import program_to_engine, to_engine, tree_to_engine  # noqa: E402

EXPRESSIONS = [
    "(x^2+1)^3", "sqrt(1+x^2)", "e^(x^2) + 2^x", "x^2/(x+1)", "x^x", "log(x, 2) + ln(x)",
    "sin x + cos x + tan x + sec x + csc x + cot x", "asin(x/2) + acos(x/2) + atan x + acot x",
    "sinh x + cosh x + tanh x + sech x + csch x + coth x", "asinh x + acosh(x+1) + atanh(x/2)",
    "σ(x) + relu(x - 1) + softplus(x) + |x - 2|", "erf(x) + max(x, 1) + min(x, 2)",
]  # fmt: skip


def _from_tree(text, env):
    return tree_to_engine(parse_program(text).tree, env)


def _from_sympy(text, env):
    return to_engine(parse(text), env)


@pytest.mark.parametrize("evaluate", [_from_sympy, _from_tree], ids=["sympy", "tree"])
@pytest.mark.parametrize("text", EXPRESSIONS)
def test_engine_gradient_matches_sympy(text, evaluate):
    expr = parse(text)
    (x,) = expr.free_symbols
    for value in (0.7, 1.3):
        xt = cr.tensor(np.float64(value), dtype=np.float64, requires_grad=True)
        out = evaluate(text, {"x": xt})
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
    with pytest.raises(NotImplementedError, match="gamma"):
        to_engine(sp.gamma(sp.Symbol("x")), {"x": cr.tensor(1.0)})


def _graph(t):
    """Every tensor behind t, and the plain numbers ops were given (the 2 in x**2)."""
    seen, stack, out = set(), [t], []
    while stack:
        u = stack.pop()
        if id(u) in seen:
            continue
        seen.add(id(u))
        out.append(u)
        stack.extend(u.parents if isinstance(u, cr.Tensor) and u.op is not None else ())
    return out


def _ops(t):
    return sorted(u.op.name for u in _graph(t) if isinstance(u, cr.Tensor) and u.op is not None)


def _constants(t):
    """Every constant operand: tensors without grad and plain numbers."""
    nodes = _graph(t)
    plain = [float(u) for u in nodes if not isinstance(u, cr.Tensor)]
    fixed = [float(u.data) for u in nodes if isinstance(u, cr.Tensor) and not u.requires_grad]
    return sorted(plain + fixed)


def _vars(*names):
    return {n: cr.tensor(np.float64(0.5 + i), dtype=np.float64, requires_grad=True)
            for i, n in enumerate(names)}  # fmt: skip


@pytest.mark.parametrize(
    "text, ops, constants",
    [
        ("a - t", ["sub"], []),
        ("x/y", ["div"], []),
        ("-x", ["neg"], []),
        ("x - 1", ["sub"], [1.0]),
        ("1 - x", ["sub"], [1.0]),
        ("-x - y", ["neg", "sub"], []),
        ("x/2", ["div"], [2.0]),
        ("3x/(2y)", ["div", "mul", "mul"], [2.0, 3.0]),
        ("-x/y", ["div", "neg"], []),
        ("x*y^-2", ["div", "power"], [2.0]),
        ("0.5*(a - t)^2", ["div", "power", "sub"], [2.0, 2.0]),  # SymPy: (a - t)**2/2
    ],
)
def test_sympy_forms_become_natural_engine_ops(text, ops, constants):
    # SymPy stores a - t as a + (-1)*t and x/y as x*y**-1; the engine gets sub and div
    expr = parse(text)
    env = _vars(*sorted(s.name for s in expr.free_symbols))
    out = to_engine(expr, env)
    assert _ops(out) == ops and _constants(out) == constants
    assert out.item() == pytest.approx(float(expr.subs({sp.Symbol(k, real=True): v.item()
                                                         for k, v in env.items()})))  # fmt: skip


def test_tree_keeps_the_typed_order_and_operators():
    env = _vars("w1", "x", "b1", "a2", "t")
    z1 = tree_to_engine(parse_program("w1*x + b1").tree, env, name="z1")
    (wx, b1) = z1.parents
    assert z1.op.name == "add" and wx.op.name == "mul" and b1 is env["b1"]
    assert wx.parents[0] is env["w1"] and wx.parents[1] is env["x"]
    loss = tree_to_engine(parse_program("0.5*(a2 - t)^2").tree, env)
    assert _ops(loss) == ["mul", "power", "sub"] and _constants(loss) == [0.5, 2.0]
    half, square = loss.parents
    assert float(half.data) == 0.5 and square.parents[0].parents[0] is env["a2"]


def test_tree_folds_constants_and_shares_repeated_subtrees():
    env = _vars("x")
    out = tree_to_engine(parse_program("2*pi*x + sin(x^2)*sin(x^2)").tree, env)
    assert _constants(out) == [2.0, pytest.approx(2 * np.pi)]
    product = out.parents[1]
    assert product.op.name == "mul" and product.parents[0] is product.parents[1]
    out.backward()
    want = 2 * np.pi + 2 * np.sin(0.25) * np.cos(0.25) * 2 * 0.5
    assert env["x"].grad.item() == pytest.approx(want)


def test_program_is_evaluated_from_its_trees():
    p = parse_program("z1 = w1*x + b1; L = (z1 - t)^2")
    env = _vars("w1", "x", "b1", "t")
    values = program_to_engine(p, env)
    assert values["z1"].parents[1] is env["b1"] and values["L"].parents[0].op.name == "sub"
    with pytest.raises(KeyError, match="no value for b1"):
        program_to_engine(p, {k: v for k, v in env.items() if k != "b1"})


# A program too long to write out (limits.max_output): derived statement by statement, so its
# answer and its rates are in terms of the intermediates.
_DIAMOND = "a1 = x^2/9; a2 = a1*a1 + a1; " + "; ".join(
    f"a{i} = a{i - 1}*a{i - 2}/4 + a{i - 1}/2" for i in range(3, 31)
)


def test_one_walk_evaluates_each_statement_once_in_dependency_order():
    from chainrule.symbolic import explain
    from chainrule.symbolic.functions import lambdify

    d = explain(_DIAMOND)
    assert d.rates
    seen: list[sp.Expr] = []

    def evaluate(e, env):
        seen.append(e)
        symbols = sorted(e.free_symbols, key=lambda s: s.name)
        assert all(s.name in env for s in symbols)  # everything it uses is known already
        return float(lambdify(symbols, e)(*(env[s.name] for s in symbols)))

    class Once(dict):
        def __setitem__(self, name, value):
            assert name not in self, f"{name} evaluated twice"
            super().__setitem__(name, value)

    env = Once(x=0.7)
    value = d.run_derivative(env, evaluate)
    assert len(seen) == len(env) and seen[-1] == d.result  # the statements, then the answer
    assert set(env) <= {"x"} | {s.name for s in {**d.definitions, **d.rates}}
    # Derivation.evaluate (the CLI's --at) takes the same walk, in complex float64
    assert value == pytest.approx(d.evaluate(x=0.7), rel=1e-12)
    seen.clear()
    env = Once(x=0.7)
    f = d.run(env, evaluate)
    assert len(seen) == len(env) and seen[-1] == d.expr
    a = [0.0, 0.7**2 / 9]  # the program by hand (written out, it is exponentially long)
    a.append(a[1] * a[1] + a[1])
    for i in range(3, 31):
        a.append(a[i - 1] * a[i - 2] / 4 + a[i - 1] / 2)
    assert f == pytest.approx(a[30], rel=1e-12)
