"""The locator on generated expressions: one step of the derivation made wrong on purpose, the
answer it leads to, and where the locator says that answer departs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chainrule.symbolic import rules as R
from chainrule.symbolic.steps import diff_steps
from chainrule.web.answers import same_values, step_sampler
from chainrule.web.locate import locate

x = sp.Symbol("x", real=True)
UNARY = [sp.sin, sp.cos, sp.exp, sp.log, sp.sqrt, lambda e: e**2, lambda e: e**3, lambda e: 1 / e]
BINARY = [sp.Add, sp.Mul, lambda a, b: a / b]
leaves = st.sampled_from([x, x, x + 1, 2 * x, x**2])


def _nested(depth: int) -> st.SearchStrategy[sp.Expr]:
    strategy = leaves
    for _ in range(depth):
        children = strategy
        strategy = st.one_of(
            st.builds(lambda f, e: f(e), st.sampled_from(UNARY), children),
            st.builds(lambda f, a, b: f(a, b), st.sampled_from(BINARY), children, children),
        )
    return strategy


expressions = (
    st.integers(1, 3).flatmap(_nested).filter(lambda e: e.has(x) and e.is_finite is not False)
)


@contextmanager
def _wrong(step: R.Rule, extra: sp.Expr) -> Iterator[None]:
    """While inside, ``step`` (and no other step) evaluates to its result plus ``extra``."""
    cls = type(step)
    right = cls.eval

    def eval_(self: R.Rule) -> sp.Expr:
        value = right(self)
        return value + extra if self is step else value

    cls.eval = eval_  # type: ignore[method-assign]
    try:
        yield
    finally:
        cls.eval = right  # type: ignore[method-assign]


def _path(root: R.Rule, target: R.Rule) -> tuple[R.Rule, ...]:
    stack: list[tuple[R.Rule, tuple[R.Rule, ...]]] = [(root, (root,))]
    while stack:
        node, path = stack.pop()
        if node is target:
            return path
        stack.extend((child, (*path, child)) for child in node.substeps())
    raise AssertionError(f"{target} is not in the tree")


@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
@given(expressions, st.integers(0, 40), st.sampled_from([sp.atan(x), -sp.sinh(x)]))
def test_the_step_named_is_the_wrong_one_or_one_that_contains_it(expr, pick, extra) -> None:
    """One leaf step's result is made wrong; the answer that follows departs, says the
    locator, at that step or at a step above it (when the split is ambiguous), never elsewhere.
    The slips use functions the expressions never contain, so SymPy cannot merge them with
    other terms. (A slip by a number, such as a lost sign or 5 for d/dx 5, is ambiguous once
    SymPy merges it with other numbers; the tables in test_check_practice_train.py pin such
    cases down.)"""
    root = diff_steps(expr, x)
    leaves = [r for r in root.walk() if not r.substeps() and not isinstance(r, R.ConstantRule)]
    if not leaves:
        return
    leaf = leaves[pick % len(leaves)]
    with _wrong(leaf, extra):
        answer = root.eval()
    sample = step_sampler([x])
    if same_values(sample(answer), sample(root.eval())):  # the slip changed nothing there
        assert locate(root, answer, sample, same_values) is None
        return
    found = locate(root, answer, sample, same_values)
    assert found is not None
    assert any(step is found.rule for step in _path(root, leaf)), (expr, leaf, found)
    assert found.path[0] is root and found.path[-1] is found.rule


@pytest.mark.parametrize(
    ("expr", "wrong"),
    [
        ((x**2 + 1) ** 3, R.PowerRule),
        (sp.sin(x) * x**2, R.TrigRule),
        (sp.exp(x**2), R.ExpRule),
        (sp.sin(x) / (x + 1), R.TrigRule),
        (sp.log(sp.cos(x)) + x**2, R.TrigRule),
    ],
)
def test_a_wrong_leaf_is_named_itself(expr, wrong) -> None:
    root = diff_steps(expr, x)
    leaf = next(r for r in root.walk() if isinstance(r, wrong))
    with _wrong(leaf, x**3):
        answer = root.eval()
    found = locate(root, answer, step_sampler([x]), same_values)
    assert found is not None and found.rule is leaf and found.reason == "leaf"
