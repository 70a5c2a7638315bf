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

# The default limits, except a time budget with room for a loaded machine: the table reports
# the time itself (wall and CPU), so a shared machine's load shows there, not as an error.
L = DEFAULT.with_(seconds=120)


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


def _chain(n: int, first: str, step: str) -> str:
    """a1 = first; a_i = step with {p} the statement before and {q} the one before that."""
    rest = [f"a{i} = " + step.format(p=f"a{i - 1}", q=f"a{i - 2}") for i in range(2, n + 1)]
    return "; ".join([f"a1 = {first}", *rest])


def _largest_written_out() -> tuple[int, str]:
    """The longest a_i = a_(i-1)·sin(a_(i-1)) program still written out in x (max_output)."""
    import sympy as sp

    from chainrule.symbolic.parse import parse_program
    from chainrule.symbolic.size import estimate

    n, x = 1, sp.Symbol("x", real=True)
    while True:
        program = parse_program(_chain(n + 1, "x*sin(x)", "{p}*sin({p})"))
        if estimate(program.definitions, x)[program.output].chars > L.max_output:
            return n, _chain(n, "x*sin(x)", "{p}*sin({p})")
        n += 1


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
WRITTEN = _largest_written_out()
STATEMENTS = L.max_depth // 3  # 3 levels a statement: the most written out in x (max_depth)
CASES: dict[str, tuple[str, Callable[[], object]]] = {
    "max_chars": (f"a sum of {L.max_chars} characters (x_i·sin x terms)", _explain(_longest_sum())),
    "max_depth": (
        f"sin(...) nested {L.max_depth - 1} deep",
        _explain("sin(" * (L.max_depth - 1) + "x" + ")" * (L.max_depth - 1)),
    ),
    "max_digits": ("2^3300 · x (994 digits)", _explain("2^3300 x + 9^1040 x^2")),
    "max_statements (explain)": (
        f"{STATEMENTS} sigmoid statements (the most still written out in x)",
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
    "max_output (written out)": (
        f"a_i = a_(i-1)·sin(a_(i-1)), {WRITTEN[0]} statements (the most still written out in x)",
        _explain(WRITTEN[1]),
    ),
    "max_output (by statement)": (
        "the same, 12 statements (about 37,000 characters written out): by statement",
        _explain(_chain(12, "x*sin(x)", "{p}*sin({p})")),
    ),
    "max_statements (by statement)": (
        f"{L.max_statements} sigmoid statements through explain (by statement: max_depth)",
        _explain(_short_sigmoid_program(L.max_statements)),
    ),
    "diamond (by statement)": (
        f"{L.max_statements} statements, a_i = a_(i-1)·a_(i-2) (by statement: max_output)",
        _explain("a0 = x + 1; " + _chain(L.max_statements - 1, "x*sin(x)", "{p}*{q}")),
    ),
}


def main() -> None:
    print(f"limits: {L}")
    print(f"{'limit':<30} {'wall':>7} {'CPU':>7} {'peak MB':>8}  largest accepted input")
    for limit, (what, run) in CASES.items():
        start, cpu = time.perf_counter(), time.process_time()
        run()
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        tracemalloc.start()
        run()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        print(f"{limit:<30} {elapsed:>6.2f}s {cpu:>6.2f}s {peak:>8.1f}  {what}", flush=True)


if __name__ == "__main__":
    main()
