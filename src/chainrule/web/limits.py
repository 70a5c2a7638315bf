"""Input limits and time budgets of the playground, in one place.

The server checks every typed field here before any work is queued. ``LIBRARY_CHECKS`` is the
adapter point for the library's own input limits (the parser's and explainer's, built under the
hostile-input issue): each is a callable ``check(field, text)`` that raises ``ValueError`` with a
one-line message; they run after the web's own length cap. Until they exist the web enforces the
cap below and the server-side timeout (``worker.WorkerPool``) on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

MAX_BODY_BYTES = 16 * 1024  # a request body larger than this is refused before it is read
MAX_TEXT_CHARS = 300  # an expression, a program or an answer
MAX_NAME_CHARS = 16  # a variable name
TIME_BUDGET_S = 4.0  # a worker that has not answered by then is killed and replaced
SLIDER_RANGE = 10.0  # |value| of a graph input

LIBRARY_CHECKS: list[Callable[[str, str], None]] = []


class InputError(ValueError):
    """Bad input from the page: shown to the learner as one line."""


def text(body: Mapping[str, Any], field: str, *, default: str | None = None) -> str:
    """``body[field]`` as a string within ``MAX_TEXT_CHARS``; InputError names the field."""
    value = body.get(field, default)
    if not isinstance(value, str):
        raise InputError(f"{field}: expected text, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise InputError(f"{field}: type something first")
    if len(value) > MAX_TEXT_CHARS:
        raise InputError(f"{field}: {len(value)} characters is over the limit of {MAX_TEXT_CHARS}")
    if any(ord(c) < 32 for c in value):
        raise InputError(f"{field}: control characters are not allowed")
    for check in LIBRARY_CHECKS:
        check(field, value)
    return value


def name(body: Mapping[str, Any], field: str, *, default: str) -> str:
    """A variable name: letters, digits and _ only, at most ``MAX_NAME_CHARS``."""
    value = body.get(field, default)
    if not isinstance(value, str) or not value.isidentifier() or len(value) > MAX_NAME_CHARS:
        raise InputError(f"{field}: {str(value)[:20]!r} is not a variable name")
    return value


def number(
    body: Mapping[str, Any], field: str, *, default: float | None = None, bound: float = 1e6
) -> float:
    """A finite number with ``|value| <= bound``."""
    value = body.get(field, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InputError(f"{field}: expected a number, got {type(value).__name__}")
    if not abs(value) <= bound:  # also false for NaN
        raise InputError(f"{field}: {value} is outside [-{bound:g}, {bound:g}]")
    return float(value)


def choice(body: Mapping[str, Any], field: str, options: tuple[str, ...]) -> str:
    value = body.get(field, options[0])
    if value not in options:
        raise InputError(f"{field}: choose one of {', '.join(options)}")
    return str(value)
