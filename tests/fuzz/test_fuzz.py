"""Fuzz: whatever a user types gets an answer or one of chainrule's own errors, in bounded time.

Random token soups and random expression trees go through ``parse``, ``explain`` and
``backprop`` and through their CLIs (in-process ``main([...])``, a few real subprocesses under
a memory limit). The property: a result, or ParseError / LimitError / backprop's InputError;
never another exception, never a traceback, never past the time budget. Hypothesis is
derandomized under CI (tests/conftest.py); ``CHAINRULE_FUZZ_EXAMPLES`` raises the number of
examples for the nightly-size run documented in docs/limits.md.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import subprocess
import sys
import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("sympy")

from fuzz_strategies import programs, soups, trees

from chainrule.cli import main
from chainrule.commands.backprop import InputError, build
from chainrule.limits import LimitError, Limits, applied
from chainrule.symbolic import ParseError, explain, parse_program

EXAMPLES = int(os.environ.get("CHAINRULE_FUZZ_EXAMPLES", "60"))
# Per case: the cooperative budget, and a wall-clock bound with room for a loaded 2-core machine.
LIMITS = Limits(seconds=5)
WALL_S = 20.0
# Memory of ONE case: the peak of what Python and NumPy allocate (tracemalloc, reset at the
# start of every case), so a case that blows up and recovers is caught even after a bigger one.
PEAK_CASE_MB = 400
PEAK_RSS_MB = 2_000  # and the process's high-water mark, which also sees SymPy's C-level caches
OURS = (ParseError, LimitError, InputError)

fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,  # timed below with a bound that says which case was slow
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


@contextlib.contextmanager
def bounded(case: str):
    if not tracemalloc.is_tracing():
        tracemalloc.start()  # one frame per allocation: the cheapest setting
    tracemalloc.reset_peak()
    start = time.monotonic()
    try:
        yield
    finally:
        peak_case_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    elapsed = time.monotonic() - start
    assert elapsed < WALL_S, f"{case!r} took {elapsed:.1f} s"
    assert peak_case_mb < PEAK_CASE_MB, f"{case!r}: this case allocated {peak_case_mb:.0f} MB"
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert peak_mb < PEAK_RSS_MB, f"{case!r}: peak memory {peak_mb:.0f} MB"


def ours_or_result(call, case: str):
    with bounded(case):
        try:
            return call()
        except OURS:
            return None


def test_the_per_case_memory_bound_catches_one_large_case(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "PEAK_CASE_MB", 20)
    with bounded("small"):
        bytearray(10 * 2**20)
    too_much = pytest.raises(AssertionError, match="'large': this case allocated 3")
    with too_much, bounded("large"):
        bytearray(30 * 2**20)
    with bounded("small after large"):  # the peak is per case, not per process
        bytearray(10 * 2**20)


@fuzz
@given(soups())
def test_token_soup_parses_or_says_why(text):
    with applied(LIMITS):
        ours_or_result(lambda: parse_program(text), text)


@fuzz
@given(soups(), st.sampled_from(["x", "y", "w1", "", "1x", "x y", "Χ"]))
def test_token_soup_explains_or_says_why(text, wrt):
    def run():
        d = explain(text, wrt=wrt, limits=LIMITS)
        return d.to_text() + d.to_markdown() + d.to_latex()

    ours_or_result(run, text)


@fuzz
@given(trees())
def test_expression_tree_explains_in_every_format(text):
    def run():
        d = explain(text, limits=LIMITS)
        d.to_text(), d.to_latex()
        markdown = d.to_markdown()
        assert "<" not in markdown, markdown  # Markdown becomes HTML: no raw < reaches it
        return d

    ours_or_result(run, text)


@fuzz
@given(programs())
def test_a_program_statement_by_statement_agrees_with_the_written_out_answer(case):
    """A max_output of 10 forces every program through the statement-by-statement path; where
    both answers have a value at the point, they are the same number."""
    expr, at = case
    point = {k: float(v) for k, v in (item.split("=") for item in at.split(","))}

    def run():
        short = explain(expr, limits=LIMITS.with_(max_output=10))
        short.to_text(), short.to_markdown(), short.to_latex()
        full = explain(expr, limits=LIMITS)
        try:
            values = short.evaluate(**point), full.evaluate(**point)
        except ValueError:  # no real value there (both paths say so in the same words)
            return
        assert values[0] == pytest.approx(values[1], rel=1e-6, abs=1e-9), (expr, at)

    ours_or_result(run, expr)


def cli(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def assert_one_line_failure(code: int, err: str, allowed: tuple[int, ...]) -> None:
    assert code in allowed, err
    if code == 2:
        first = err.strip().splitlines()[0]
        assert first.startswith("chainrule"), err
        assert "Traceback" not in err and "Warning" not in err, err
        assert "internal error" not in err, err


@fuzz
@given(trees(max_leaves=8), st.sampled_from(["-2", "-1", "0", "0.5", "1", "3", "1e308"]))
def test_explain_cli_at_a_point(text, value):
    with bounded(text):
        code, _, err = cli(["explain", text, "--at", f"x={value},y=2,w1=0.5"])
    # 1: the three values disagree (a kink, or the point is on a domain's edge)
    assert_one_line_failure(code, err, (0, 1, 2))


@fuzz
@given(programs())
def test_backprop_program_traces_or_says_why(case):
    expr, at = case
    with bounded(expr):
        code, out, err = cli(["backprop", expr, "--at", at])
    assert_one_line_failure(code, err, (0, 2))
    if code == 0:  # a finite output; never "nan" printed as the loss
        assert "L = nan" not in out, out


@fuzz
@given(programs())
def test_backprop_build_returns_a_tensor_or_says_why(case):
    from chainrule.commands.backprop import parse_at

    expr, at = case

    def run():
        import numpy as np

        with np.errstate(all="ignore"):
            return build(expr, parse_at(at))

    with applied(LIMITS):
        ours_or_result(run, expr)


SUBPROCESS = [
    ["explain", "9^9^9"],
    ["explain", "2^(2^40)*x"],
    ["explain", "x", "--wrt", ""],
    ["explain", "(" * 165 + "x" + ")" * 165],
    ["explain", "sec(log^2(asin(3*sqrt(10))))"],
    ["backprop", "L = log(w*x)", "--at", "w=-1,x=2"],
]


def _limit_memory() -> None:  # runs in the child: 1.5 GB of address space
    resource.setrlimit(resource.RLIMIT_AS, (1_500 * 2**20, 1_500 * 2**20))


@pytest.mark.parametrize("argv", SUBPROCESS, ids=lambda a: " ".join(a)[:40])
def test_cli_process_exits_2_in_bounded_time_and_memory(argv):
    result = subprocess.run(
        [sys.executable, "-m", "chainrule", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=_limit_memory,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr  # a message, a caret
    assert "Traceback" not in result.stderr and "Warning" not in result.stderr
