"""Learning-rate schedules: each `step()` (once per epoch) sets every group's ``lr``."""

from __future__ import annotations

import math
from typing import Any

from chainrule.compile import replayed
from chainrule.optim.optimizer import Optimizer

__all__ = [
    "CosineAnnealingLR",
    "ExponentialLR",
    "LRScheduler",
    "LambdaLR",
    "LinearLR",
    "OneCycleLR",
    "ReduceLROnPlateau",
    "StepLR",
]


def _restore(scheduler: Any, state_dict: dict[str, Any]) -> None:
    """Copy saved fields back, refusing what the schedule would not have saved itself.

    PyTorch updates ``__dict__`` with whatever it is given; a checkpoint read from disk could then
    replace the optimizer reference or a method. Only the keys of the schedule's own
    `state_dict` are accepted, and a number stays a number.
    """
    name = type(scheduler).__name__
    if not isinstance(state_dict, dict):
        raise ValueError(
            f"{name}.load_state_dict: expected a dict, got {type(state_dict).__name__}"
        )
    own = scheduler.state_dict()
    unknown = sorted(str(k) for k in state_dict if k not in own)
    if unknown:
        raise ValueError(
            f"{name}.load_state_dict: unknown key(s) {unknown}; expected {sorted(own)}"
        )
    for key, value in state_dict.items():
        number = isinstance(own[key], (int, float)) and not isinstance(own[key], bool)
        if number and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(
                f"{name}.load_state_dict: {key!r} must be a number, got {type(value).__name__}"
            )
    scheduler.__dict__.update(
        {k: (list(v) if isinstance(v, tuple) else v) for k, v in state_dict.items()}
    )


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

    @replayed  # inside chainrule.compile, every replay advances the schedule again
    def step(self) -> None:
        """Advance one epoch and update the optimizer's learning rates."""
        self.last_epoch += 1
        self._apply()

    @replayed
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
        """Restore what `state_dict` saved; ValueError on keys this schedule does not have."""
        _restore(self, state_dict)
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


class OneCycleLR(LRScheduler):
    """The 1cycle policy (Smith and Topor), stepped once per batch: lr rises from
    max_lr / div_factor to max_lr over pct_start of total_steps, then anneals to
    initial_lr / final_div_factor; momentum (SGD's, or Adam's beta1) moves the opposite way.
    PyTorch's phases, formulas and defaults, `three_phase` included.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import SGD, OneCycleLR
    >>> opt = SGD([cr.tensor([1.0], requires_grad=True)], lr=0.1, momentum=0.9)
    >>> sched = OneCycleLR(opt, max_lr=1.0, total_steps=10)
    >>> round(sched.get_last_lr()[0], 6), opt.param_groups[0]["momentum"]
    (0.04, 0.95)
    """

    def __init__(
        self,
        optimizer: Optimizer,
        max_lr: float,
        total_steps: int | None = None,
        epochs: int | None = None,
        steps_per_epoch: int | None = None,
        pct_start: float = 0.3,
        anneal_strategy: str = "cos",
        cycle_momentum: bool = True,
        base_momentum: float = 0.85,
        max_momentum: float = 0.95,
        div_factor: float = 25.0,
        final_div_factor: float = 1e4,
        three_phase: bool = False,
    ) -> None:
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            total_steps = epochs * steps_per_epoch
        if total_steps < 1 or not 0 <= pct_start <= 1 or anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                f"OneCycleLR: need total_steps >= 1, pct_start in [0, 1] and anneal_strategy "
                f"'cos' or 'linear', got {total_steps}, {pct_start}, {anneal_strategy!r}"
            )
        self.total_steps, self.anneal_strategy = int(total_steps), anneal_strategy
        self.cycle_momentum = cycle_momentum
        self.use_beta1 = "betas" in optimizer.defaults
        if cycle_momentum and not self.use_beta1 and "momentum" not in optimizer.defaults:
            raise ValueError("OneCycleLR: cycle_momentum needs an optimizer with momentum or betas")
        up = float(pct_start * self.total_steps) - 1
        # (end step, (start, end) of lr as a factor key, (start, end) of momentum)
        if three_phase:
            self.phases = [
                (up, ("initial_lr", "max_lr"), ("max_momentum", "base_momentum")),
                (2 * up, ("max_lr", "initial_lr"), ("base_momentum", "max_momentum")),
                (
                    self.total_steps - 1.0,
                    ("initial_lr", "min_lr"),
                    ("max_momentum", "max_momentum"),
                ),
            ]
        else:
            self.phases = [
                (up, ("initial_lr", "max_lr"), ("max_momentum", "base_momentum")),
                (self.total_steps - 1.0, ("max_lr", "min_lr"), ("base_momentum", "max_momentum")),
            ]
        for group in optimizer.param_groups:
            group["initial_lr"] = max_lr / div_factor
            group["max_lr"] = max_lr
            group["min_lr"] = group["initial_lr"] / final_div_factor
            group["max_momentum"], group["base_momentum"] = max_momentum, base_momentum
        super().__init__(optimizer)

    def _anneal(self, start: float, end: float, pct: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
        return (end - start) * pct + start

    def _apply(self) -> None:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(
                f"OneCycleLR: stepped {step} times, more than total_steps {self.total_steps}"
            )
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, (end, (lr0, lr1), (m0, m1)) in enumerate(self.phases):
                if step <= end or i == len(self.phases) - 1:
                    pct = (step - start) / (end - start)
                    group["lr"] = self._anneal(group[lr0], group[lr1], pct)
                    momentum = self._anneal(group[m0], group[m1], pct)
                    break
                start = end
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in super().state_dict().items() if k != "phases"}


