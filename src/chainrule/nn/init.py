"""In-place initialisers drawing from the global generator (`chainrule.random`).

`Linear` uses `kaiming_uniform_` with a = sqrt(5) and a uniform bias, which is PyTorch's default.
"""

from __future__ import annotations

import math

import numpy as np

from chainrule import random as _random
from chainrule.tensor import Tensor

__all__ = [
    "calculate_gain",
    "kaiming_uniform_",
    "normal_",
    "ones_",
    "uniform_",
    "xavier_uniform_",
    "zeros_",
]


def _fill(t: Tensor, values: np.ndarray) -> Tensor:
    t.data[...] = values.astype(t.dtype, copy=False)
    t._bump_version()
    return t


def _fans(t: Tensor) -> tuple[int, int]:
    if t.ndim < 2:
        raise ValueError(f"fan in/out need a tensor with at least 2 dimensions, got {t.shape}")
    receptive = int(np.prod(t.shape[2:])) if t.ndim > 2 else 1
    return t.shape[1] * receptive, t.shape[0] * receptive


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for an activation (PyTorch's table)."""
    if nonlinearity in ("linear", "sigmoid", "identity"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def uniform_(t: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fill `t` with U(a, b) samples."""
    return _fill(t, _random.generator().uniform(a, b, size=t.shape))


def normal_(t: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fill `t` with N(mean, std^2) samples."""
    return _fill(t, _random.generator().normal(mean, std, size=t.shape))


def zeros_(t: Tensor) -> Tensor:
    return _fill(t, np.zeros(t.shape))


def ones_(t: Tensor) -> Tensor:
    return _fill(t, np.ones(t.shape))


def kaiming_uniform_(t: Tensor, a: float = 0.0, nonlinearity: str = "leaky_relu") -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(3 / fan_in) (He et al., 2015).

    Examples
    --------
    >>> import numpy as np, chainrule as cr
    >>> from chainrule.nn import init
    >>> w = cr.zeros(4, 100)
    >>> bool(np.abs(init.kaiming_uniform_(w, a=5**0.5).data).max() <= 0.1)  # 1/sqrt(100)
    True
    """
    fan_in, _ = _fans(t)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / fan_in)
    return uniform_(t, -bound, bound)


def xavier_uniform_(t: Tensor, gain: float = 1.0) -> Tensor:
    """U(-bound, bound) with bound = gain * sqrt(6 / (fan_in + fan_out)) (Glorot and Bengio)."""
    fan_in, fan_out = _fans(t)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -bound, bound)
