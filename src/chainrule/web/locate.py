"""Where a wrong derivative departs from the derivation, when it matches no known mistake.

The walk follows the rule tree the Derive view shows. At each step the learner's answer is
split the way that rule combines its sub-results (a sum's terms, the product rule's f'g and
fg', the quotient rule's numerator, the chain rule's factors dy/du and du/dx), each piece is
compared numerically with the sub-result it should equal, and when exactly one sub-result is
contradicted the walk goes down into it, with the value the answer implies for it (the answer
solved for that sub-result, the others taken as right). It stops at the deepest step whose
result the answer contradicts. Numbers only, at the checker's sample points; no simplify.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import sympy as sp

from chainrule.symbolic import rules as R
from chainrule.symbolic.parse import inline_definitions

Sample = Callable[[sp.Expr], np.ndarray]  # an expression in the inputs -> values at the points
Same = Callable[[np.ndarray, np.ndarray], bool]
Env = Mapping[sp.Symbol, sp.Expr]  # a chain's u, a program's intermediates -> the inputs

MAX_PARTS = 10  # pieces of an answer tried in groups (2**10 subsets per sub-result at most)


@dataclass(frozen=True)
class Departure:
    """The deepest step whose result the answer contradicts.

    ``reason``: "leaf" (a step without sub-steps: its result is wrong), "step" (its sub-results
    are right, so the way this step combines them is wrong),
    "missing" (a sub-result does not appear in the answer at all), "several" (more than one
    sub-result is contradicted, or the answer does not split along the rule).
    ``path``: the steps walked through, from the root down to ``rule``.
    """

    rule: R.Rule
    reason: str
    path: tuple[R.Rule, ...]


@dataclass(frozen=True)
class _Part:
    """One sub-result of a step: its right value and its sub-step; ``target`` solves the
    step's answer for this sub-result, the others taken as right."""

    want: sp.Expr
    child: R.Rule
    env: Env
    target: Callable[[sp.Expr], sp.Expr]


@dataclass(frozen=True)
class _Split:
    op: str  # "add": the answer is the sum of the parts; "mul": their product
    parts: tuple[_Part, ...]
    prepare: Callable[[sp.Expr], sp.Expr] = lambda y: y  # what is split (Y·g² for a quotient)


def locate(root: R.Rule, answer: sp.Expr, sample: Sample, same: Same) -> Departure | None:
    """The step of ``root`` where ``answer`` (a wrong d root.expr) departs, or None when it
    agrees with the root (nothing to locate)."""
    rule, y = root, answer
    env: Env = {}
    path: list[R.Rule] = []
    while True:
        path.append(rule)
        if same(sample(y), sample(_in(rule.eval(), env))):
            return None if len(path) == 1 else _departure(path[:-1], "several")
        make = _SPLITS.get(type(rule))
        if make is None:  # a leaf: this step's own result is contradicted
            return _departure(path, "leaf")
        split = make(rule, env)
        if len(split.parts) == 1:  # c·f' or y·(g ln f)': the answer solved for the one sub-step
            part = split.parts[0]
            target = part.target(y)
            if sp.count_ops(target) > sp.count_ops(y):  # x/y for (xy)' = x: the c is what's off
                return _departure(path, "step")
            rule, y, env = part.child, target, part.env
            continue
        pieces = split.prepare(y)
        unmatched, leftover = _match(split, pieces, sample, same)
        loose = len(unmatched) > 1 and split.op == "mul"  # 6x(x² + 1): 3·2 merged in one number
        compare = _same_ratio if loose else same  # loose: only a factor that differs more
        if loose:
            unmatched, leftover = _match(split, pieces, sample, compare)
        if len(unmatched) != 1:
            return _departure(path, "step" if not unmatched and not loose else "several")
        part = split.parts[unmatched[0]]
        others = (j for j in range(len(split.parts)) if j != unmatched[0])
        # a constant term's 0 is always matched by nothing: when the leftover is that constant
        # copied (d/dx 5 = 5), _match chose it over the other terms on purpose
        copied = split.op == "add" and same(sample(part.want), np.zeros(len(sample(y))))
        if not copied and any(
            not _match(split, pieces, sample, compare, skip=j)[0] for j in others
        ):
            return _departure(path, "several")  # the pieces also fit another sub-result wrong
        if split.op == "mul" and _only_a_number_differs(part, leftover, sample):
            return _departure(path, "several")  # -3 sin(x+1): the 3 may be any factor's
        if not leftover:  # the sub-result is left out altogether, if the rest is exactly right
            rest = [sample(p.want) for p in split.parts if p is not part]
            unit = 0.0 if split.op == "add" else 1.0
            combine = np.add if split.op == "add" else np.multiply
            whole = _fold(combine, rest, unit, rest[0].shape)
            return _departure(path, "missing" if same(sample(pieces), whole) else "several")
        rule, y, env = part.child, part.target(y), part.env


