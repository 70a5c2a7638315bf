"""Hypothesis strategies for hostile typed input: token soups, expression trees, programs.

Shared by the fuzz tests and by the nightly-size run (``CHAINRULE_FUZZ_EXAMPLES=10000``).
"""

from __future__ import annotations

from hypothesis import strategies as st

# Everything a user might type, well-formed or not: numbers (huge, tiny, malformed), names,
# function names, operators, brackets, superscripts, look-alikes, fullwidth and invisible
# characters, markup.
NUMBERS = [
    "0",
    "1",
    "2",
    "3",
    "10",
    "0.5",
    ".5",
    "1.",
    "1e3",
    "1e-3",
    "1e999",
    "9",
    "1..2",
    "1.2.3",
    "99999999999999999999",
    "٣",
    "２",
    "1e99999999",
]
NAMES = [
    "x",
    "y",
    "z",
    "w",
    "b",
    "t",
    "w1",
    "b_2",
    "xy",
    "θ",
    "pi",
    "π",
    "e",
    "sigma",
    "σ",
    "Χ",
    "ο",
    "ｘ",
    "х",
    "eval",
    "_x",
    "__import__",
]
FUNCS = [
    "sin",
    "cos",
    "tan",
    "sec",
    "csc",
    "cot",
    "asin",
    "acos",
    "atan",
    "sinh",
    "cosh",
    "tanh",
    "acosh",
    "atanh",
    "exp",
    "log",
    "ln",
    "sqrt",
    "cbrt",
    "abs",
    "sigmoid",
    "relu",
    "softplus",
    "max",
    "min",
    "erf",
    "arcsin",
    "coth",
]
OPS = ["+", "-", "*", "/", "^", "**", "(", ")", "[", "]", "|", ",", "=", ";", "\n", "√", "²",
       "³", "⁻¹", "·", "×", "÷", "−", "'", "$", "<", ">", "\\", "{", "}", "\u200b", "\u00a0",
       "（"]  # fmt: skip

TOKENS = st.sampled_from(NUMBERS + NAMES + FUNCS + OPS)
SPACES = st.sampled_from(["", "", " "])


@st.composite
def soups(draw, max_tokens: int = 24) -> str:
    """A random sequence of tokens, mostly malformed."""
    tokens = draw(st.lists(st.tuples(TOKENS, SPACES), max_size=max_tokens))
    return "".join(t + s for t, s in tokens)


LEAVES = st.sampled_from(["x", "y", "2", "3", "0.5", "1", "0", "-1", "-2", "e", "pi", "w1"])
UNARY = st.sampled_from([f for f in FUNCS if f not in ("max", "min", "arcsin")])


def _extend(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "^", " "]), children)
    return st.one_of(
        binary.map(lambda t: f"({t[0]}){t[1]}({t[2]})"),
        st.tuples(UNARY, children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["max", "min"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"
        ),
        children.map(lambda c: f"-({c})"),
        children.map(lambda c: f"|{c}|"),
    )


def trees(max_leaves: int = 12) -> st.SearchStrategy[str]:
    """A well-formed expression in x (and y, w1), built from the functions and operators."""
    return st.recursive(LEAVES, _extend, max_leaves=max_leaves)


@st.composite
def programs(draw, max_statements: int = 5) -> tuple[str, str]:
    """A short backprop program over inputs x, w and its --at string: each statement uses
    earlier names; the last one is the output L."""
    n = draw(st.integers(1, max_statements))
    names = ["x", "w"]
    statements = []
    for i in range(n):
        expr = draw(trees(max_leaves=4))
        expr = expr.replace("y", draw(st.sampled_from(names))).replace("w1", names[-1])
        target = "L" if i == n - 1 else f"a{i}"
        statements.append(f"{target} = {expr}")
        names.append(target)
    value = st.sampled_from(["-2", "-1", "-0.5", "0", "0.5", "1", "2", "3"])
    at = f"x={draw(value)},w={draw(value)}"
    return "; ".join(statements), at
