"""Practice exercises per rule and difficulty: the seeds' worked examples first, then generated
ones. Exercise ``index`` is deterministic (same rule, difficulty and index, same exercise), so a
learner can come back to one and tests can name one."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

RULES = ("power", "product", "quotient", "chain", "multivariable")
MAX_INDEX = 999

# (expression, where in the seeds it is worked)
SEED_EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "power": [("x^3", "seed 003 §2.1"), ("x^(-1)", "seed 003 §2.1"), ("sqrt(x)", "seed 003 §2.1")],
    "product": [("x^2*e^x", "seed 003 §3.2")],
    "quotient": [("x^2/(x+1)", "seed 003 §3.3")],
    "chain": [("(x^2+1)^3", "seed 001 §1.2"), ("sqrt(1+x^2)", "seed 001 §1.3"),
              ("e^(x^2)", "seed 003 §4.2")],
    "multivariable": [("z = (u+v)^2; u = x*y; v = x + y", "seed 001 §2.1")],
}  # fmt: skip

Maker = Callable[[random.Random, int], str]


def _c(r: random.Random, lo: int = 2, hi: int = 9) -> int:
    return r.randint(lo, hi)


def _poly(r: random.Random, level: int) -> str:
    """A small polynomial in x: a x^n + b (+ c x at level 3)."""
    text = f"{_c(r)}*x^{_c(r, 2, 2 + level)} + {_c(r, 1)}"
    return text + (f" - {_c(r, 1)}*x" if level >= 3 else "")


FUNCS = ("sin", "cos", "e^", "ln")


def _func(r: random.Random, inner: str) -> str:
    f = r.choice(FUNCS)
    return f"e^({inner})" if f == "e^" else f"{f}({inner})"


def _power(r: random.Random, level: int) -> str:
    if level == 1:
        return f"{_c(r)}*x^{_c(r, 2, 6)}"
    if level == 2:
        return f"{_c(r)}*x^{_c(r, 3, 7)} - {_c(r)}*x^{_c(r, 2, 3)} + x^(-{_c(r, 1, 3)})"
    return f"{_c(r)}*x^(1/{_c(r, 3, 5)}) + x^(-{_c(r, 2, 5)}) - {_c(r)}*x^(3/2)"


def _product(r: random.Random, level: int) -> str:
    if level == 1:
        return f"x^{_c(r, 2, 4)}*{_func(r, 'x')}"
    if level == 2:
        return f"({_poly(r, 1)})*{_func(r, 'x')}"
    f, g = r.sample(["sin(x)", "cos(x)", "e^x", "ln(x)"], 2)
    return f"x^{_c(r, 2, 3)}*{f}*{g}"


def _quotient(r: random.Random, level: int) -> str:
    if level == 1:
        return f"x^{_c(r, 1, 3)}/(x + {_c(r, 1)})"
    if level == 2:
        return f"{_func(r, 'x')}/(x^2 + {_c(r, 1)})"
    return f"({_poly(r, 2)})/({_func(r, 'x')} + {_c(r)})"


def _chain(r: random.Random, level: int) -> str:
    if level == 1:
        return f"({_c(r)}*x + {_c(r, 1)})^{_c(r, 2, 5)}"
    if level == 2:
        return _func(r, _poly(r, 1))
    return f"({_func(r, f'x^{_c(r, 2, 3)}')} + {_c(r, 1)})^{_c(r, 2, 4)}"


def _multivariable(r: random.Random, level: int) -> str:
    if level == 1:
        return f"z = u^2 + {_c(r)}*v; u = x*y; v = x + y"
    if level == 2:
        return f"z = u*v; u = x^{_c(r, 2, 3)} + y; v = {_func(r, 'x*y')}"
    return f"z = u^2*v; u = x + {_c(r)}*y; v = {_func(r, 'x - y')}"


MAKERS: dict[str, Maker] = {
    "power": _power,
    "product": _product,
    "quotient": _quotient,
    "chain": _chain,
    "multivariable": _multivariable,
}


def exercise(rule: str, difficulty: int, index: int) -> dict[str, Any]:
    """Exercise number ``index`` (0, 1, ...) for ``rule`` at ``difficulty`` 1-3."""
    if rule not in MAKERS:
        raise ValueError(f"rule: choose one of {', '.join(RULES)}")
    if difficulty not in (1, 2, 3):
        raise ValueError(f"difficulty: choose 1, 2 or 3, got {difficulty}")
    if not 0 <= index <= MAX_INDEX:
        raise ValueError(f"index: 0..{MAX_INDEX}, got {index}")
    seeds = SEED_EXAMPLES[rule] if difficulty == 1 else []
    if index < len(seeds):
        expr, source = seeds[index]
    else:
        made = _distinct(rule, difficulty, index - len(seeds) + 1, {e for e, _ in seeds})
        expr, source = made[(index - len(seeds)) % len(made)], ""
    return {"expr": expr, "wrt": "x", "source": source, "rule": rule, "difficulty": difficulty}


def _distinct(rule: str, difficulty: int, n: int, skip: set[str]) -> list[str]:
    """The first n distinct exercises of one seeded stream (fewer if the stream runs dry)."""
    rng = random.Random(f"{rule}/{difficulty}")
    out: list[str] = []
    seen = set(skip)
    for _ in range(50 * n):
        expr = MAKERS[rule](rng, difficulty)
        if expr not in seen:
            seen.add(expr)
            out.append(expr)
            if len(out) == n:
                break
    return out