def _only_a_number_differs(part: _Part, leftover: list[sp.Expr], sample: Sample) -> bool:
    """The pieces left for ``part`` are its value times a number: a number written into one
    factor of a product cannot be told from one written into another."""
    # a number of the learner's own (3 in 3(x² + 1)²·x went to dy/du exactly) is left alone;
    # a number left over, or distributed into a sum (6x + 6), may belong anywhere
    if not any(p.is_number or (p.is_Add and p.as_content_primitive()[0] != 1) for p in leftover):
        return False
    return _same_ratio(sample(sp.Mul(*leftover)), sample(part.want))


def _departure(path: list[R.Rule], reason: str) -> Departure:
    """At the last real step of the path (a path term of a program is not a step of its own)."""
    while len(path) > 1 and isinstance(path[-1], _PathTerm):
        path = path[:-1]
    return Departure(path[-1], reason, tuple(path))


def _same_ratio(a: np.ndarray, b: np.ndarray) -> bool:
    """a = c·b for one number c ≠ 0 (a factor matched up to the numbers multiplied into it)."""
    ok = np.isfinite(a) & np.isfinite(b) & (b != 0)
    if int(ok.sum()) < 3:
        return False
    ratio = a[ok] / b[ok]
    return bool(ratio[0] != 0 and np.allclose(ratio, ratio[0], rtol=1e-7, atol=0))


def _in(e: sp.Expr, env: Env) -> sp.Expr:
    return e.xreplace(env) if env else e


def _pieces(e: sp.Expr, op: str, numbers: bool) -> list[sp.Expr]:
    """The answer's own terms (or factors): how the learner wrote it, not re-arranged."""
    if op == "add":
        return list(sp.Add.make_args(e))
    coeff, rest = e.as_coeff_Mul()
    return ([coeff] if coeff != 1 and numbers else []) + list(sp.Mul.make_args(rest))


def _match(
    split: _Split, y: sp.Expr, sample: Sample, same: Same, skip: int | None = None
) -> tuple[list[int], list[sp.Expr]]:
    """Give each sub-result (but ``skip``) the smallest group of the answer's pieces that adds
    (multiplies) up to it; returns the sub-results no group matches and the pieces left."""
    pieces = _pieces(y, split.op, numbers=same is not _same_ratio)
    wants = [sample(p.want) for p in split.parts]
    if len(pieces) > MAX_PARTS:
        return list(range(len(wants))), pieces
    values = [sample(p) for p in pieces]
    combine = np.add if split.op == "add" else np.multiply
    unit = 0.0 if split.op == "add" else 1.0
    left = list(range(len(pieces)))
    unmatched = []
    units = [k for k, w in enumerate(wants) if same(w, np.full(w.shape, unit))]
    order = [k for k in range(len(wants)) if k not in units and k != skip]
    order += [k for k in units if k != skip]
    for k in order:
        want = wants[k]
        group = next(
            (
                g
                for size in range(len(left) + 1)
                for g in itertools.combinations(left, size)
                if same(_fold(combine, [values[i] for i in g], unit, want.shape), want)
            ),
            None,
        )
        if group is None:
            unmatched.append(k)
        else:
            left = [i for i in left if i not in group]
    if left and not unmatched and split.op == "add":
        # the learner's d/dx 5 = 5: what is left over is a constant term, copied unchanged
        extra = _fold(np.add, [values[i] for i in left], 0.0, wants[0].shape)
        copied = [_in(split.parts[k].child.expr, split.parts[k].env) for k in units]
        kept = [k for k, c in zip(units, copied) if same(extra, sample(c))]
        unmatched = kept if len(kept) == 1 else []
    return sorted(unmatched), [pieces[i] for i in left]


def _fold(combine, arrays: Sequence[np.ndarray], unit: float, shape) -> np.ndarray:
    out = np.full(shape, unit)
    for a in arrays:
        out = combine(out, a)
    return out


# -- how each rule combines its sub-results ---------------------------------------------------


def _sum(rule: R.SumRule, env: Env) -> _Split:
    derivs = [_in(t.eval(), env) for t in rule.terms]

    def part(k: int) -> _Part:
        others = sp.Add(*(d for j, d in enumerate(derivs) if j != k))
        return _Part(derivs[k], rule.terms[k], env, lambda y: y - others)

    return _Split("add", tuple(part(k) for k in range(len(derivs))))


