"""Exceptions that are both Python's and PyTorch's: an op refusing its input raises `OpError`,
a `ValueError` (Python's and NumPy's convention) that is also the `RuntimeError` PyTorch raises
for the same mistake, so code ported from either catches it; `OpTypeError` and `OpIndexError`
do the same for a TypeError and an IndexError. NumPy's `AxisError` (both a ValueError and an
IndexError) is the precedent. Imports nothing from chainrule."""

from __future__ import annotations


class OpError(ValueError, RuntimeError):
    """An op cannot take these inputs (shapes that do not fit, an argument out of range)."""


class OpTypeError(TypeError, RuntimeError):
    """An op cannot take this dtype (bitwise ops on floats): NumPy's TypeError, PyTorch's
    RuntimeError."""


class OpIndexError(IndexError, RuntimeError):
    """An index out of range inside an op: NumPy's IndexError, PyTorch's RuntimeError."""
