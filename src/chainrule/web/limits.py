"""Input limits and time budgets of the playground, in one place.

The server checks every typed field here before any work is queued (sizes, types, ranges). The
parser's and explainer's own limits (``chainrule.limits``: depth, digits, statements, steps)
then apply inside the worker, as ``LIBRARY_LIMITS``, whose cooperative deadline ends a long
derivation with a one-line answer before ``worker.WorkerPool`` has to kill the process.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chainrule.limits import DEFAULT

MAX_BODY_BYTES = 16 * 1024  # a request body larger than this is refused before it is read
MAX_TEXT_CHARS = 300  # an expression, a program or an answer
MAX_NAME_CHARS = 16  # a variable name
TIME_BUDGET_S = 4.0  # a worker that has not answered by then is killed and replaced
SLIDER_RANGE = 10.0  # |value| of a graph input

# The library's limits for one request: typed text is already capped above, and the
# cooperative deadline falls before the hard one, so the learner reads which limit was hit.
LIBRARY_LIMITS = DEFAULT.with_(max_chars=MAX_TEXT_CHARS, seconds=0.8 * TIME_BUDGET_S)


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
