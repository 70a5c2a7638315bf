"""The rule tree of a derivation: one frozen dataclass per named rule, keyword-only fields.

Every rule knows the expression it differentiates (``expr``), the variable (``wrt``) and its
sub-steps; ``eval()`` returns the derivative as a SymPy expression. ``ELEMENTARY``, the table
of elementary derivatives f'(u), is derived from the op table. Builds nothing (see steps.py),
prints nothing (render.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial, reduce
from operator import mul
from typing import Any

import sympy as sp

from chainrule.ops import NAMES
from chainrule.symbolic.functions import OpTable, derivative, op_of, sympy_function
from chainrule.symbolic.parse import inline_definitions


@dataclass(frozen=True, kw_only=True)
class Rule:
    """d/dx expr: a node of the derivation tree."""

    expr: sp.Expr
    wrt: sp.Symbol

    def eval(self) -> sp.Expr:
        raise NotImplementedError

    def substeps(self) -> tuple[Rule, ...]:
        """The rules this step relies on, in reading order."""
        return ()

    def walk(self) -> Iterator[Rule]:
        """Every node of the tree, parents first (iterative, so deep trees are fine)."""
        stack: list[Rule] = [self]
        while stack:
            node = stack.pop()
            yield node
            stack.extend(reversed(node.substeps()))


@dataclass(frozen=True, kw_only=True)
class ConstantRule(Rule):
    """d/dx c = 0 (c does not depend on x)."""

    def eval(self):
        return sp.S.Zero


@dataclass(frozen=True, kw_only=True)
class IdentityRule(Rule):
    """d/dx x = 1."""

    def eval(self):
        return sp.S.One


@dataclass(frozen=True, kw_only=True)
class ConstantMultipleRule(Rule):
    """d/dx (c·f) = c·f'."""

    constant: sp.Expr
    substep: Rule

    def eval(self):
        return self.constant * self.substep.eval()

    def substeps(self):
        return (self.substep,)


@dataclass(frozen=True, kw_only=True)
class SumRule(Rule):
    """d/dx (f + g + ...) = f' + g' + ..."""

    terms: tuple[Rule, ...]

    def eval(self):
        return sp.Add(*(t.eval() for t in self.terms))

    def substeps(self):
        return self.terms


@dataclass(frozen=True, kw_only=True)
class PowerRule(Rule):
    """d/dx x^n = n·x^(n-1) (n constant: negative, fractional, √x = x^(1/2))."""

    base: sp.Expr
    exponent: sp.Expr

    def eval(self):
        return self.exponent * self.base ** (self.exponent - 1)


@dataclass(frozen=True, kw_only=True)
class ExpRule(Rule):
    """d/dx e^x = e^x;  d/dx a^x = a^x·ln a."""

    base: sp.Expr
    exponent: sp.Expr

    def eval(self):
        return self.base**self.exponent * sp.log(self.base)


@dataclass(frozen=True, kw_only=True)
class LogRule(Rule):
    """d/dx ln x = 1/x;  d/dx log_a x = 1/(x·ln a)."""

    argument: sp.Expr
    base: sp.Expr = sp.E

    def eval(self):
        return 1 / (self.argument * sp.log(self.base))


@dataclass(frozen=True, kw_only=True)
class FunctionRule(Rule):
    """d/dx f(x) = f'(x), with f' from the ELEMENTARY table."""

    function: type[sp.Function]
    argument: sp.Expr

    def eval(self):
        return ELEMENTARY[self.function].derivative(self.argument)


class TrigRule(FunctionRule):
    """d/dx sin x = cos x, cos → -sin, tan → sec², sec → sec·tan, csc → -csc·cot, cot → -csc²."""


class InverseTrigRule(FunctionRule):
    """d/dx asin x = 1/√(1-x²), acos → -1/√(1-x²), atan → 1/(1+x²), acot → -1/(1+x²)."""


class HyperbolicRule(FunctionRule):
    """d/dx sinh x = cosh x, cosh → sinh, tanh → 1 - tanh², and their inverses."""


class SigmoidRule(FunctionRule):
    """d/dx σ(x) = σ(x)(1 - σ(x))."""


class SoftplusRule(FunctionRule):
    """d/dx softplus(x) = σ(x)."""


