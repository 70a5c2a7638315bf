"""Numbers and arrays as short text: the one place that decides how a value is printed.

Scalars use a fixed number of decimals (the tutorial notes print 3), switching to scientific
notation for very small or large magnitudes; arrays print in full when tiny, else as their
shape plus mean, std and range. Imports NumPy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SMALL_ARRAY = 4  # arrays with at most this many elements are printed in full


def number(value: Any, digits: int = 3) -> str:
    """One number with `digits` decimals, or in scientific notation when that would hide it.

    Examples
    --------
    >>> number(-0.2473), number(0.7), number(1.5e-6), number(0.0)
    ('-0.247', '0.700', '1.50e-06', '0.000')
    """
    v = float(np.real(value))
    if v != v or v in (float("inf"), float("-inf")):
        return str(v)
    if v != 0 and (abs(v) < 0.5 * 10.0**-digits or abs(v) >= 1e6):
        return f"{v:.{max(digits - 1, 1)}e}"
    text = f"{v:.{digits}f}"
    return "0." + "0" * digits if text == "-0." + "0" * digits else text


def shape(arr: np.ndarray) -> str:
    """`(3, 4)`, `(5,)` or `()` for a scalar."""
    return "(" + ", ".join(map(str, arr.shape)) + ("," if arr.ndim == 1 else "") + ")"


def value_lines(arr: Any, digits: int = 3) -> list[str]:
    """An array as one line (scalars, tiny arrays) or two (shape; mean, std, range).

    Examples
    --------
    >>> value_lines(np.float32(0.5))
    ['0.500']
    >>> value_lines(np.array([1.0, 2.0]))
    ['[1.000, 2.000]']
    >>> value_lines(np.arange(6.0).reshape(2, 3))
    ['(2, 3) float64', 'mean 2.500 std 1.708', 'range [0.000, 5.000]']
    """
    a = np.asarray(arr)
    if a.size == 1:
        return [_one(a.reshape(()).item(), digits)]
    if a.size <= SMALL_ARRAY and a.ndim == 1:
        return ["[" + ", ".join(_one(v, digits) for v in a.tolist()) + "]"]
    head = f"{shape(a)} {a.dtype}"
    if a.size == 0 or a.dtype.kind not in "biuf":
        return [head]
    f = a.astype(np.float64)
    return [
        head,
        f"mean {number(f.mean(), digits)} std {number(f.std(), digits)}",
        f"range [{number(f.min(), digits)}, {number(f.max(), digits)}]",
    ]


def _one(v: Any, digits: int) -> str:
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    return number(v, digits)
