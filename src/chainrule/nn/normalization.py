"""Batch and group normalisation (LayerNorm lives in layers.py), as PyTorch defines them.

Composed from op-table primitives: the gradient through the batch statistics (the term that
makes batch norm's backward more than a scaling) comes from the engine, not a hand-written
formula. Running statistics are buffers, updated in place and saved by `state_dict`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule.compile import replayed
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.tensor import Tensor

__all__ = ["BatchNorm1d", "BatchNorm2d", "GroupNorm"]


def _normalize(x: Tensor, axes: tuple[int, ...], eps: float) -> tuple[Tensor, Tensor, Tensor]:
    """(x - mean) / sqrt(var + eps) over `axes`, with the biased variance; also mean and var."""
    mean = C.mean(x, axis=axes, keepdims=True)
    d = x - mean
    var = C.mean(d * d, axis=axes, keepdims=True)
    return d / C.sqrt(var + x.dtype.type(eps)), mean, var


class _BatchNorm(Module):
    """What BatchNorm1d and 2d share; `dims` are the input ranks each accepts."""

    dims: tuple[int, ...] = (2, 3)

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if num_features < 1:
            raise ValueError(
                f"{type(self).__name__}: num_features must be positive, got {num_features}"
            )
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        self.weight: Parameter | None
        self.bias: Parameter | None
        if affine:
            self.weight = Parameter(np.ones(num_features, dtype=dtype))
            self.bias = Parameter(np.zeros(num_features, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", np.zeros(num_features, dtype=dtype))
            self.register_buffer("running_var", np.ones(num_features, dtype=dtype))
            self.register_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean.data[...] = 0
            self.running_var.data[...] = 1
            self.num_batches_tracked.data[...] = 0

    def forward(self, x: Any) -> Tensor:
        x = C._t(x)
        name = type(self).__name__
        if x.ndim not in self.dims or x.shape[1] != self.num_features:
            raise ValueError(
                f"{name}: expected a {' or '.join(f'{d}-D' for d in self.dims)} input with "
                f"{self.num_features} channels in dimension 1, got shape {x.shape}"
            )
        axes = (0, *range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if self.training or not self.track_running_stats:
            count = x.size // x.shape[1]
            if self.training and count < 2:
                raise ValueError(
                    f"{name}: expected more than 1 value per channel when training, got input "
                    f"shape {x.shape}"
                )
            y, mean, var = _normalize(x, axes, self.eps)
            if self.training and self.track_running_stats:
                self._update(mean.data, var.data, count)
        else:  # eval: the running statistics, read through ops so compile reads them fresh
            rm = C.reshape(self.running_mean, shape)
            rv = C.reshape(self.running_var, shape)
            y = (x - rm) / C.sqrt(rv + x.dtype.type(self.eps))
        if self.weight is None:
            return y
        return y * C.reshape(self.weight, shape) + C.reshape(self.bias, shape)

    @replayed  # inside chainrule.compile, every replay updates the running statistics again
    def _update(self, mean: np.ndarray, var: np.ndarray, count: int) -> None:
        """running = (1 - m) running + m batch (var unbiased); momentum None: a plain average."""
        mean, var = mean.reshape(-1), var.reshape(-1) * (count / (count - 1))
        self.num_batches_tracked.data[...] += 1
        m = 1 / int(self.num_batches_tracked.data) if self.momentum is None else self.momentum
        for buf, new in ((self.running_mean, mean), (self.running_var, var)):
            buf.data[...] = (1 - m) * buf.data + m * new
            buf._bump_version()

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L), per channel, as PyTorch.

    Training normalises with the batch's mean and biased variance and moves the running
    statistics by `momentum` (the variance unbiased); eval uses the running statistics.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> bn = nn.BatchNorm1d(2)
    >>> y = bn(cr.tensor([[1.0, 2.0], [3.0, 6.0]]))
    >>> y.data.round(4).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    >>> [[round(v, 4) for v in b.tolist()] for b in (bn.running_mean, bn.running_var)]
    [[0.2, 0.4], [1.1, 1.7]]
    """

    dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W), per channel, as PyTorch."""

    dims = (4,)


class GroupNorm(Module):
    """Normalise each sample over groups of C / num_groups channels (and all positions).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.GroupNorm(2, 4)(cr.ones(3, 4, 5)).shape
    (3, 4, 5)
    """

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if num_groups < 1 or num_channels % num_groups:
            raise ValueError(
                f"GroupNorm: num_channels {num_channels} must be divisible by num_groups "
                f"{num_groups}"
            )
        self.num_groups, self.num_channels, self.eps, self.affine = (
            num_groups,
            num_channels,
            eps,
            affine,
        )
        self.weight: Parameter | None
        self.bias: Parameter | None
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Any) -> Tensor:
        x = C._t(x)
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(
                f"GroupNorm: expected input (N, {self.num_channels}, *), got shape {x.shape}"
            )
        grouped = C.reshape(x, (x.shape[0], self.num_groups, -1))
        y = C.reshape(_normalize(grouped, (2,), self.eps)[0], x.shape)
        if self.weight is None:
            return y
        shape = (1, -1) + (1,) * (x.ndim - 2)
        return y * C.reshape(self.weight, shape) + C.reshape(self.bias, shape)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
