"""An op refusing its input raises chainrule.errors.OpError: a ValueError (NumPy's and Python's
convention) that is also PyTorch's RuntimeError, so `except RuntimeError` ported from PyTorch
still catches it; an index out of range inside an op is an IndexError that is a RuntimeError
too. Each row is a mistake, the message naming it, and whether torch raises RuntimeError too."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule.errors import OpError, OpIndexError, OpTypeError
from chainrule.nn import functional as F

# name -> (the mistake in chainrule, the same in torch, a piece of chainrule's message)
MISTAKES: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any], str]] = {
    "matmul of a 0-d": (
        lambda m: m.tensor(3.0) @ m.ones(3, 3),
        lambda t: t.tensor(3.0) @ t.ones(3, 3),
        "matmul: shapes",
    ),
    "matmul misaligned": (
        lambda m: m.ones(2, 4) @ m.ones(1, 3),
        lambda t: t.ones(2, 4) @ t.ones(1, 3),
        "not aligned",
    ),
    "reshape with two -1": (
        lambda m: m.ones(3, 4).reshape(-1, -1, 2),
        lambda t: t.ones(3, 4).reshape(-1, -1, 2),
        "one unknown dimension",
    ),
    "permute of the wrong length": (
        lambda m: m.ones(3, 4, 5).permute(0, 2),
        lambda t: t.ones(3, 4, 5).permute(0, 2),
        "transpose",
    ),
    "clip with no bound": (
        lambda m: m.clip(m.ones(2), None, None),
        lambda t: t.clip(t.ones(2), None, None),
        "give a_min, a_max or both",
    ),
    "gather with an index of the wrong rank": (
        lambda m: m.gather(m.ones(4, 5), 0, m.tensor(np.array([1]))),
        lambda t: t.gather(t.ones(4, 5), 0, t.tensor([1])),
        "gather: index of shape (1,)",
    ),
    "flip of a repeated axis": (
        lambda m: m.ones(3, 4).flip((1, -1)),
        lambda t: t.ones(3, 4).flip((1, -1)),
        "repeats an axis",
    ),
    "roll of two shifts without dims": (
        lambda m: m.ones(2, 4).roll((1, 2)),
        lambda t: t.ones(2, 4).roll((1, 2)),
        "2 shifts need as many axes",
    ),
    "repeat with fewer sizes than dimensions": (
        lambda m: m.ones(4, 6, 3).repeat(2, 4),
        lambda t: t.ones(4, 6, 3).repeat(2, 4),
        "2 sizes (2, 4) for a 3-d tensor",
    ),
    "unfold of a window past the end": (
        lambda m: m.ones(8).unfold(0, 9, 3),
        lambda t: t.ones(8).unfold(0, 9, 3),
        "unfold: size 9",
    ),
    "conv with a kernel larger than the input": (
        lambda m: F.conv2d(m.ones(1, 1, 6, 7), m.ones(6, 1, 3, 3), dilation=3),
        lambda t: t.nn.functional.conv2d(t.ones(1, 1, 6, 7), t.ones(6, 1, 3, 3), dilation=3),
        "smaller than the kernel",
    ),
}


@pytest.mark.parametrize("name", list(MISTAKES))
def test_a_refused_input_is_a_value_error_and_a_runtime_error(name: str) -> None:
    ours, _, message = MISTAKES[name]
    with pytest.raises(OpError, match=re.escape(message)) as info:
        ours(cr)
    assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("name", list(MISTAKES))
def test_torch_raises_runtime_error_for_the_same_mistake(name: str) -> None:
    """So the row belongs here: PyTorch code catching RuntimeError catches ours too."""
    torch = pytest.importorskip("torch")
    _, theirs, _ = MISTAKES[name]
    with pytest.raises(RuntimeError):
        theirs(torch)


def test_an_index_out_of_range_in_an_op_is_an_index_error_and_a_runtime_error() -> None:
    with pytest.raises(OpIndexError, match="scatter_add") as info:
        cr.scatter_add(cr.zeros(2, 3), 0, np.array([[5, 0, 0]]), cr.ones(1, 3))
    assert isinstance(info.value, IndexError) and isinstance(info.value, RuntimeError)


@pytest.mark.parametrize(
    "call",
    [lambda: cr.ones(3) & cr.ones(3), lambda: ~cr.ones(2), lambda: cr.randn(2, dtype=np.int32)],
)
def test_a_refused_dtype_is_a_type_error_and_a_runtime_error(call: Callable[[], Any]) -> None:
    with pytest.raises(OpTypeError, match="dtype") as info:
        call()
    assert isinstance(info.value, TypeError) and isinstance(info.value, RuntimeError)