class ReduceLROnPlateau:
    """Multiply lr by `factor` once a metric has not improved for `patience` epochs, as
    PyTorch's: `step(metric)` after each validation (mode 'min' or 'max', thresholds relative
    or absolute, a cooldown, a floor min_lr).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.optim import SGD, ReduceLROnPlateau
    >>> opt = SGD([cr.tensor([1.0], requires_grad=True)], lr=1.0)
    >>> sched = ReduceLROnPlateau(opt, patience=1)
    >>> for loss in [1.0, 0.9, 0.95, 0.95]:
    ...     sched.step(loss)
    >>> sched.get_last_lr()
    [0.1]
    """

    def __init__(
        self,
        optimizer: Optimizer,
        mode: str = "min",
        factor: float = 0.1,
        patience: int = 10,
        threshold: float = 1e-4,
        threshold_mode: str = "rel",
        cooldown: int = 0,
        min_lr: float | list[float] = 0.0,
        eps: float = 1e-8,
    ) -> None:
        if factor >= 1.0 or mode not in ("min", "max") or threshold_mode not in ("rel", "abs"):
            raise ValueError(
                f"ReduceLROnPlateau: need factor < 1, mode 'min' or 'max', threshold_mode 'rel' "
                f"or 'abs', got {factor}, {mode!r}, {threshold_mode!r}"
            )
        self.optimizer = optimizer
        n = len(optimizer.param_groups)
        self.min_lrs = list(min_lr) if isinstance(min_lr, (list, tuple)) else [min_lr] * n
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.best = math.inf if mode == "min" else -math.inf
        self.num_bad_epochs, self.cooldown_counter, self.last_epoch = 0, 0, 0

    def _better(self, a: float) -> bool:
        rel = self.threshold_mode == "rel"
        if self.mode == "min":
            return a < (self.best * (1 - self.threshold) if rel else self.best - self.threshold)
        return a > (self.best * (1 + self.threshold) if rel else self.best + self.threshold)

    @replayed
    def step(self, metrics: float) -> None:
        current = float(metrics)
        self.last_epoch += 1
        if self._better(current):
            self.best, self.num_bad_epochs = current, 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0
        if self.num_bad_epochs > self.patience:
            for group, floor in zip(self.optimizer.param_groups, self.min_lrs):
                new = max(group["lr"] * self.factor, floor)
                if group["lr"] - new > self.eps:
                    group["lr"] = new
            self.cooldown_counter, self.num_bad_epochs = self.cooldown, 0

    def get_last_lr(self) -> list[float]:
        return [g["lr"] for g in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "optimizer"}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore what `state_dict` saved; ValueError on keys this schedule does not have."""
        _restore(self, state_dict)
