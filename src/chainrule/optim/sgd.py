"""SGD with momentum, dampening, Nesterov momentum and L2 weight decay (PyTorch's update)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from chainrule.compile import replayed
from chainrule.optim.optimizer import Optimizer
from chainrule.tensor import Tensor


class SGD(Optimizer):
    """Stochastic gradient descent.

    With g = grad + weight_decay * p: buf = momentum * buf + (1 - dampening) * g (buf = g on the
    first step); the step direction is g + momentum * buf with Nesterov, else buf (or g without
    momentum); p <- p - lr * direction.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import SGD
    >>> w = cr.tensor([1.0], requires_grad=True)
    >>> opt = SGD([w], lr=0.1)
    >>> (w * w).sum().backward()   # dL/dw = 2w = 2
    >>> opt.step()
    >>> round(w.item(), 6)         # 1 - 0.1 * 2
    0.8
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        if momentum < 0:
            raise ValueError(f"SGD: momentum must be >= 0, got {momentum}")
        super().__init__(
            params,
            dict(
                lr=lr,
                momentum=momentum,
                dampening=dampening,
                weight_decay=weight_decay,
                nesterov=nesterov,
            ),
        )

    @replayed
    def step(self) -> None:
        """Update every parameter that has a gradient, once.

        Plain SGD (no momentum, no weight decay) is one in-place `p -= lr * grad` per
        parameter without the per-parameter bookkeeping of `Optimizer.step`: on a small
        model (benchmarks/ W2) that bookkeeping was a third of the update's time.
        """
        for group in self.param_groups:
            if group["momentum"] or group["weight_decay"]:
                self._step_group(group)
                continue
            lr = group["lr"]
            state = self.state
            for p in group["params"]:
                grad = p.grad
                if grad is None:
                    continue
                if id(p) not in state:
                    state[id(p)] = {}  # as Optimizer.step: state_dict lists stepped params
                data = p.data  # a local: `data -= u` updates in place without a setattr
                update = lr * grad.data
                if update.dtype is not data.dtype and update.dtype != data.dtype:
                    update = update.astype(data.dtype)  # (`is` first: `!=` is slow)
                data -= update
                p._bump_version()

    def _update(
        self, p: Tensor, grad: np.ndarray, group: dict[str, Any], state: dict[str, Any]
    ) -> None:
        g = grad + group["weight_decay"] * p.data if group["weight_decay"] else grad
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(g, dtype=p.dtype)
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * g
            state["momentum_buffer"] = buf
            g = g + momentum * buf if group["nesterov"] else buf
        p.data -= (group["lr"] * g).astype(p.dtype, copy=False)
