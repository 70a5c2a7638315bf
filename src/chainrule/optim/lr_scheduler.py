"""Learning-rate schedules: each `step()` (once per epoch) sets every group's ``lr``."""

from __future__ import annotations

import math
from typing import Any

from chainrule.optim.optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "StepLR",
]


class LRScheduler:
    """Base: remembers each group's initial lr and computes lr for epoch ``last_epoch``."""

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = 0
        self._apply()

    def lr_at(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    def step(self) -> None:
        """Advance one epoch and update the optimizer's learning rates."""
        self.last_epoch += 1
        self._apply()

    def step_to(self, epoch: int) -> None:
        """Jump to `epoch` (after changing the schedule's parameters, e.g. when resuming)."""
        self.last_epoch = int(epoch)
        self._apply()

    def _apply(self) -> None:
        for group, base in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = self.lr_at(base, self.last_epoch)

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.__dict__.update(
            {k: (list(v) if isinstance(v, tuple) else v) for k, v in state_dict.items()}
        )
        self._apply()


class StepLR(LRScheduler):
    """lr = base_lr * gamma ** (epoch // step_size).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import SGD, StepLR
    >>> opt = SGD([cr.tensor([1.0], requires_grad=True)], lr=1.0)
    >>> sched = StepLR(opt, step_size=2, gamma=0.5)
    >>> lrs = []
    >>> for _ in range(5):
    ...     lrs.append(sched.get_last_lr()[0]); sched.step()
    >>> lrs
    [1.0, 1.0, 0.5, 0.5, 0.25]
    """

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1) -> None:
        if step_size < 1:
            raise ValueError(f"StepLR: step_size must be >= 1, got {step_size}")
        self.step_size = int(step_size)
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base_lr - eta_min) (1 + cos(pi epoch / T_max)) / 2 (SGDR without restarts).

    Past T_max the cosine carries on, so the rate climbs back to base_lr at 2 T_max and the
    schedule has period 2 T_max, as PyTorch's.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import SGD, CosineAnnealingLR
    >>> opt = SGD([cr.tensor([1.0], requires_grad=True)], lr=1.0)
    >>> sched = CosineAnnealingLR(opt, T_max=2)
    >>> sched.step(); sched.get_last_lr()
    [0.5]
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0) -> None:
        if T_max < 1:
            raise ValueError(f"CosineAnnealingLR: T_max must be >= 1, got {T_max}")
        self.T_max = int(T_max)
        self.eta_min = float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        cos = math.cos(math.pi * epoch / self.T_max)
        return self.eta_min + (base_lr - self.eta_min) * (1 + cos) / 2


class ExponentialLR(LRScheduler):
    """lr = base_lr * gamma ** epoch."""

    def __init__(self, optimizer: Optimizer, gamma: float) -> None:
        self.gamma = float(gamma)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma**epoch


class LinearLR(LRScheduler):
    """lr = base_lr times a factor moving linearly from start_factor to end_factor over
    total_iters epochs, then staying there (a linear warm-up by default, as PyTorch's)."""

    def __init__(
        self,
        optimizer: Optimizer,
        start_factor: float = 1.0 / 3,
        end_factor: float = 1.0,
        total_iters: int = 5,
    ) -> None:
        if not 0 < start_factor <= 1 or not 0 <= end_factor <= 1 or total_iters < 1:
            raise ValueError(
                f"LinearLR: need 0 < start_factor <= 1, 0 <= end_factor <= 1 and total_iters "
                f">= 1, got {start_factor}, {end_factor}, {total_iters}"
            )
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
        self.total_iters = int(total_iters)
        super().__init__(optimizer)

    def lr_at(self, base_lr: float, epoch: int) -> float:
        t = epoch if epoch < self.total_iters else self.total_iters
        f = self.start_factor + (self.end_factor - self.start_factor) * t / self.total_iters
        return base_lr * f


class LambdaLR(LRScheduler):
    """lr = base_lr * lr_lambda(epoch), one function or one per parameter group.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import SGD, LambdaLR
    >>> opt = SGD([cr.tensor([1.0], requires_grad=True)], lr=1.0)
    >>> sched = LambdaLR(opt, lambda epoch: 0.5**epoch)
    >>> sched.step(); sched.step(); sched.get_last_lr()
    [0.25]
    """

    def __init__(self, optimizer: Optimizer, lr_lambda: Any) -> None:
        n = len(optimizer.param_groups)
        fs = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(fs) != n:
            raise ValueError(f"LambdaLR: {len(fs)} lr_lambdas for {n} parameter groups")
        self.lr_lambdas = fs
        super().__init__(optimizer)

    def _apply(self) -> None:
        for group, base, f in zip(self.optimizer.param_groups, self.base_lrs, self.lr_lambdas):
            group["lr"] = base * f(self.last_epoch)

    def state_dict(self) -> dict[str, Any]:
        """The functions are code, not state: they are left out, as PyTorch does."""
        return {k: v for k, v in super().state_dict().items() if k != "lr_lambdas"}