def _constant_multiple(rule: R.ConstantMultipleRule, env: Env) -> _Split:
    c = _in(rule.constant, env)
    return _Split(
        "mul", (_Part(_in(rule.substep.eval(), env), rule.substep, env, lambda y: y / c),)
    )


def _product(rule: R.ProductRule, env: Env) -> _Split:
    values = [_in(f.expr, env) for f in rule.factors]
    derivs = [_in(f.eval(), env) for f in rule.factors]
    terms = [sp.Mul(derivs[i], *values[:i], *values[i + 1 :]) for i in range(len(values))]

    def part(k: int) -> _Part:  # f_k' = (Y - the other terms) / the other factors
        others = sp.Add(*(t for j, t in enumerate(terms) if j != k))
        rest = sp.Mul(*values[:k], *values[k + 1 :])
        return _Part(terms[k], rule.factors[k], env, lambda y: (y - others) / rest)

    return _Split("add", tuple(part(k) for k in range(len(values))))


def _quotient(rule: R.QuotientRule, env: Env) -> _Split:
    f, g = _in(rule.numerator.expr, env), _in(rule.denominator.expr, env)
    df, dg = _in(rule.numerator.eval(), env), _in(rule.denominator.eval(), env)
    # the numerator f'g - fg' is split: Y·g²
    top = _Part(df * g, rule.numerator, env, lambda y: (y * g**2 + f * dg) / g)
    bottom = _Part(-f * dg, rule.denominator, env, lambda y: (df * g - y * g**2) / f)
    return _Split("add", (top, bottom), prepare=lambda y: y * g**2)


def _chain(rule: R.ChainRule, env: Env) -> _Split:
    envs = [{**env, ln.variable: _in(ln.definition, env)} for ln in rule.links]
    steps: list[tuple[R.Rule, Env]] = [(ln.outer, e) for ln, e in zip(rule.links, envs)]
    steps.append((rule.inner, env))
    factors = [_in(s.eval(), e) for s, e in steps]

    def part(k: int) -> _Part:  # dy/du = Y / (the other links)
        rest = sp.Mul(*factors[:k], *factors[k + 1 :])
        return _Part(factors[k], steps[k][0], steps[k][1], lambda y: y / rest)

    return _Split("mul", tuple(part(k) for k in range(len(factors))))


def _logdiff(rule: R.LogDiffRule, env: Env) -> _Split:
    y0 = _in(rule.expr, env)
    return _Split(
        "mul", (_Part(_in(rule.log_step.eval(), env), rule.log_step, env, lambda y: y / y0),)
    )


def _multivariable(rule: R.MultivariableChainRule, env: Env) -> _Split:
    inner = {**env, **inline_definitions(rule.definitions)}
    parts = [_PathTerm(expr=rule.expr, wrt=rule.wrt, term=t, env=inner) for t in rule.terms]
    steps: list[R.Rule] = list(parts)
    if rule.direct is not None:
        steps.append(rule.direct)
    derivs = [_in(s.eval(), inner) for s in steps]

    def part(k: int) -> _Part:
        others = sp.Add(*(d for j, d in enumerate(derivs) if j != k))
        return _Part(derivs[k], steps[k], inner, lambda y: y - others)

    return _Split("add", tuple(part(k) for k in range(len(derivs))))


@dataclass(frozen=True, kw_only=True)
class _PathTerm(R.Rule):
    """∂z/∂u · du/dx, one term of the multivariable chain rule, as a step of its own."""

    term: R.PathTerm
    env: Env

    def eval(self):
        return self.term.partial.eval() * self.term.total.eval()

    def substeps(self):
        return (self.term.partial, self.term.total)


def _path(rule: _PathTerm, env: Env) -> _Split:
    partial, total = rule.term.partial, rule.term.total
    dz, du = _in(partial.eval(), env), _in(total.eval(), env)
    return _Split(
        "mul",
        (_Part(dz, partial, env, lambda y: y / du), _Part(du, total, env, lambda y: y / dz)),
    )


_SPLITS: dict[type[R.Rule], Callable[..., _Split]] = {
    R.SumRule: _sum,
    R.ConstantMultipleRule: _constant_multiple,
    R.ProductRule: _product,
    R.QuotientRule: _quotient,
    R.ChainRule: _chain,
    R.LogDiffRule: _logdiff,
    R.MultivariableChainRule: _multivariable,
    _PathTerm: _path,
}
