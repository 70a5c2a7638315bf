"""``explain(expr, wrt, lang) -> Derivation``: parse, build the rule tree, tidy the answer, render.

Also owns the learner-facing simplification (``learner_form``): a fixed strategy that keeps
factored chain results (6x(x² + 1)²), pulls common factors out of sums (e^x(x² + 2x)) and
brings in no function the learner did not type; and the seeds' σ(g)(1 - σ(g)) for a sigmoid
written out as 1/(1 + e^(-g)).
Imports parse, steps and render; never the autodiff engine (see evaluate.py).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import sympy as sp
from sympy.functions.elementary.hyperbolic import HyperbolicFunction

from chainrule.limits import DEFAULT, LimitError, Limits, active, applied, check_time
from chainrule.symbolic import render as V
from chainrule.symbolic.forms import keep_coefficient
from chainrule.symbolic.functions import lambdify, sigmoid
from chainrule.symbolic.parse import (
    ParseError,
    Program,
    check_name,
    dependency_order,
    parse_program,
)
from chainrule.symbolic.rules import ConstantRule, IdentityRule, Rule, rate
from chainrule.symbolic.size import Size, estimate
from chainrule.symbolic.steps import diff_by_statement, diff_program, diff_steps
from chainrule.symbolic.tree import UndefinedError

__all__ = ["Derivation", "explain", "learner_form"]

_SIMPLIFY_MAX_OPS = 30  # sympy.simplify is tried only on small answers: it can take seconds
# sympy.factor is a multivariate polynomial factorisation, exponential in the number of distinct
# functions (the derivative of a product of 10 sin(kx): 2.6 s, 12: 14 s); past this size only
# the common factors of the terms are taken out (factor_terms: linear, 0.03 s for 10 factors).
_FACTOR_MAX_OPS = 80


@dataclass(frozen=True, kw_only=True)
class Derivation:
    """A worked derivative: the rule tree, the answer and its renderings.

    Attributes
    ----------
    expr : sympy.Expr
        What was differentiated (for a program: the output's definition).
    wrt : sympy.Symbol
        The variable.
    name : sympy.Symbol
        The name of the function (``y``, or a program's output such as ``z``).
    steps : Rule
        The tree of named rule applications; ``steps.eval()`` is the unsimplified derivative.
    result : sympy.Expr
        The derivative in the form a learner expects (in the leaves, for a program).
    lang : str
        Default language of the renderings, ``"en"`` or ``"zh"``.
    definitions : dict
        A program's intermediates (empty for a single expression).
    rates : dict
        Empty, unless the answer was too large to write out in the inputs
        (``Limits.max_output``, ``max_depth``, ``max_steps``): then the program is derived
        statement by statement, ``result`` is in terms of the intermediates and their
        derivatives, and ``rates`` maps each such derivative (the symbol ``du/dx``, a
        ``rules.Rate``) to its value in the same terms, in dependency order.
    """

    expr: sp.Expr
    wrt: sp.Symbol
    name: sp.Symbol
    steps: Rule
    result: sp.Expr
    lang: str = "en"
    definitions: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    rates: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)
    lines: tuple[V.Line, ...] = ()
    limits: Limits = DEFAULT  # the request's: rendering keeps to its max_output and time budget

    def to_text(self, lang: str | None = None) -> str:
        """The derivation as indented lines of Unicode math."""
        return self._render(lang, "text")

    def to_markdown(self, lang: str | None = None) -> str:
        """The derivation as a nested Markdown list with ``$...$`` math."""
        return self._render(lang, "markdown")

    def to_latex(self, lang: str | None = None) -> str:
        """The derivation as a LaTeX ``array`` (prose in ``\\text{}``)."""
        return self._render(lang, "latex")

    def _render(self, lang: str | None, fmt: str) -> str:
        try:
            with applied(self.limits):
                return V.render(self.lines, lang=lang or self.lang, fmt=fmt)
        except RecursionError:  # SymPy's printers recurse: a long program composes deeply
            raise LimitError("max_depth", "the derivation is nested too deeply to print") from None

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_latex_(self) -> str:
        return "$$" + self.to_latex() + "$$"

    def __str__(self) -> str:
        return self.to_text()

    def __repr__(self) -> str:
        """The answer in one line, ``<Derivation dy/dx = 6x(x² + 1)²>`` (print it for the steps)."""
        answer = V.render(self.lines[-1:], lang="en", fmt="text").removeprefix("Result: ")
        return f"<Derivation {answer}>"

    @property
    def inputs(self) -> set[str]:
        """The names the differentiated function takes (a program's intermediates left out)."""
        defs = self.definitions
        free = set().union(self.expr.free_symbols, *(e.free_symbols for e in defs.values()))
        return {s.name for s in free - set(defs)}

    def run(self, env: dict[str, Any], evaluate: Callable[[sp.Expr, dict[str, Any]], Any]) -> Any:
        """The function itself, one statement at a time: ``evaluate(expr, env)`` gives the
        value of each definition the output uses (stored in `env` under its name, in dependency
        order), then the output's. Never written out in its inputs, which for a program that
        reuses its intermediates grows exponentially. `env` holds the inputs' values (floats,
        arrays, tensors: whatever `evaluate` takes)."""
        return _in_order(self.definitions, self.expr, env, evaluate)

    def run_derivative(
        self, env: dict[str, Any], evaluate: Callable[[sp.Expr, dict[str, Any]], Any]
    ) -> Any:
        """The derivative as ``run`` gives the function: each intermediate and each
        intermediate's rate (``rates``) that the answer needs, once, in dependency order, then
        the answer. A derivation written out in its inputs is one statement."""
        return _in_order({**self.definitions, **self.rates}, self.result, env, evaluate)

    def evaluate(self, **values: float) -> float:
        """The derivative at a point, e.g. ``d.evaluate(x=2.0)``; every free symbol needs a value.

        >>> explain("(x^2+1)^3").evaluate(x=2)
        300.0
        """
        point = ", ".join(f"{k} = {v:g}" for k, v in sorted(values.items()))
        steps = {**self.definitions, **self.rates}
        needed = _needed(steps, self.result)
        leaves = set().union(self.result.free_symbols, *(steps[s].free_symbols for s in needed))
        if missing := sorted({s.name for s in leaves - needed} - set(values)):
            raise ValueError(f"evaluate: no value for {', '.join(missing)}")
        # complex, so that a statement with a complex value still gives the next one its value
        value = self.run_derivative({k: complex(v) for k, v in values.items()}, self._value)
        if value.imag != 0 or not math.isfinite(value.real):
            raise ValueError(
                f"evaluate: the derivative has no real float value at {point} "
                "(undefined, complex or too large)"
            )
        return value.real

    @staticmethod
    def _value(e: sp.Expr, known: Mapping[str, complex]) -> complex:
        """e at the point (nan where it has no value); every free symbol is known."""
        symbols = sorted(e.free_symbols, key=lambda s: s.name)
        # float64 through NumPy, never evalf: mpmath raises where there is no value, and raises
        # its precision without bound on a tower such as exp(exp(exp(x))) at 30 (minutes)
        f = lambdify(symbols, e)
        try:
            with np.errstate(all="ignore"):
                args = (
                    known[s.name] if known[s.name].imag else np.float64(known[s.name].real)
                    for s in symbols
                )
                return complex(f(*args))
        except (ArithmeticError, TypeError, ValueError):
            return complex(math.nan)


def _needed(steps: Mapping[sp.Symbol, sp.Expr], target: sp.Expr) -> set[sp.Symbol]:
    """The statements of `steps` that `target` uses, directly or through other statements."""
    needed: set[sp.Symbol] = set()
    stack = [s for s in target.free_symbols if s in steps]
    while stack:
        s = stack.pop()
        if s not in needed:
            needed.add(s)
            stack.extend(t for t in steps[s].free_symbols if t in steps)
    return needed


def _in_order(
    steps: Mapping[sp.Symbol, sp.Expr],
    target: sp.Expr,
    env: dict[str, Any],
    evaluate: Callable[[sp.Expr, dict[str, Any]], Any],
) -> Any:
    """`target` given `env`: each statement it needs evaluated once, in dependency order, and
    stored in `env` under its name (the one walk of ``run``, ``run_derivative``, ``evaluate``)."""
    needed = _needed(steps, target)
    for name in dependency_order({s: steps[s] for s in steps if s in needed}):
        env[name.name] = evaluate(steps[name], env)
    return evaluate(target, env)


def explain(
    expr: str | sp.Expr,
    wrt: str | sp.Symbol | None = None,
    lang: str = "en",
    *,
    limits: Limits | None = None,
) -> Derivation:
    """Differentiate step by step, naming every rule (chain rule with u = g(x), ...).

    Parameters
    ----------
    expr : str or sympy.Expr
        Typed math (``"(x^2+1)^3"``, ``"√(1+x²)"``), a program of definitions
        (``"z = (u+v)^2; u = x*y; v = x + y"``) or a SymPy expression.
    wrt : str or sympy.Symbol, optional
        The variable; by default the one the text names (``"d/dt t^2"``, ``"diff(f, t)"``),
        else ``x``. With several variables this gives partial derivatives.
    lang : {"en", "zh"}
        Language of the renderings (English or Simplified Chinese).
    limits : chainrule.limits.Limits, optional
        Size and time limits of this request (default: the active ones, ``limits.DEFAULT``).
        A derivation longer than ``max_steps`` lines is shortened, with the reason said.

    Returns
    -------
    Derivation

    Raises
    ------
    chainrule.symbolic.ParseError
        When ``expr`` is malformed text or ``wrt`` is not a variable name (the message points at
        the character).
    chainrule.limits.LimitError
        When the request goes past a limit (the message names it).

    Examples
    --------
    >>> d = explain("(x^2+1)^3")
    >>> d.result
    6*x*(x**2 + 1)**2
    >>> print(d.to_text())
    Differentiate y = (x² + 1)³ with respect to x.
    Chain rule: let y = u³, u = x² + 1.
      Power rule (d/du(uⁿ) = n·uⁿ⁻¹): dy/du = 3u²
      Sum rule: du/dx = d/dx(x²) + d/dx(1) = 2x + 0 = 2x
        Power rule (d/dx(xⁿ) = n·xⁿ⁻¹): d/dx(x²) = 2x
      Multiply the links: dy/dx = dy/du·du/dx = 3(x² + 1)²·2x = 6x(x² + 1)²
    Result: dy/dx = 6x(x² + 1)²
    >>> explain("z = (u+v)^2; u = x*y; v = x + y", wrt="x").result
    2*(y + 1)*(x*y + x + y)
    """
    if lang not in V.LANGUAGES:
        raise ValueError(f"explain: lang must be one of {V.LANGUAGES}, got {lang!r}")
    with applied(limits):
        try:
            return replace(_explain(expr, wrt, lang), limits=active())
        except RecursionError:  # SymPy recurses on deep expressions; the parser bounds depth
            raise LimitError("max_depth", "the formula is nested too deeply to explain") from None


def _explain(expr: str | sp.Expr, wrt: str | sp.Symbol | None, lang: str) -> Derivation:
    given_name = "x" if wrt is None else wrt if isinstance(wrt, str) else wrt.name
    wrt_name = check_name(given_name, "wrt")
    if isinstance(wrt, str):
        wrt = wrt_name
    if not isinstance(expr, str):  # a SymPy input meets the same limits as typed math
        given = sp.sympify(expr, strict=True)
        for s in given.free_symbols:
            check_name(s.name)
        digits = active().max_digits
        bits = max((max(abs(n.p), n.q).bit_length() for n in given.atoms(sp.Rational)), default=0)
        if bits * 0.30103 > digits:  # log10(2): digits from bits, without printing the number
            raise LimitError("max_digits", f"a number in the expression has over {digits} digits")
        # the innermost first: atanh(2), not celu(atanh(2)); as the parser refuses typed ones
        nonreal = (n for n in sp.postorder_traversal(given) if n.is_number)
        if (bad := next((n for n in nonreal if n.is_extended_real is False), None)) is not None:
            raise ValueError(f"explain: {bad} is not a real number (derivatives here are real)")
    program = parse_program(expr, names={wrt_name}) if isinstance(expr, str) else None
    if wrt is None:
        wrt = wrt_name if program is None or program.wrt is None else program.wrt
    if program is not None and program.definitions:
        every = set().union(*(e.free_symbols for e in program.definitions.values()))
        try:
            return _explain_program(program, _symbol(wrt, every), lang)
        except UndefinedError as exc:  # a constant only the substituted program reveals
            raise ParseError(exc.message, expr, 0) from None
    user = program.expr if program is not None else sp.sympify(expr, strict=True)
    e, back = _real_symbols(user)
    x = _symbol(wrt, e.free_symbols)
    name = next(
        sp.Symbol(n)
        for n in ("y", "f", "g", "F", "Y")
        if sp.Symbol(n) != x and n not in {s.name for s in e.free_symbols}
    )
    steps = diff_steps(e, x)
    result = learner_form(steps.eval(), source=e)
    lines = _lines(steps, name, x, result, given=V.eq(V.expr(name), V.expr(e)), expr=e)
    result = (_as_sigmoid(e, x, result) or result).xreplace(back)
    wrt_out = back.get(x, x)
    return Derivation(
        expr=user, wrt=wrt_out, name=name, steps=steps, result=result, lang=lang, lines=lines
    )


def _real_symbols(e: sp.Expr) -> tuple[sp.Expr, dict[sp.Symbol, sp.Symbol]]:
    """Typed math has real symbols; a SymPy input's plain ones are made real too, so that
    d|x|/dx is sign(x), not SymPy's complex formula in re(x) and im(x). Also returns the map
    back to the caller's own symbols, for the result."""
    real = {s: sp.Symbol(s.name, real=True) for s in e.free_symbols if s.is_real is None}
    return e.xreplace(real), {r: s for s, r in real.items()}


def _symbol(wrt: str | sp.Symbol, symbols: set[sp.Basic]) -> sp.Symbol:
    if isinstance(wrt, sp.Symbol):
        return sp.Symbol(wrt.name, real=True) if wrt.is_real is None else wrt
    found = [s for s in symbols if isinstance(s, sp.Symbol) and s.name == wrt]
    return found[0] if found else sp.Symbol(wrt, real=True)


def _explain_program(program: Program, x: sp.Symbol, lang: str) -> Derivation:
    if x == program.output:  # dz/dz = 1, whatever z's definition
        return _explain_output(program, x, lang)
    defs = {k: v for k, v in program.definitions.items() if k != x}
    too_big = _too_big(estimate(defs, x)[program.output], active())
    if too_big is not None:  # decided before any derivative is taken
        return _explain_by_statement(program, x, lang, defs, too_big)
    steps = diff_program(program, x)
    inner = learner_form(steps.eval(), source=program.expr)
    result = learner_form(Program(definitions=defs, expr=inner).inline(), source=program.inline())
    full = Program(definitions=defs, expr=program.expr).inline()
    shown = [V.eq(V.expr(k), V.expr(v)) for k, v in program.definitions.items()]
    lines = _lines(
        steps,
        program.output,
        x,
        result,
        given=V.listing(shown),
        expr=program.expr,
        defs=defs,
        inner=inner,
    )
    return Derivation(
        expr=program.expr,
        wrt=x,
        name=program.output,
        steps=steps,
        result=_as_sigmoid(full, x, result) or result,  # as the result line ends (_lines)
        lang=lang,
        definitions=defs,
        lines=lines,
    )


def _too_big(size: Size, limits: Limits) -> tuple[str, int, int] | None:
    """(limit, estimated size, limit's value) for the first limit the written-out answer would
    break (template ``by_statement_<limit>``), or None when it can be written out."""
    for limit, value in (
        ("max_output", size.chars),
        ("max_depth", size.depth),
        ("max_steps", size.lines),
    ):
        if value > getattr(limits, limit):
            return limit, value, getattr(limits, limit)
    return None


def _explain_by_statement(
    program: Program,
    x: sp.Symbol,
    lang: str,
    defs: dict[sp.Symbol, sp.Expr],
    too_big: tuple[str, int, int],
) -> Derivation:
    """The answer in terms of the intermediates and their derivatives: each statement derived
    once, in dependency order (``steps.diff_by_statement``), the reason said before the steps.
    Past ``max_steps`` lines each statement keeps only its closing line, then the lines are
    shortened as any derivation's."""
    z = program.output
    rules = diff_by_statement(program, x)
    partial = bool(V.leaves(z, defs) - {x})
    limit, size, value = too_big
    shown = [V.eq(V.expr(k), V.expr(v)) for k, v in program.definitions.items()]
    head = V.Line("given_program", 0, {"out": V.expr(z), "x": V.expr(x), "defs": V.listing(shown)})
    reason = V.Line(
        f"by_statement_{limit}",
        0,
        {"out": V.expr(z), "x": V.expr(x), "size": _count(size), "limit": lambda p: str(value)},
    )
    body: list[V.Line] = []
    for u, rule in rules.items():  # laid out until they would not fit (the work stays bounded)
        body += V.layout(rule, 0, u)
        if len(body) + 3 > active().max_steps:
            body = [V.statement(rule, u) for u, rule in rules.items()]
            break
    steps = rules.get(z) or ConstantRule(expr=program.expr, wrt=x)
    top: V.Math = lambda p: p.deriv(z, x, partial)
    result = V.Line("result", 0, {"eq": V.eq(top, V.value(steps))})
    lines = _shorten([head, reason, *body, result], len(body) + 2, active().max_steps)
    return Derivation(
        expr=program.expr,
        wrt=x,
        name=z,
        steps=steps,
        result=steps.eval(),
        lang=lang,
        definitions=defs,
        rates={rate(u, x, bool(V.leaves(u, defs) - {x})): r.eval() for u, r in rules.items()},
        lines=lines,
    )


def _count(n: int) -> V.Math:
    return lambda p: f"{n:,}"


def _explain_output(program: Program, z: sp.Symbol, lang: str) -> Derivation:
    """A program's output differentiated by itself: the identity rule, dz/dz = 1."""
    steps = IdentityRule(expr=z, wrt=z)
    shown = V.listing([V.eq(V.expr(k), V.expr(v)) for k, v in program.definitions.items()])
    head = V.Line("given_program", 0, {"out": V.expr(z), "x": V.expr(z), "defs": shown})
    result = V.Line("result", 0, {"eq": V.eq(lambda p: p.deriv(z, z, False), V.expr(1))})
    lines = (head, *V.layout(steps, 0, z), result)
    return Derivation(
        expr=program.expr, wrt=z, name=z, steps=steps, result=sp.S.One, lang=lang, lines=lines
    )


def _lines(steps, name, x, result, *, given, expr, defs=None, inner=None) -> tuple[V.Line, ...]:
    """Header, the tree, then simplify / σ / substitute-back lines and the result."""
    full = Program(definitions=defs or {}, expr=expr).inline()
    partial = bool(full.free_symbols - {x})
    top: V.Math = lambda p: p.deriv(name, x, partial)
    head = (
        V.Line("given_program", 0, {"out": V.expr(name), "x": V.expr(x), "defs": given})
        if defs is not None
        else V.Line("given", 0, {"eq": given, "x": V.expr(x)})
    )
    lines = [head, *V.layout(steps, 0, name)]
    tree_end = len(lines)
    raw = keep_coefficient(steps.eval(), expr)  # as the chain line ends: 6(3x + 2)
    tidy = inner if defs is not None else result
    as_sigmoid = _as_sigmoid(full, x, result)
    if as_sigmoid is not None:  # the seeds' way: e^(-x)/(1 + e^(-x))² = σ(x)(1 - σ(x))
        lines += _sigmoid_lines(full, raw if defs is None else result, as_sigmoid, top)
    elif tidy != raw:
        lines.append(V.Line("simplify", 0, {"eq": V.eq(top, V.expr(raw), V.expr(tidy))}))
    if defs:
        subs = V.listing([V.eq(V.expr(k), V.expr(v)) for k, v in defs.items() if k != name])
        lines.append(V.Line("substitute", 0, {"subs": subs, "eq": V.eq(top, V.expr(result))}))
    lines.append(V.Line("result", 0, {"eq": V.eq(top, V.expr(as_sigmoid or result))}))
    return _shorten(lines, tree_end, active().max_steps)


def _shorten(lines: list[V.Line], tree_end: int, max_steps: int) -> tuple[V.Line, ...]:
    """At most ``max_steps`` lines: the first steps, a line saying how many were left out and
    why, then the closing lines (simplify, substitute, result), so the answer is always given."""
    if len(lines) <= max_steps:
        return tuple(lines)
    tail = lines[tree_end:]
    keep = max(1, max_steps - len(tail) - 1)
    omitted, total = len(lines) - keep - len(tail), len(lines)
    math: dict[str, V.Math] = {
        "omitted": lambda p: str(omitted),
        "total": lambda p: str(total),
        "limit": lambda p: str(max_steps),
    }
    return (*lines[:keep], V.Line("shortened", 0, math), *tail)


def learner_form(e: sp.Expr, source: sp.Expr | None = None) -> sp.Expr:
    """The derivative as a textbook writes it: a fixed, deterministic strategy.

    Candidates: SymPy's own form, ``factor`` and (for small answers) ``simplify``, each with
    monomials multiplied back into a lone sum factor (x(x + 2)e^x -> (x² + 2x)e^x). The fewest
    operations wins, ties going to the earlier candidate, among those that apply no function
    absent from e and source (never cosh for exponentials); products are kept as they are. Given
    the ``source`` differentiated, a number SymPy distributed over one of its sums is taken out
    again (18x + 12 -> 6(3x + 2) for (3x + 2)², see ``forms.keep_coefficient``).

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> learner_form(2*x*sp.exp(x) + x**2*sp.exp(x))
    (x**2 + 2*x)*exp(x)
    >>> learner_form((2*x*(x + 1) - x**2) / (x + 1)**2)
    (x**2 + 2*x)/(x + 1)**2
    >>> learner_form(18*x + 12, source=(3*x + 2)**2)
    6*(3*x + 2)
    """
    if e.is_Mul and not any(f.is_Pow and f.exp.is_negative and f.base.is_Add for f in e.args):
        return e
    check_time("simplifying the answer")
    ops = sp.count_ops(e)
    factored = sp.factor(e) if ops <= _FACTOR_MAX_OPS else sp.factor_terms(e)
    candidates = [e, _merge_monomials(factored)]
    if ops <= _SIMPLIFY_MAX_OPS and not e.has(sp.Piecewise):  # piecewise_simplify: minutes
        candidates.append(_merge_monomials(sp.simplify(e)))
    # simplify answers e^(-x)/(1 + e^(-x))² with 1/(4cosh²(x/2)): fewer operations, but in a
    # function the learner never typed; a candidate may only use the functions already there
    known = _functions(e) | (_functions(source) if source is not None else set())
    fair = [c for c in candidates if _functions(c) <= known]
    return keep_coefficient(min(fair, key=sp.count_ops), source)


def _functions(e: sp.Expr) -> set[type]:
    """The kinds of function applied in e (exp, cosh, sigmoid, ...)."""
    return {type(f) for f in e.atoms(sp.Function)}


def _is_monomial(f: sp.Expr) -> bool:
    return f.is_Symbol or (f.is_Pow and f.base.is_Symbol and f.exp.is_Integer and f.exp > 0)


def _merge_monomials(e: sp.Expr) -> sp.Expr:
    """In n/d, multiply monomial factors of n into n's one sum factor: x(x + 2) -> x² + 2x."""
    n, d = sp.fraction(e, exact=True)
    factors = sp.Mul.make_args(n)
    monomials = [f for f in factors if _is_monomial(f)]
    sums = [f for f in factors if f.is_Add]
    if not monomials or len(sums) != 1:
        return e
    rest = [f for f in factors if f not in monomials and f is not sums[0]]
    return sp.Mul(*rest, sp.expand(sp.Mul(*monomials, sums[0]))) / d


def _sigmoid_of(node: sp.Basic) -> sp.Expr | None:
    """g when node is 1/(1 + e^(-g))ⁿ (n ≥ 1: SymPy writes (1/(1 + e^(-g)))² so), a sigmoid
    written out by hand; else None."""
    if not (node.is_Pow and node.exp.is_Integer and node.exp < 0):
        return None
    if node.base.is_Add and len(node.base.args) == 2:
        one, other = sorted(node.base.args, key=lambda a: a != 1)
        if one == 1 and other.func is sp.exp:
            return -other.args[0]
    return None


def _with_sigma(expr: sp.Expr) -> sp.Expr:
    """expr with σ(g) for each 1/(1 + e^(-g)), innermost first (σ(σ(x)) for a nested one)."""
    return expr.replace(
        lambda n: _sigmoid_of(n) is not None, lambda n: sigmoid(_sigmoid_of(n)) ** -n.exp
    )


def _sigmoid_args(expr: sp.Expr) -> list[sp.Expr]:
    """The g in every 1/(1 + e^(-g)) of expr, outermost first."""
    found = (_sigmoid_of(node) for node in sp.preorder_traversal(expr))
    return [g for g in found if g is not None]


# Functions that are e^g in disguise: a ratio holding one is not free of e^g.
_EXP_LIKE = (sp.exp, HyperbolicFunction, sigmoid)
# Functions algebraically independent of e^g for a polynomial g of real variables (Ax's
# theorem: e^g is transcendental over the field these generate with the variables).
_EXP_FREE = (sp.sin, sp.cos, sp.tan, sp.cot, sp.sec, sp.csc, sp.asin, sp.acos, sp.atan, sp.log)
# Where _depends_on_exp compares: values of the variables, then two of T = e^(-h/L).
_PROBE = (0.3183098861837907, 0.7071067811865476, 1.4142135623730951, 0.5772156649015329)
_PROBE_T = (0.6180339887498949, 1.6487212707001282)


@functools.lru_cache(maxsize=64)  # asked twice per derivation (lines, result); simplify is slow
def _as_sigmoid(expr: sp.Expr, x: sp.Symbol, result: sp.Expr) -> sp.Expr | None:
    """result, the derivative of expr by x, written with σ(g) where expr has 1/(1 + e^(-g)):
    term by term where the sigmoids can be read off expr (``_sigmoid_by_terms``), else as a
    whole c·σ(g)(1 - σ(g)) where that form exists; None when there is no such form."""
    if not _sigmoid_args(expr):
        return None
    return _sigmoid_by_terms(expr, x, result) or _sigmoid_whole(expr, result)


def _sigmoid_by_terms(expr: sp.Expr, x: sp.Symbol, result: sp.Expr) -> sp.Expr | None:
    """The derivative with each written-out 1/(1 + e^(-g)) of expr read as σ(g), so that the
    chain rule gives g'·σ(g)(1 - σ(g)) for it (k + σ(x)(1 - σ(x)) for 1/(1 + e^(-x)) + kx, as
    the seeds write σ'). Structural, never simplify: SymPy's simplify cannot prove ratios such
    as 4cosh²(x/2)/(cosh x + 1) = 2. None where a term mixes σ(g) with an e^(...) outside it
    (e^(-x)·σ(x): the two forms of one function), or where the form fails ``_same``."""
    written = _with_sigma(expr)
    s = sp.Dummy("s")
    for term in sp.Add.make_args(written):
        bare = term.replace(sigmoid, lambda g: s)
        outside = (a for a in bare.atoms(sp.exp) if a.args[0].free_symbols and not a.has(s))
        if bare.has(s) and next(outside, None) is not None:  # e^(σ(x)) is σ's own
            return None
    # SymPy distributes a number over 1 - σ (σ²(2 - 2σ)); the notes write 2σ²(1 - σ)
    form = sp.Add(*map(sp.factor_terms, sp.Add.make_args(sp.diff(written, x))))
    if not form.has(sigmoid):  # 1/(1 + e^(-k)) + x²: no σ left to show
        return None
    return form if _same(form, result, written, expr) else None


def _same(form: sp.Expr, result: sp.Expr, written: sp.Expr, expr: sp.Expr) -> bool:
    """form = d(written)/dx (σ in it) is the derivative of expr, proved in pieces that stay
    cheap on a large answer: written with each σ(g) put back as 1/(1 + e^(-g)) is expr itself,
    and σ'(u) is the derivative of 1/(1 + e^(-u)) (``_sigma_derivative_is_exact``); the chain
    rule, which gives both sides g'(x) the same way, does the rest. Then form must also equal
    result, the derivation's own answer, at a few points (``_agree_at_points``)."""
    if _written_out(written) != _written_out(expr):  # a σ the learner typed is written out too
        return False
    return _sigma_derivative_is_exact() and _agree_at_points(form, result)


def _written_out(e: sp.Expr) -> sp.Expr:
    return e.replace(sigmoid, lambda g: 1 / (1 + sp.exp(-g)))


@functools.cache
def _sigma_derivative_is_exact() -> bool:
    """The op table's σ' (``sigmoid.fdiff``) equals d/du 1/(1 + e^(-u)): cancel compares them
    soundly, both being rational in e^(-u)."""
    u = sp.Dummy("u", real=True)
    return (
        sp.cancel(_written_out(sp.diff(sigmoid(u), u)) - sp.diff(_written_out(sigmoid(u)), u)) == 0
    )


def _agree_at_points(form: sp.Expr, result: sp.Expr) -> bool:
    """form and result have the same value at three probe points (one at least where both
    have one): a cheap guard against a slip in how form was built."""
    symbols = sorted(form.free_symbols | result.free_symbols, key=str)
    try:
        f, r = lambdify(symbols, form), lambdify(symbols, result)
    except NotImplementedError:  # f(x) or an Integral of a SymPy input: no value, no claim
        return False
    compared = 0
    for k in range(3):
        point = [_PROBE[(i + k) % len(_PROBE)] * (-1) ** (i + k) for i in range(len(symbols))]
        with np.errstate(all="ignore"):
            try:
                a, b = complex(f(*point)), complex(r(*point))
            except (ArithmeticError, TypeError, ValueError, NameError):
                continue
        if not (math.isfinite(abs(a)) and math.isfinite(abs(b))):
            continue
        if abs(a - b) > 1e-9 * (1 + abs(a) + abs(b)):
            return False
        compared += 1
    return compared > 0


def _sigmoid_whole(expr: sp.Expr, result: sp.Expr) -> sp.Expr | None:
    """result as c·σ(g)(1 - σ(g)) when expr has 1/(1 + e^(-g)) and that form exists."""
    for g in _sigmoid_args(expr):
        s: sp.Expr = sigmoid(g)
        t = sp.exp(-g)
        if _depends_on_exp(result * (1 + t) ** 2 / t, g):  # proved: no c free of e^g
            continue  # simplify below takes 50-150 ms to find the same (issue 13's p90)
        ratio = sp.simplify(result / (s * (1 - s)).rewrite(sp.exp))
        if not ratio.has(*_EXP_LIKE) and sp.count_ops(ratio) <= 4:
            return ratio * s * (1 - s)
    return None


def _depends_on_exp(ratio: sp.Expr, g: sp.Expr) -> bool:
    """True when ratio provably depends on e^(-g), so that no form of it is free of e^g.

    With h the non-constant part of g, each e^(c - qh) (c constant, q rational) becomes
    e^c·T^(qL) for a new variable T standing for e^(-h/L); when that leaves an algebraic
    function of T over functions free of e^h (``_EXP_FREE``), a value that changes with T alone,
    at one point, proves the dependence: e^(-h/L) is not algebraic over them. False means "not
    proved" (the caller asks simplify), never "independent"."""
    h = g - g.as_coeff_Add()[0]
    r = ratio.rewrite(list(_EXP_LIKE[1:]), sp.exp)  # cosh, σ, ... written with exp
    powers = _powers_of_exp(r, h) if h.free_symbols and h.is_polynomial() else None
    if not powers:
        return False
    lcm = sp.ilcm(*(q.q for _, q in powers.values()), 1)
    T = sp.Dummy("T", positive=True)
    f = r.xreplace({e: sp.exp(c) * T ** (q * lcm) for e, (c, q) in powers.items()})
    point = dict(zip(sorted(f.free_symbols - {T}, key=str), _PROBE, strict=False))
    if len(point) < len(f.free_symbols) - 1:
        return False
    try:
        a, b = (complex(f.evalf(30, subs={**point, T: v})) for v in _PROBE_T)
    except (TypeError, ValueError, ZeroDivisionError):  # no value there: not proved
        return False
    scale = 1 + abs(a) + abs(b)
    return all(map(math.isfinite, (a.real, a.imag, b.real, b.imag))) and abs(a - b) > 1e-12 * scale


def _powers_of_exp(r: sp.Expr, h: sp.Expr) -> dict[sp.Expr, tuple[sp.Expr, sp.Rational]] | None:
    """Each e^(c - qh) of r as (c, q), when r is algebraic in them over ``_EXP_FREE``
    functions (else None); constants such as e^(-2) are left as numbers."""
    powers = {}
    for node in sp.preorder_traversal(r):
        if isinstance(node, sp.exp) and node.args[0].free_symbols:
            c, rest = node.args[0].as_independent(*h.free_symbols, as_Add=True)
            q = sp.cancel(rest / -h)
            if c.free_symbols or not q.is_Rational:
                return None
            powers[node] = (c, q)
        elif isinstance(node, sp.Function) and not isinstance(node, sp.exp):
            if not isinstance(node, _EXP_FREE) or node.has(sp.exp):
                return None
        elif isinstance(node, sp.Pow):  # 2^x is e^(x ln 2): only rational powers of e^h
            if not node.exp.is_Rational and (node.has(sp.exp) or node.exp.free_symbols):
                return None
        elif not isinstance(node, sp.Add | sp.Mul | sp.Atom | sp.exp):
            return None
    return powers


def _sigmoid_lines(expr, result, form, top) -> list[V.Line]:
    # σ defined on one whose 1 - σ(g) the answer shows (σ(x) for σ(k)·σ(x)(1 - σ(x))), an
    # innermost one (σ(x), not σ(1/(1 + e⁻ˣ)))
    found = [g for g in _sigmoid_args(expr) if form.has(1 - sigmoid(g))] or _sigmoid_args(expr)
    g = next((g for g in found if not _sigmoid_args(g)), found[0])
    s = sigmoid(g)
    math = {
        "s": V.expr(s),
        "sdef": V.expr(1 / (1 + sp.exp(-g))),
        "t": V.expr(1 - s),
        "tdef": V.expr(sp.exp(-g) / (1 + sp.exp(-g))),
        "eq": V.eq(top, V.expr(result), V.expr(form)),
    }
    return [V.Line("sigmoid", 0, math)]
