"""What one request may ask of chainrule: the limits, the error that names one, the time budget.

The same ``Limits`` serve the CLI, the Python API (``explain(..., limits=...)``) and a web server:
``applied(limits)`` makes them the active ones for the calling thread (a context variable, so a
server's worker threads never see each other's), ``active()`` reads them where a check is made,
and ``check_time(what)`` is the cooperative deadline. Imports the standard library only.
"""

from __future__ import annotations

import argparse
import contextvars
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields, replace
from typing import Any

__all__ = [
    "DEFAULT",
    "LimitError",
    "Limits",
    "active",
    "add_arguments",
    "applied",
    "check_time",
    "enforced",
    "from_args",
    "parse_limits",
]


@dataclass(frozen=True, kw_only=True)
class Limits:
    """The limits of one request; every field is part of the documented contract (docs/limits.md).

    Attributes
    ----------
    max_chars : int
        Characters of typed input (an expression or a whole program).
    max_depth : int
        Nesting of brackets, function calls, powers and signs (``sin(sin(x))`` is 2 deep).
    max_digits : int
        Decimal digits of any exact number, checked BEFORE it is computed: a typed ``1e999999``,
        ``9^9^9`` or ``2^(2^40)`` is refused, never evaluated.
    max_statements : int
        Statements in a program (``z = ...; u = ...``).
    max_steps : int
        Lines of a step-by-step derivation; past it the answer is still given, with the steps
        shortened and the reason said.
    max_output : int
        Characters of one printed expression. A program whose answer, written out in its
        inputs, would be longer (or nested deeper than ``max_depth``, or take more than
        ``max_steps`` lines as one tree) is derived statement by statement and answered in terms
        of its intermediates and their derivatives, with the reason said; any other longer piece
        of math is left out of the printed line, with its size and this limit named.
    seconds : float
        Time budget of one request (parse, derive, render, check), checked cooperatively.

    Examples
    --------
    >>> Limits().max_depth
    100
    >>> Limits(seconds=2).seconds
    2
    """

    max_chars: int = 2_000
    max_depth: int = 100
    max_digits: int = 1_000
    max_statements: int = 100
    max_steps: int = 300
    max_output: int = 4_000
    seconds: float = 10.0

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ValueError(f"Limits: {f.name} must be a positive number, got {value!r}")
        if self.max_digits > 4000:  # Python refuses to print an int of more than 4300 digits
            raise ValueError(f"Limits: max_digits is at most 4000, got {self.max_digits}")

    def with_(self, **changes: Any) -> Limits:
        """A copy with some limits changed, e.g. ``DEFAULT.with_(seconds=30)``."""
        return replace(self, **changes)


DEFAULT = Limits()


class LimitError(ValueError):
    """A request went past one of the limits; ``limit`` is the field's name (``"max_digits"``).

    ``str(error)`` is one line that says what was too big and which limit it broke.
    """

    def __init__(self, limit: str, message: str):
        self.limit = limit
        super().__init__(f"{message} (limit {limit} = {getattr(active(), limit, '?')})")


_ACTIVE: contextvars.ContextVar[tuple[Limits, float]] = contextvars.ContextVar("chainrule_limits")


def active() -> Limits:
    """The limits in force for this thread (``DEFAULT`` outside any ``applied`` block)."""
    current = _ACTIVE.get(None)
    return DEFAULT if current is None else current[0]


@contextmanager
def applied(limits: Limits | None = None) -> Iterator[Limits]:
    """Make ``limits`` the active ones and start the time budget; nested blocks keep the
    earlier deadline, so an inner call cannot extend its caller's budget.

    >>> with applied(Limits(max_depth=5)):
    ...     active().max_depth
    5
    """
    limits = limits or active()
    deadline = time.monotonic() + limits.seconds
    outer = _ACTIVE.get(None)
    if outer is not None:
        deadline = min(deadline, outer[1])
    token = _ACTIVE.set((limits, deadline))
    try:
        yield limits
    finally:
        _ACTIVE.reset(token)


@contextmanager
def enforced(limits: Limits, grace: float = 1.0) -> Iterator[Limits]:
    """``applied(limits)``, plus a hard stop for a command-line process: a call that checks no
    time (one long SymPy simplification) is interrupted ``grace`` seconds after the cooperative
    deadline by SIGALRM, as a LimitError. Only in the main thread of a POSIX process; elsewhere
    (a server's worker thread, Windows) it is ``applied`` alone, since an exception raised
    inside SymPy may leave its caches half-written: the CLI exits right after, a library caller
    would not.
    """
    import signal
    import threading

    hard = hasattr(signal, "setitimer") and threading.current_thread() is threading.main_thread()
    if not hard:
        with applied(limits) as active_limits:
            yield active_limits
        return

    def stop(signum: int, frame: Any) -> None:
        raise _HardStop

    def unraisable(info: Any) -> None:
        # A stop that lands in a gc callback or a __del__ cannot propagate; the next one will,
        # so it is dropped here rather than printed as "Exception ignored in ...".
        if not isinstance(info.exc_value, _HardStop):
            previous_hook(info)

    previous = signal.signal(signal.SIGALRM, stop)
    previous_hook, sys.unraisablehook = sys.unraisablehook, unraisable
    # Not a ValueError inside SymPy, and again every quarter second: SymPy catches ValueError
    # (LimitError's base) in places, and a bare except may still swallow one stop.
    signal.setitimer(signal.ITIMER_REAL, limits.seconds + grace, 0.25)
    try:
        with applied(limits) as active_limits:
            yield active_limits
    except _HardStop:
        signal.setitimer(signal.ITIMER_REAL, 0)
        raise LimitError("seconds", "the request took longer than the time budget") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        sys.unraisablehook = previous_hook


class _HardStop(BaseException):
    """Raised by the CLI's SIGALRM inside whatever call overran; `enforced` turns it into a
    LimitError at its boundary."""


def check_time(what: str) -> None:
    """Raise LimitError when the active time budget is spent (a no-op outside ``applied``)."""
    current = _ACTIVE.get(None)
    if current is not None and time.monotonic() > current[1]:
        raise LimitError("seconds", f"{what} took longer than the time budget")


def parse_limits(items: list[str], base: Limits = DEFAULT) -> Limits:
    """``["seconds=30", "max_steps=1000"]`` -> ``base`` with those limits; ValueError (one line)
    names an unknown limit or a bad value.

    >>> parse_limits(["seconds=30,max_steps=1000"]).max_steps
    1000
    """
    names = {f.name: f.type for f in fields(Limits)}
    changes: dict[str, Any] = {}
    for item in (p.strip() for raw in items for p in raw.split(",") if p.strip()):
        name, sep, value = (part.strip() for part in item.partition("="))
        if not sep or name not in names:
            known = ", ".join(names)
            raise ValueError(f"--limit expects NAME=VALUE with NAME one of {known}; got {item!r}")
        try:
            changes[name] = float(value) if name == "seconds" else int(value)
        except ValueError:
            raise ValueError(f"--limit {name}: {value!r} is not a number") from None
    return base.with_(**changes)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``--limit NAME=VALUE`` option every command that reads typed input shares."""
    parser.add_argument(
        "--limit",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="raise or lower a limit, e.g. --limit seconds=30,max_steps=1000 "
        "(see docs/limits.md; defaults: "
        + ", ".join(f"{f.name}={getattr(DEFAULT, f.name)}" for f in fields(Limits))
        + ")",
    )


def from_args(args: argparse.Namespace) -> Limits:
    """The limits a command line asked for (``DEFAULT`` changed by its ``--limit`` options)."""
    return parse_limits(getattr(args, "limit", []) or [])
