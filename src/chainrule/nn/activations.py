"""Activation functions as Modules (stateless wrappers around `chainrule.nn.functional`)."""

from __future__ import annotations

from chainrule import composite as C
from chainrule.nn.module import Module
from chainrule.tensor import Tensor

__all__ = ["GELU", "LeakyReLU", "ReLU", "SiLU", "Sigmoid", "Softmax", "Tanh"]


class Sigmoid(Module):
    """1 / (1 + exp(-x)); derivative s(x)(1 - s(x)).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.Sigmoid()(cr.tensor([0.0])).tolist()
    [0.5]
    """

    def forward(self, x: Tensor) -> Tensor:
        return C.sigmoid(x)


class Tanh(Module):
    """tanh(x); derivative 1 - tanh(x)^2."""

    def forward(self, x: Tensor) -> Tensor:
        return C.tanh(x)


class ReLU(Module):
    """max(x, 0); derivative 1 for x > 0 and 0 otherwise (relu'(0) := 0, as in PyTorch)."""

    def forward(self, x: Tensor) -> Tensor:
        return C.relu(x)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x: Tensor) -> Tensor:
        return C.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class GELU(Module):
    """x * Phi(x) (exact, via erf) or its tanh approximation."""

    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, x: Tensor) -> Tensor:
        return C.gelu(x, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x)."""

    def forward(self, x: Tensor) -> Tensor:
        return C.silu(x)


class Softmax(Module):
    """exp(x_i) / sum_j exp(x_j) along `dim` (computed stably)."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: Tensor) -> Tensor:
        return C.softmax(x, axis=self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
