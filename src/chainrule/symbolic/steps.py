"""Build the rule tree: ``diff_steps(expr, x)`` and ``diff_program(program, x)``.

One handler per SymPy head, chosen by dict lookup on ``expr.func``; a head with no handler
becomes an ``UnknownRule`` (SymPy's answer, said to be SymPy's). Chains are flattened into
dy/dx = dy/du · du/dv · dv/dx with fresh names u, v, w, ... Imports rules.py, never render.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import sympy as sp

from chainrule.limits import check_time
from chainrule.symbolic.parse import Program, dependency_order, inline_definitions
from chainrule.symbolic.rules import (
    ELEMENTARY,
    ChainLink,
    ChainRule,
    ConstantMultipleRule,
    ConstantRule,
    ExpRule,
    ExtremumRule,
    IdentityRule,
    LogDiffRule,
    LogRule,
    MultivariableChainRule,
    PathTerm,
    PowerRule,
    ProductRule,
    QuotientRule,
    RateRule,
    Rule,
    SumRule,
    UnknownRule,
)

__all__ = ["diff_by_statement", "diff_program", "diff_steps"]

_NAMES = ("u", "v", "w", "p", "q", "r", "s", "t")
# SymPy's as_ordered_terms is quadratic in the number of terms (a monomial key over every
# symbol of the sum: 8,000 terms take 20 s); a longer sum keeps SymPy's stored order, which is
# also the order the printers use past this size (mathprint.ORDERED_TERMS_MAX).
ORDERED_TERMS_MAX = 100


def diff_steps(expr: sp.Expr, wrt: sp.Symbol) -> Rule:
    """The derivation of d expr / d wrt as a tree of named rules.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> rule = diff_steps((x**2 + 1) ** 3, x)
    >>> type(rule).__name__, rule.links[0].variable, rule.links[0].definition
    ('ChainRule', u, x**2 + 1)
    >>> rule.eval()
    6*x*(x**2 + 1)**2
    """
    return _Builder(taken=_names_in(expr) | {wrt.name}).build(expr, wrt)


def diff_program(program: Program, wrt: sp.Symbol) -> Rule:
    """The derivation of the program's output with respect to ``wrt`` (multivariable chain rule).

    ``wrt`` may be a leaf or an intermediate (then it is treated as an input).

    Examples
    --------
    >>> from chainrule.symbolic.parse import parse_program
    >>> p = parse_program("z = (u+v)^2; u = x*y; v = x + y")
    >>> x = sp.Symbol("x", real=True)
    >>> rule = diff_program(p, x)
    >>> [str(t.via) for t in rule.terms], rule.eval()
    (['u', 'v'], 2*u + 2*v + y*(2*u + 2*v))
    """
    defs = {k: v for k, v in program.definitions.items() if k != wrt}
    taken = {wrt.name} | {s.name for s in program.definitions}
    taken |= set().union(*(_names_in(e) for e in program.definitions.values()))
    builder = _Builder(taken=taken)
    return builder.total(program.expr, program.output, wrt, defs, _inliner(defs))


def diff_by_statement(program: Program, wrt: sp.Symbol) -> dict[sp.Symbol, Rule]:
    """du/d wrt for every defined u that depends on ``wrt``, in dependency order, each in terms
    of the derivatives of the intermediates it uses (``RateRule``: the symbol dv/dx).

    Every statement is derived once, so the work is linear in the program even when statements
    use each other many times (``a3 = a2·a1``: ``diff_program`` derives a1 inside a2 and again
    inside a3, and such a program of n statements doubles its tree about every 1.5 statements).

    Examples
    --------
    >>> from chainrule.symbolic.parse import parse_program
    >>> p = parse_program("b = a*a + a; a = x^2")
    >>> x = sp.Symbol("x", real=True)
    >>> {str(u): rule.eval() for u, rule in diff_by_statement(p, x).items()}
    {'a': 2*x, 'b': da/dx*(2*a + 1)}
    """
    defs = {k: v for k, v in program.definitions.items() if k != wrt}
    taken = {wrt.name} | {s.name for s in defs}
    taken |= set().union(*(_names_in(e) for e in defs.values()))
    builder = _Builder(taken=taken)
    rules: dict[sp.Symbol, Rule] = {}
    leaves: dict[sp.Symbol, set[sp.Symbol]] = {}  # the inputs each name has, written out
    for u in dependency_order(defs):
        e = defs[u]
        used = [v for v in defs if v in e.free_symbols]  # in typed order, as diff_program
        leaves[u] = (e.free_symbols - set(used)).union(*(leaves[v] for v in used))
        via = [v for v in used if v in rules]
        if not via:
            if e.has(wrt):
                rules[u] = builder.build(e, wrt)
            continue
        terms = tuple(
            PathTerm(
                via=v,
                partial=builder.build(e, v),
                total=RateRule(expr=v, wrt=wrt, partial=bool(leaves[v] - {wrt})),
            )
            for v in via
        )
        direct = builder.build(e, wrt) if e.has(wrt) else None
        rules[u] = MultivariableChainRule(
            expr=e, wrt=wrt, output=u, terms=terms, direct=direct, definitions=defs
        )
    return rules


def _names_in(expr: sp.Expr) -> set[str]:
    return {s.name for s in expr.free_symbols}


def _inliner(defs: dict[sp.Symbol, sp.Expr]) -> Callable[[sp.Expr], sp.Expr]:
    inlined = inline_definitions(defs)
    return lambda expr: expr.xreplace(inlined)


def _log_base(expr: sp.Expr, x: sp.Symbol) -> tuple[sp.Expr, sp.Expr, sp.Expr] | None:
    """k·log(g)/log(a) -> (k, a, g): SymPy stores log_a g that way."""
    const, dep = expr.as_independent(x, as_Add=False)
    if dep.func is not sp.log:
        return None
    for factor in sp.Mul.make_args(const):
        if factor.is_Pow and factor.exp == -1 and factor.base.func is sp.log:
            return sp.simplify(const * factor.base), factor.base.args[0], dep.args[0]
    return None


def _decompose(
    expr: sp.Expr, x: sp.Symbol
) -> tuple[Callable[[sp.Symbol], sp.Expr] | None, sp.Expr]:
    """expr = f(g(x)) -> (f, g) when x enters only through one argument g, else (None, x)."""
    func = expr.func
    if func is sp.Abs and not expr.args[0].is_real:
        return None, x  # |g| of a complex g has no chain rule: the whole node is unknown
    if func in ELEMENTARY or func in (sp.exp, sp.log):
        return func, expr.args[0]
    if func is sp.Pow:
        base, exponent = expr.args
        if not exponent.has(x):
            return (lambda u: u**exponent), base
        if not base.has(x):
            return (lambda u: base**u), exponent
    split = _log_base(expr, x) if func is sp.Mul else None
    if split is not None and split[0] == 1:
        return (lambda u: sp.log(u) / sp.log(split[1])), split[2]
    return None, x


@dataclass
class _Builder:
    """Holds what one derivation shares: the names already taken by fresh variables."""

    taken: set[str]
    _fresh: Iterator[str] = field(init=False)

    def __post_init__(self):
        def names():
            yield from _NAMES
            for i in range(1, 10**6):
                yield from (f"{n}{i}" for n in _NAMES)

        self._fresh = (n for n in names() if n not in self.taken)

    def fresh(self, stands_for: sp.Expr) -> sp.Symbol:
        name = next(self._fresh)
        self.taken.add(name)
        return sp.Symbol(name, real=True) if stands_for.is_real else sp.Symbol(name)

    def build(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        check_time("building the derivation")
        if not expr.has(x):
            return ConstantRule(expr=expr, wrt=x)
        if expr == x:
            return IdentityRule(expr=expr, wrt=x)
        handler = _HANDLERS.get(expr.func)
        if handler is None and expr.func in ELEMENTARY:  # a function of the op table
            handler = _Builder.function
        if handler is None:
            return UnknownRule(expr=expr, wrt=x)
        return handler(self, expr, x)

    def chain(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        """Peel f(g(h(x))) into links y = f(u), u = g(v), ... until the argument is x or not a
        composition; the innermost argument's derivative is the last factor."""
        links, current = [], expr
        outer_of, inner = _decompose(current, x)
        while outer_of is not None and inner != x:
            u = self.fresh(inner)
            links.append(ChainLink(variable=u, definition=inner, outer=self.build(outer_of(u), u)))
            current = inner
            outer_of, inner = _decompose(current, x)
        return ChainRule(expr=expr, wrt=x, links=tuple(links), inner=self.build(current, x))

    def add(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        ordered = expr.as_ordered_terms() if len(expr.args) <= ORDERED_TERMS_MAX else expr.args
        terms = tuple(self.build(t, x) for t in ordered)
        return SumRule(expr=expr, wrt=x, terms=terms)

    def mul(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        log_base = _log_base(expr, x)
        if log_base is not None and log_base[0] == 1:
            _, base, argument = log_base
            if argument == x:
                return LogRule(expr=expr, wrt=x, argument=x, base=base)
            return self.chain(expr, x)
        const, dep = expr.as_independent(x, as_Add=False)
        if const != 1:
            return ConstantMultipleRule(
                expr=expr, wrt=x, constant=const, substep=self.build(dep, x)
            )
        factors = dep.as_ordered_factors()
        below = [f for f in factors if f.is_Pow and f.exp.is_negative and f.base.has(x)]
        above = [f for f in factors if f not in below]
        if above and below:
            numerator = self.build(sp.Mul(*above), x)
            denominator = self.build(sp.Mul(*(1 / f for f in below)), x)
            return QuotientRule(expr=expr, wrt=x, numerator=numerator, denominator=denominator)
        return ProductRule(expr=expr, wrt=x, factors=tuple(self.build(f, x) for f in factors))

    def pow(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        base, exponent = expr.args
        if base.has(x) and exponent.has(x):
            log_step = self.build(exponent * sp.log(base), x)
            return LogDiffRule(expr=expr, wrt=x, base=base, exponent=exponent, log_step=log_step)
        if base == x:
            return PowerRule(expr=expr, wrt=x, base=x, exponent=exponent)
        if exponent == x:
            return ExpRule(expr=expr, wrt=x, base=base, exponent=x)
        return self.chain(expr, x)

    def exp(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        if expr.args[0] == x:
            return ExpRule(expr=expr, wrt=x, base=sp.E, exponent=x)
        return self.chain(expr, x)

    def log(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        if expr.args[0] == x:
            return LogRule(expr=expr, wrt=x, argument=x)
        return self.chain(expr, x)

    def function(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        argument = expr.args[0]
        if expr.func is sp.Abs and not argument.is_real:
            return UnknownRule(expr=expr, wrt=x)  # |z| has no derivative for complex z
        if argument != x:
            return self.chain(expr, x)
        rule = ELEMENTARY[expr.func].rule
        return rule(expr=expr, wrt=x, function=expr.func, argument=x)

    def extremum(self, expr: sp.Expr, x: sp.Symbol) -> Rule:
        arguments = tuple(self.build(a, x) for a in expr.args)
        return ExtremumRule(expr=expr, wrt=x, arguments=arguments, largest=expr.func is sp.Max)

    def total(self, expr, output, x, defs, inline) -> Rule:
        """dz/dx for z = expr(intermediates): one term ∂z/∂u · du/dx per intermediate u."""
        via = [u for u in defs if u in expr.free_symbols and inline(defs[u]).has(x)]
        if not via:
            return self.build(expr, x)
        terms = tuple(
            PathTerm(
                via=u, partial=self.build(expr, u), total=self.total(defs[u], u, x, defs, inline)
            )
            for u in via
        )
        direct = self.build(expr, x) if expr.has(x) else None
        return MultivariableChainRule(
            expr=expr, wrt=x, output=output, terms=terms, direct=direct, definitions=defs
        )


_HANDLERS: dict[type, Callable[[_Builder, sp.Expr, sp.Symbol], Rule]] = {
    sp.Add: _Builder.add,
    sp.Mul: _Builder.mul,
    sp.Pow: _Builder.pow,
    sp.exp: _Builder.exp,
    sp.log: _Builder.log,
    sp.Max: _Builder.extremum,
    sp.Min: _Builder.extremum,
}