class ReluRule(FunctionRule):
    """d/dx relu(x) = 1 for x > 0, 0 for x < 0; relu'(0) := 0 (as in PyTorch)."""


class AbsRule(FunctionRule):
    """d/dx |x| = sign(x) for real x; sign(0) := 0 at the kink."""


class NamedFunctionRule(FunctionRule):
    """d/dx f(x) = f'(x) for a function of the op table with its own name (GELU, erf, floor)."""

    @property
    def title(self) -> str:
        """The rule's name from the op table (``"GELU"``), else the function's name."""
        op = op_of(self.function)
        return (op.rule or op.name) if op is not None else str(self.function)

    @property
    def kink(self) -> str:
        """Where the derivative does not exist and what chainrule uses there ("" if nowhere)."""
        op = op_of(self.function)
        return op.kink if op is not None else ""


@dataclass(frozen=True)
class Elementary:
    """One row of the table: the rule class that names the step and f'(u)."""

    rule: type[FunctionRule]
    derivative: Callable[[sp.Expr], sp.Expr]


_RULES: dict[str, type[FunctionRule]] = {
    cls.__name__: cls
    for cls in (
        TrigRule,
        InverseTrigRule,
        HyperbolicRule,
        SigmoidRule,
        SoftplusRule,
        ReluRule,
        AbsRule,
    )
}


def _elementary() -> dict[Any, Elementary]:
    """A row per one-argument function of the op table (exp and ln have rules of their own)."""
    rows = {}
    for op in dict.fromkeys(NAMES.values()):
        head = sympy_function(op)
        if op.expand or op.arity != 1 or head in (sp.exp, sp.log):
            continue
        rows[head] = Elementary(
            rule=_RULES.get(op.rule, NamedFunctionRule), derivative=partial(derivative, op)
        )
    return rows


# The elementary derivatives f'(u), derived from the op table (kept current as ops are added).
ELEMENTARY: OpTable[Elementary] = OpTable(_elementary)


@dataclass(frozen=True, kw_only=True)
class ProductRule(Rule):
    """d/dx (f·g) = f'·g + f·g' (and f'gh + fg'h + fgh' for more factors)."""

    factors: tuple[Rule, ...]

    def eval(self):
        values = [f.expr for f in self.factors]
        return sp.Add(
            *(
                reduce(mul, [*values[:i], f.eval(), *values[i + 1 :]], sp.S.One)
                for i, f in enumerate(self.factors)
            )
        )

    def substeps(self):
        return self.factors


@dataclass(frozen=True, kw_only=True)
class QuotientRule(Rule):
    """d/dx (f/g) = (f'·g - f·g') / g²."""

    numerator: Rule
    denominator: Rule

    def eval(self):
        f, g = self.numerator.expr, self.denominator.expr
        return (self.numerator.eval() * g - f * self.denominator.eval()) / g**2

    def substeps(self):
        return (self.numerator, self.denominator)


@dataclass(frozen=True, kw_only=True)
class ExtremumRule(Rule):
    """d/dx max(f, g) = [f > g]·f' + [g > f]·g' (min: [f < g]·f' + ...); at a tie each argument
    gets half, as the engine's maximum and minimum do."""

    arguments: tuple[Rule, ...]
    largest: bool  # max (True) or min (False)

    def weight(self, i: int) -> sp.Expr:
        """[argument i wins]: a Heaviside step per other argument, 1/2 at a tie."""
        sign = 1 if self.largest else -1
        mine = self.arguments[i].expr
        others = [a.expr for j, a in enumerate(self.arguments) if j != i]
        return sp.Mul(*(sp.Heaviside(sign * (mine - b), sp.S.Half) for b in others))

    def eval(self):
        return sp.Add(*(self.weight(i) * a.eval() for i, a in enumerate(self.arguments)))

    def substeps(self):
        return self.arguments


@dataclass(frozen=True, kw_only=True)
class ChainLink:
    """One link y = f(u) of a chain: ``variable`` u stands for ``definition`` (in x).

    ``outer`` differentiates f(u) with respect to u.
    """

    variable: sp.Symbol
    definition: sp.Expr
    outer: Rule


