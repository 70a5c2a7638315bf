"""Adam (Kingma and Ba, 2015) with L2 weight decay, and AdamW with decoupled weight decay."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.optim.optimizer import Optimizer
from chainrule.tensor import Tensor


class Adam(Optimizer):
    """Adaptive moments: m, v are running means of g and g^2, bias-corrected by 1 - beta^t.

    p <- p - lr * m_hat / (sqrt(v_hat) + eps), with m_hat = m / (1 - beta1^t) and
    v_hat = v / (1 - beta2^t). `weight_decay` adds weight_decay * p to the gradient (L2), so it
    is rescaled by the adaptive denominator; use `AdamW` for decay that is not.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import Adam
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> (w * 5.0).sum().backward()
    >>> opt.step()          # the first step moves by lr whatever the gradient's size
    >>> round(w.item(), 6)
    0.9
    """

    decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ) -> None:
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must be in [0, 1), got {betas}")
        if eps < 0:
            raise ValueError(f"{type(self).__name__}: eps must be >= 0, got {eps}")
        super().__init__(
            params,
            dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=amsgrad),
        )

    def _update(
        self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if wd and self.decoupled:
            p.data *= p.dtype.type(1 - lr * wd)  # AdamW: shrink p directly, outside m and v
        elif wd:
            grad = grad + wd * p.data
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(p.data)
        state["step"] += 1
        t = state["step"]
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= b1
        m += (1 - b1) * grad
        v *= b2
        v += (1 - b2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        denom = np.sqrt(v) / math.sqrt(1 - b2**t) + eps
        p.data -= ((lr / (1 - b1**t)) * m / denom).astype(p.dtype, copy=False)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p <- p (1 - lr wd) first.

    The default weight_decay is 0.01, as in PyTorch.
    """

    decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ) -> None:
        super().__init__(
            params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad
        )
