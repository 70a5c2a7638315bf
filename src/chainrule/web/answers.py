"""Check a learner's derivative: right or wrong, and when wrong, the common mistake it matches.

A mistake is modelled by differentiating the function correctly everywhere except at one node
of its expression tree, where one classic slip is made (the four the issue names): the chain
rule without the inner derivative, the quotient rule with its numerator's sign flipped, a power
whose exponent is off by one, the product rule with a term dropped. The node is swapped for an
unknown function F(x) before ``sympy.diff``, so the rest of the derivative stays exact; the slip
goes in for F'(x). Answers are compared numerically at fixed points, and symbolically.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import sympy as sp

from chainrule.symbolic import Derivation, parse
from chainrule.symbolic.functions import as_twins, lambdify
from chainrule.symbolic.mathprint import TextMath
from chainrule.symbolic.parse import Program
from chainrule.symbolic.render import TEMPLATES
from chainrule.symbolic.rules import Rule
from chainrule.web import mathml
from chainrule.web.locate import Departure, locate

# Points where answers are compared (other variables too); away from 0 and 1, where slips hide.
POINTS = (0.37, 1.23, 1.71, 2.19, 0.81, 2.63, 1.47)
RTOL = 1e-7

MESSAGES = {
    ("correct", "en"): "Right: it equals {result} (symbolically, and at {n} points).",
    ("correct", "zh"): "正确：与 {result} 相等（符号上相等，且在 {n} 个点上数值相等）。",
    ("differs", "en"): "At {var} = {at} your derivative gives {yours}, the derivative is {want}.",
    ("differs", "zh"): "在 {var} = {at} 处，你的导数等于 {yours}，正确的导数是 {want}。",
    (
        "mistake",
        "en",
    ): "It matches a common mistake: {mistake}, in the step that differentiates {node} ({rule}).",
    ("mistake", "zh"): "这符合一个常见错误：{mistake}，出现在对 {node} 求导的那一步（{rule}）。",
    (
        "unknown",
        "en",
    ): "It does not match a mistake I know, and it differs from more than one part of the"
    " derivation, so I cannot point at one step; compare it with the steps, one hint at a time.",
    ("unknown", "zh"): "它不符合已知的常见错误，而且与推导的不止一处不同，无法指出是哪一步；"
    "请借助提示逐步对照推导步骤。",
    (
        "departs_step",
        "en",
    ): "It departs from the derivation in the step that differentiates {node} ({rule}):"
    " your answer does not combine that step's parts the way the rule does.",
    ("departs_step", "zh"): "它在对 {node} 求导的那一步（{rule}）偏离了推导：你的答案没有按这条"
    "法则的方式组合这一步的各部分。",
    (
        "departs_leaf",
        "en",
    ): "It departs from the derivation in the step that differentiates {node} ({rule}):"
    " your answer needs a different result for that step.",
    ("departs_leaf", "zh"): "它在对 {node} 求导的那一步（{rule}）偏离了推导：你的答案要求这一步"
    "得出不同的结果。",
    (
        "departs_missing",
        "en",
    ): "It departs from the derivation in the step that differentiates {node} ({rule}):"
    " one of the parts that step multiplies or adds is missing from your answer.",
    ("departs_missing", "zh"): "它在对 {node} 求导的那一步（{rule}）偏离了推导：这一步要相乘或"
    "相加的某一部分在你的答案里缺失了。",
    (
        "departs_several",
        "en",
    ): "It departs from the derivation inside the step that differentiates {node} ({rule}):"
    " more than one part of that step differs from your answer.",
    ("departs_several", "zh"): "它在对 {node} 求导的那一步（{rule}）里偏离了推导：这一步中不止"
    "一部分与你的答案不同。",
}
MISTAKES = {
    ("inner", "en"): "the chain rule without the inner derivative",
    ("inner", "zh"): "用了链式法则却漏乘内层函数的导数",
    ("quotient_sign", "en"): "a sign slip in the quotient rule (it is f′g − fg′, in that order)",
    ("quotient_sign", "zh"): "商法则分子的符号弄反了（应为 f′g − fg′，顺序不能换）",
    ("exponent", "en"): "the exponent off by one (d/dx uⁿ = n·uⁿ⁻¹)",
    ("exponent", "zh"): "指数差了一（d/dx uⁿ = n·uⁿ⁻¹）",
    ("product_drop", "en"): "the product rule with a term dropped (it is f′g + fg′)",
    ("product_drop", "zh"): "乘积法则漏掉了一项（应为 f′g + fg′）",
    ("product_both", "en"): "the derivative of a product taken as the product of derivatives",
    ("product_both", "zh"): "把乘积的导数当成了导数的乘积",
}
FIX_HINTS = {
    ("inner", "en"): "After differentiating the outer function, multiply by the derivative of what"
    " is inside it.",
    ("inner", "zh"): "对外层函数求导之后，还要乘以内层函数的导数。",
    ("quotient_sign", "en"): "Quotient rule: (f′g − fg′)/g², the derivative of the numerator comes"
    " first.",
    ("quotient_sign", "zh"): "商法则：(f′g − fg′)/g²，分子的导数在前。",
    ("exponent", "en"): "Power rule: bring the exponent down and lower it by exactly one.",
    ("exponent", "zh"): "幂法则：把指数拿下来作系数，指数恰好减一。",
    ("product_drop", "en"): "Product rule: differentiate one factor at a time and add both terms.",
    ("product_drop", "zh"): "乘积法则：每次只对一个因子求导，两项都要加上。",
    ("product_both", "en"): "Product rule: (fg)′ = f′g + fg′, not f′g′.",
    ("product_both", "zh"): "乘积法则：(fg)′ = f′g + fg′，而不是 f′g′。",
}
_F = sp.Function("F")


@dataclass(frozen=True)
class Slip:
    kind: str
    node: sp.Expr
    derivative: sp.Expr  # the whole derivative, made with this one slip


def slips(expr: sp.Expr, x: sp.Symbol) -> Iterator[Slip]:
    """Every derivative of ``expr`` that makes exactly one classic slip at one node."""
    seen = set()
    for node in sp.preorder_traversal(expr):
        if node in seen or node.is_Atom or x not in node.free_symbols:
            continue
        seen.add(node)
        right = sp.diff(node, x)
        for kind, wrong in _node_slips(node, x):
            if sp.expand(wrong - right) == 0:  # no slip here: the inner derivative of x + 1 is 1
                continue
            marked = expr.xreplace({node: _F(x)})
            total = sp.diff(marked, x).subs(sp.Derivative(_F(x), x), wrong).subs(_F(x), node)
            yield Slip(kind, node, total)


def _node_slips(node: sp.Expr, x: sp.Symbol) -> Iterator[tuple[str, sp.Expr]]:
    u = sp.Dummy("u")
    if node.is_Pow:
        base, k = node.args
        if x not in k.free_symbols and k.is_number:
            db = sp.diff(base, x)
            yield "exponent", k * base**k * db
            yield "exponent", k * base ** (k - 2) * db
            if base != x:
                yield "inner", k * base ** (k - 1)
            if k.is_negative and base != x:  # 1/g: the quotient rule's -g'/g² with + instead
                yield "quotient_sign", -sp.diff(node, x)
        return
    if isinstance(node, sp.Function) and len(node.args) == 1 and node.args[0] != x:
        outer = sp.diff(node.func(u), u).subs(u, node.args[0])
        yield "inner", outer
        return
    if node.is_Mul:
        factors = [f for f in node.args if x in f.free_symbols]
        const = sp.Mul(*(f for f in node.args if x not in f.free_symbols))
        dens = [f for f in factors if f.is_Pow and f.exp.is_negative]
        nums = [f for f in factors if f not in dens]
        if dens and nums:  # a quotient p/q: (p'q - pq')/q² with the sign flipped
            p, q = sp.Mul(*nums), sp.Mul(*(1 / f for f in dens))
            yield "quotient_sign", const * (p * sp.diff(q, x) - sp.diff(p, x) * q) / q**2
            return
        if len(factors) >= 2:
            for i in range(len(factors)):
                rest = [f for j, f in enumerate(factors) if j != i]
                yield "product_drop", const * sp.diff(factors[i], x) * sp.Mul(*rest)
            yield "product_both", const * sp.Mul(*(sp.diff(f, x) for f in factors))


def _sampler(e: sp.Expr, names: list[sp.Symbol]) -> Any:
    return lambdify(names, e)


def _values(fn: Any, n_vars: int) -> np.ndarray:
    out = []
    for i, p in enumerate(POINTS):
        args = [p + 0.31 * j + 0.07 * i * j for j in range(n_vars)]
        try:
            with np.errstate(all="ignore"):
                v = complex(fn(*args))
            out.append(v.real if abs(v.imag) < 1e-12 else math.nan)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            out.append(math.nan)
    return np.array(out, dtype=float)


def same_values(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal at the points where both are defined (at least three of them)."""
    ok = np.isfinite(a) & np.isfinite(b)
    return int(ok.sum()) >= 3 and bool(np.allclose(a[ok], b[ok], rtol=RTOL, atol=1e-9))