@dataclass(frozen=True, kw_only=True)
class ChainRule(Rule):
    """dy/dx = dy/du · du/dv · ... · dv/dx, each factor at u = g(x), v = h(x), ..."""

    links: tuple[ChainLink, ...]
    inner: Rule

    def factors(self, *, evaluate: bool = True) -> list[sp.Expr]:
        """The factors dy/du, du/dv, ..., dv/dx, each written in x.

        ``evaluate=False`` keeps SymPy from distributing, so 2(3x + 2) does not become 6x + 4.
        """
        outer = [ln.outer.eval() for ln in self.links]
        with sp.evaluate(evaluate):
            subs = [f.xreplace({ln.variable: ln.definition}) for f, ln in zip(outer, self.links)]
        return [*subs, self.inner.eval()]

    def eval(self):
        return sp.Mul(*self.factors())

    def substeps(self):
        return (*(ln.outer for ln in self.links), self.inner)


@dataclass(frozen=True, kw_only=True)
class LogDiffRule(Rule):
    """y = f^g: ln y = g·ln f, so y' = f^g · (g·ln f)' (logarithmic differentiation)."""

    base: sp.Expr
    exponent: sp.Expr
    log_step: Rule  # d/dx (g·ln f)

    def eval(self):
        return self.expr * self.log_step.eval()

    def substeps(self):
        return (self.log_step,)


@dataclass(frozen=True, kw_only=True)
class UnknownRule(Rule):
    """No named rule applies; SymPy's ``diff`` gives the answer and the step says so."""

    def eval(self):
        return sp.diff(self.expr, self.wrt)


class Rate(sp.Symbol):
    """du/dx as one symbol (named ``du/dx``, or ``∂u/∂x`` when u has other inputs): the derivative
    of an intermediate, worked out in its own step, so a later step can use it without writing
    it out again. Printed as a fraction by mathprint; build one with ``rate``."""

    def parts(self) -> tuple[str, str, str]:
        """(d, u, x): the d or ∂, and the names of the intermediate and the variable."""
        d = self.name[0]
        u, _, x = self.name[1:].partition("/" + d)
        return d, u, x


def rate(u: sp.Symbol, x: sp.Symbol, is_partial: bool = False) -> Rate:
    """The symbol du/dx (∂u/∂x when ``is_partial``).

    >>> rate(sp.Symbol("a1"), sp.Symbol("x")).parts()
    ('d', 'a1', 'x')
    """
    d = "∂" if is_partial else "d"
    return Rate(f"{d}{u.name}/{d}{x.name}", real=True)


@dataclass(frozen=True, kw_only=True)
class RateRule(Rule):
    """du/dx of an intermediate u, found in an earlier step: its value is the symbol du/dx
    (``partial``: ∂u/∂x, when u has inputs other than x)."""

    partial: bool = False

    def eval(self):
        return rate(self.expr, self.wrt, self.partial)


@dataclass(frozen=True, kw_only=True)
class PathTerm:
    """One term ∂z/∂u · du/dx of the multivariable chain rule."""

    via: sp.Symbol
    partial: Rule  # ∂z/∂u, other inputs held fixed
    total: Rule  # du/dx (itself a MultivariableChainRule when u depends on intermediates)


@dataclass(frozen=True, kw_only=True)
class MultivariableChainRule(Rule):
    """dz/dx = Σ_u ∂z/∂u · du/dx (+ ∂z/∂x when z also uses x directly).

    ``expr`` is written in the intermediates; ``definitions`` maps each intermediate to its
    right-hand side, and ``eval()`` stays in the intermediates, as the seeds do before they
    substitute back.
    """

    output: sp.Symbol
    terms: tuple[PathTerm, ...]
    direct: Rule | None = None
    definitions: Mapping[sp.Symbol, sp.Expr] = field(default_factory=dict)

    def inlined(self, e: sp.Expr | None = None) -> sp.Expr:
        """``e`` (default: ``expr``) with the intermediates substituted until only leaves remain."""
        e = self.expr if e is None else e
        return e.xreplace(inline_definitions(self.definitions))

    def eval(self):
        total = sp.Add(*(t.partial.eval() * t.total.eval() for t in self.terms))
        return total + (self.direct.eval() if self.direct else 0)

    def substeps(self):
        steps = [s for t in self.terms for s in (t.partial, t.total)]
        return (*steps, self.direct) if self.direct else tuple(steps)
