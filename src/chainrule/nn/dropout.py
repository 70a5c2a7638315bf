"""Channel dropout: Dropout1d and Dropout2d zero whole channels (feature maps), as PyTorch.

The mask comes from the global generator (`manual_seed`), like `Dropout`'s.
"""

from __future__ import annotations

from typing import Any

from chainrule import composite as C
from chainrule import random as _random
from chainrule.nn.module import Module
from chainrule.tensor import Tensor

__all__ = ["Dropout1d", "Dropout2d"]


class Dropout1d(Module):
    """While training, zero each channel of (N, C, L) or (C, L) with probability p and scale
    the rest by 1/(1 - p); the identity in eval mode.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Dropout1d(0.5).eval()(cr.ones(2, 3, 4)).shape
    (2, 3, 4)
    """

    nd = 1

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{type(self).__name__}: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Any) -> Tensor:
        x = C._t(x)
        if x.ndim not in (self.nd + 1, self.nd + 2):
            raise ValueError(
                f"{type(self).__name__}: expected a {self.nd + 2}-D (N, C, *spatial) or "
                f"{self.nd + 1}-D unbatched input, got shape {x.shape}"
            )
        if not self.training or self.p == 0.0:
            return x
        # one draw per channel, broadcast over the spatial axes
        keep = _random.generator().random(x.shape[: x.ndim - self.nd] + (1,) * self.nd) >= self.p
        scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        return x * (keep * scale).astype(x.dtype)

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Dropout2d(Dropout1d):
    """Zero whole channels of (N, C, H, W) or (C, H, W) while training, as PyTorch."""

    nd = 2