def _rule_name(rule: Rule | None, lang: str) -> str:
    template = TEMPLATES.get((type(rule).__name__, lang), "") if rule is not None else ""
    parts = template.split("*")
    return parts[1] if len(parts) > 2 else ""


def _same_function(yours: sp.Expr, result: sp.Expr) -> bool:
    """Symbolic equality, also across the table's named functions: an answer written with
    exponentials is the derivation's σ(x)(1 − σ(x)) (it was judged wrong, its values equal)."""
    gap = yours - result
    if sp.simplify(gap) == 0:
        return True
    written_out = as_twins(gap)
    if written_out != gap and sp.simplify(written_out) == 0:
        return True
    # relu's kink: 2 relu(x) is 2 relu(x) H(x) (relu(x)² differentiated), which simplify
    # proves only case by case, as a piecewise function
    kinked = written_out.has(sp.Max, sp.Min, sp.Heaviside, sp.Abs, sp.sign)
    return kinked and sp.simplify(written_out.rewrite(sp.Piecewise)) == 0


def check(d: Derivation, answer: str, lang: str = "en") -> dict[str, Any]:
    """The verdict on ``answer`` as the derivative in ``d``, with messages and hints."""
    full = Program(definitions=dict(d.definitions), expr=d.expr).inline()
    names = sorted(full.free_symbols | {d.wrt}, key=lambda s: s.name)
    yours = parse(answer, names=[s.name for s in names])
    by_name = {s.name: s for s in names}
    if extra := sorted(s.name for s in yours.free_symbols if s.name not in by_name):
        raise ValueError(f"answer: {', '.join(extra)} does not appear in the function")
    yours = yours.xreplace({s: by_name[s.name] for s in yours.free_symbols})
    result = d.result.xreplace({s: by_name.get(s.name, s) for s in d.result.free_symbols})
    want = _values(_sampler(result, names), len(names))
    got = _values(_sampler(yours, names), len(names))
    text = TextMath()
    printer = mathml.MathMLMath()
    out: dict[str, Any] = {
        "yours": mathml.math(printer.expr(yours)),
        "expected": text.expr(result),
        "messages": [],
        "hints": [],
    }
    if same_values(got, want) and _same_function(yours, result):
        out["verdict"] = "correct"
        msg = MESSAGES["correct", lang].format(result=text.expr(result), n=len(POINTS))
        out["messages"].append(msg)
        return out
    out["verdict"] = "wrong"
    i = next((i for i in range(len(POINTS)) if np.isfinite(want[i])), 0)
    at = ", ".join(f"{POINTS[i] + 0.31 * j + 0.07 * i * j:g}" for j in range(len(names)))
    out["messages"].append(
        MESSAGES["differs", lang].format(
            var=", ".join(s.name for s in names), at=at, yours=_num(got[i]), want=_num(want[i])
        )
    )
    rules = {r.expr: r for r in d.steps.walk()}
    hints: list[list[dict[str, Any]]] = []
    for slip in slips(full, d.wrt):
        if same_values(got, _values(_sampler(slip.derivative, names), len(names))):
            rule = rules.get(slip.node)
            out["mistake"] = {"kind": slip.kind, "node": text.expr(slip.node)}
            out["messages"].append(
                MESSAGES["mistake", lang].format(
                    mistake=MISTAKES[slip.kind, lang],
                    node=text.expr(slip.node),
                    rule=_rule_name(rule, lang) or MISTAKES[slip.kind, lang].split(" ")[0],
                )
            )
            hints.append([{"text": FIX_HINTS[slip.kind, lang], "bold": False}])
            break
    departure = locate(d.steps, yours, step_sampler(names), same_values)
    if departure is not None and (departure.reason != "several" or len(departure.path) > 1):
        line = _line_of(d, departure)
        out["departs"] = {
            "line": line,
            "rule": type(departure.rule).__name__,
            "reason": departure.reason,
        }
        if "mistake" not in out:
            out["messages"].append(
                MESSAGES[f"departs_{departure.reason}", lang].format(
                    node=text.expr(departure.rule.expr),
                    rule=_rule_name(departure.rule, lang) or _rule_name(d.steps, lang),
                )
            )
    if "mistake" not in out and "departs" not in out:
        out["messages"].append(MESSAGES["unknown", lang])
    lines = [ln for ln in d.lines if ln.key not in ("given", "given_program", "result")]
    hints += [mathml.line_segments(ln, lang, printer)["segments"] for ln in lines]
    out["hints"] = hints
    out["steps"] = mathml.step_tree(d.lines, lang)
    return out


def step_sampler(names: list[sp.Symbol]) -> Callable[[sp.Expr], np.ndarray]:
    """Values of an expression of the inputs at the points, each expression lambdified once."""
    by_name = {s.name: s for s in names}
    seen: dict[sp.Expr, np.ndarray] = {}

    def sample(e: sp.Expr) -> np.ndarray:
        e = sp.sympify(e)
        e = e.xreplace({s: by_name[s.name] for s in e.free_symbols if s.name in by_name})
        if e not in seen:
            if e.free_symbols - set(names):  # a symbol the points give no value: no verdict
                seen[e] = np.full(len(POINTS), math.nan)
            else:
                seen[e] = _values(_sampler(e, names), len(names))
        return seen[e]

    return sample


def _line_of(d: Derivation, departure: Departure) -> int | None:
    """The index in ``d.lines`` of the deepest step on the path that has a line of its own (a
    constant term's step is not printed; a long derivation may have been shortened)."""
    where = {id(ln.rule): i for i, ln in enumerate(d.lines) if ln.rule is not None}
    return next((where[id(r)] for r in reversed(departure.path) if id(r) in where), None)


def _num(v: float) -> str:
    return "undefined" if not math.isfinite(v) else f"{v:.6g}"
