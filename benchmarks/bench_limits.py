"""Benchmark (not a test) of the limits themselves: time and peak memory of the largest input
each limit accepts (docs/limits.md records a run). With the default limits, every request
should finish well inside the time budget.

Run: python benchmarks/bench_limits.py   (one run per case; peak memory from tracemalloc, in a
second run, so the timing is not slowed by it)
"""

from __future__ import annotations

import contextlib
import io
import time
import tracemalloc
from collections.abc import Callable

from chainrule.cli import main as cli
from chainrule.limits import DEFAULT
from chainrule.symbolic import explain

L = DEFAULT


def _longest_sum() -> str:
    """A sum of distinct terms of exactly max_chars characters."""
    terms, text = [], ""
    i = 0
    while True:
        term = f"x{i}*sin(x)"
        candidate = text + ("+" if text else "") + term
        if len(candidate) > L.max_chars:
            return text + " " * (L.max_chars - len(text))
        text, i = candidate, i + 1
        terms.append(term)


def _sigmoid_program(n: int) -> str:
    first = ["a1 = sigmoid(w1*x + b1)"]
    rest = [f"a{i} = sigmoid(w{i}*a{i - 1} + b{i})" for i in range(2, n + 1)]
    return "; ".join(first + rest)


def _short_sigmoid_program(n: int) -> str:
    """n statements sharing w and b, short enough to fit max_chars."""
    return ";".join(["a1=σ(w*x+b)"] + [f"a{i}=σ(w*a{i - 1}+b)" for i in range(2, n + 1)])


def _backprop(text: str) -> Callable[[], object]:
    def run():
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli(["backprop", text, "--at", "x=0.5,w=0.3,b=0.1"])
        assert code == 0, code
        return code

    return run


def _explain(text: str, wrt: str = "x") -> Callable[[], object]:
    def run():
        d = explain(text, wrt=wrt, limits=L)
        return d.to_text() + d.to_latex()

    return run


# limit -> (what the largest accepted input is, the request)
STATEMENTS = min(L.max_statements, 40)  # 100 sigmoid statements: explain's paths multiply
CASES: dict[str, tuple[str, Callable[[], object]]] = {
    "max_chars": (f"a sum of {L.max_chars} characters (x_i·sin x terms)", _explain(_longest_sum())),
    "max_depth": (
        f"sin(...) nested {L.max_depth - 1} deep",
        _explain("sin(" * (L.max_depth - 1) + "x" + ")" * (L.max_depth - 1)),
    ),
    "max_digits": ("2^3300 · x (994 digits)", _explain("2^3300 x + 9^1040 x^2")),
    "max_statements (explain)": (
        f"{STATEMENTS} sigmoid statements",
        _explain(_sigmoid_program(STATEMENTS)),
    ),
    "max_statements (backprop)": (
        f"{L.max_statements} sigmoid statements",
        _backprop(_short_sigmoid_program(L.max_statements)),
    ),
    "max_steps": (
        "product of 30 sin(kx) (shortened to max_steps lines)",
        _explain("*".join(f"sin({k}x)" for k in range(1, 31))),
    ),
}


def main() -> None:
    print(f"limits: {L}")
    print(f"{'limit':<28} {'time':>8} {'peak MB':>8}  largest accepted input")
    for limit, (what, run) in CASES.items():
        start = time.perf_counter()
        run()
        elapsed = time.perf_counter() - start
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"{limit:<28} {elapsed:>7.2f}s {peak:>8.1f}  {what}", flush=True)


if __name__ == "__main__":
    main()
