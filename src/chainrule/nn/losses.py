"""Loss modules: thin wrappers that fix `reduction` for `chainrule.nn.functional`'s losses."""

from __future__ import annotations

from typing import Any

from chainrule.nn import functional as F
from chainrule.nn.module import Module
from chainrule.tensor import Tensor

__all__ = ["BCEWithLogitsLoss", "CrossEntropyLoss", "MSELoss"]

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {_REDUCTIONS}, got {reduction!r}"
            )
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error (input - target)^2.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.MSELoss()(cr.tensor([1.0, 3.0]), cr.tensor([1.0, 1.0])).item()
    2.0
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.mse_loss(input, target, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy on raw logits (N, C) with integer labels (N,) or probabilities.

    The gradient with respect to the logits is (softmax(z) - onehot(y)) / N: seed 002's
    delta^L = y_hat - y. Labels outside 0..C-1 raise a ValueError naming the label.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> round(nn.CrossEntropyLoss()(cr.tensor([[0.0, 0.0]]), [1]).item(), 4)  # log 2
    0.6931
    """

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits, softplus(x) - t x: never overflows; gradient s(x) - t."""

    def forward(self, input: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(input, target, reduction=self.reduction)
