"""RMSprop and Adagrad, as PyTorch defines them (per-parameter step sizes from past squares)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer
from chainrule.tensor import Tensor

__all__ = ["Adagrad", "RMSprop"]


class RMSprop(Optimizer):
    """p <- p - lr g / (sqrt(v) + eps), v a running mean of g^2 (Hinton's lecture 6e).

    `centered` subtracts the squared running mean of g (a variance estimate); `momentum`
    accumulates the scaled step in a buffer first, as PyTorch's.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import RMSprop
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = RMSprop([w], lr=0.01)
    >>> (w * 3.0).sum().backward(); opt.step()
    >>> round(w.item(), 4)   # the first step is lr / sqrt(1 - alpha) whatever the gradient
    0.9
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ) -> None:
        if not 0.0 <= alpha <= 1.0 or eps < 0 or momentum < 0:
            raise ValueError(
                f"RMSprop: need alpha in [0, 1], eps >= 0 and momentum >= 0, got alpha={alpha}, "
                f"eps={eps}, momentum={momentum}"
            )
        defaults = dict(
            lr=lr,
            alpha=alpha,
            eps=eps,
            weight_decay=weight_decay,
            momentum=momentum,
            centered=centered,
        )
        super().__init__(params, defaults)

    def _update(
        self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        alpha, eps, mom = group["alpha"], group["eps"], group["momentum"]
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if not state:
            state.update(step=0, square_avg=np.zeros_like(p.data))
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(p.data)
            if mom:
                state["momentum_buffer"] = np.zeros_like(p.data)
        state["step"] += 1
        v = state["square_avg"]
        v *= alpha
        v += (1 - alpha) * grad * grad
        if group["centered"]:
            m = state["grad_avg"]
            m *= alpha
            m += (1 - alpha) * grad
            avg = np.sqrt(v - m * m) + eps
        else:
            avg = np.sqrt(v) + eps
        if mom:
            buf = state["momentum_buffer"]
            buf *= mom
            buf += grad / avg
            p.data -= (group["lr"] * buf).astype(p.dtype, copy=False)
        else:
            p.data -= (group["lr"] * grad / avg).astype(p.dtype, copy=False)


class Adagrad(Optimizer):
    """p <- p - lr_t g / (sqrt(sum of g^2 so far) + eps), lr_t = lr / (1 + (t - 1) lr_decay).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import Adagrad
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = Adagrad([w], lr=0.5)
    >>> (w * 3.0).sum().backward(); opt.step()
    >>> round(w.item(), 6)   # the first step is lr: g / sqrt(g^2)
    0.5
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ) -> None:
        if lr_decay < 0 or initial_accumulator_value < 0 or eps < 0:
            raise ValueError(
                "Adagrad: lr_decay, initial_accumulator_value and eps must be >= 0, got "
                f"{lr_decay}, {initial_accumulator_value}, {eps}"
            )
        defaults = dict(
            lr=lr,
            lr_decay=lr_decay,
            weight_decay=weight_decay,
            eps=eps,
            initial_accumulator_value=initial_accumulator_value,
        )
        super().__init__(params, defaults)

    def _update(
        self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * p.data
        if not state:
            state.update(step=0, sum=np.full_like(p.data, group["initial_accumulator_value"]))
        state["step"] += 1
        clr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        state["sum"] += grad * grad
        p.data -= (clr * grad / (np.sqrt(state["sum"]) + group["eps"])).astype(p.dtype, copy=False)
