"""Layers with parameters or state: Linear, LayerNorm, Dropout, and the containers.

Every layer's forward is composed from engine ops, so its gradient comes from the op table.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

import numpy as np

from chainrule import composite as C
from chainrule import ops
from chainrule import random as _random
from chainrule.nn import init
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.tensor import Tensor, apply

__all__ = ["Dropout", "Flatten", "Identity", "LayerNorm", "Linear", "ModuleList", "Sequential"]


def _check_features(layer: Module, x: Tensor, expected: int) -> None:
    if x.ndim == 0 or x.shape[-1] != expected:
        raise ValueError(
            f"{layer!r}: expected input with {expected} features in its last dimension, got "
            f"shape {x.shape} ({x.shape[-1] if x.ndim else 'a scalar'} features)"
        )


class Linear(Module):
    """y = x W^T + b, with W of shape (out_features, in_features), as one fused op.

    Initialised as in PyTorch: W ~ U(-k, k) and b ~ U(-k, k) with k = 1 / sqrt(in_features)
    (kaiming_uniform_ with a = sqrt(5)), drawn from the global generator (`manual_seed`).

    Parameters
    ----------
    in_features, out_features : int
    bias : bool
        Whether to learn the additive bias b.
    dtype : NumPy dtype
        float32 by default.

    Raises
    ------
    ValueError
        In forward, if the input's last dimension is not `in_features` (both are named).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> layer = nn.Linear(3, 2)
    >>> layer
    Linear(in_features=3, out_features=2, bias=True)
    >>> layer(cr.ones(5, 3)).shape
    (5, 2)
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, dtype: Any = np.float32
    ) -> None:
        super().__init__()
        if in_features <= 0 or out_features <= 0:
            raise ValueError(
                f"Linear: in_features and out_features must be positive, got "
                f"{in_features} and {out_features}"
            )
        self.in_features = int(in_features)
        self.out_features = int(out_features)
        self.weight = Parameter(np.empty((out_features, in_features), dtype=dtype))
        # Optional: with bias=False the name is registered with None, as in PyTorch.
        self.bias: Parameter | None
        if bias:
            self.bias = Parameter(np.empty(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor | np.ndarray) -> Tensor:
        x = x if isinstance(x, Tensor) else C._t(x)
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            _check_features(self, x, self.in_features)
        # The fused op directly: the shapes of weight and bias are this layer's own. The bias
        # is read once: a parameter is found through Module.__getattr__ (about 0.6 us).
        bias = self.bias
        if bias is None:
            return apply(ops.linear, x, self.weight)
        return apply(ops.linear, x, self.weight, bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class LayerNorm(Module):
    """(x - mean) / sqrt(var + eps) * weight + bias over the last len(normalized_shape) axes.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> y = nn.LayerNorm(4)(cr.tensor([[1.0, 2.0, 3.0, 4.0]]))
    >>> round(float(y.mean().item()), 6), round(float(y.var().item()), 3)
    (0.0, 1.0)
    """

    def __init__(
        self,
        normalized_shape: int | tuple[int, ...],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        shape = (
            (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        )
        self.normalized_shape = shape
        self.eps = eps
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=dtype))
            self.bias = Parameter(np.zeros(shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        x = C._t(x)
        n = len(self.normalized_shape)
        if x.shape[x.ndim - n :] != self.normalized_shape:
            raise ValueError(
                f"{self!r}: expected input whose last dimensions are "
                f"{self.normalized_shape}, got shape {x.shape}"
            )
        axes = tuple(range(x.ndim - n, x.ndim))
        mu = C.mean(x, axis=axes, keepdims=True)
        d = x - mu
        var = C.mean(d * d, axis=axes, keepdims=True)
        y = d / C.sqrt(var + self.eps)
        return y * self.weight + self.bias if self.weight is not None else y

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.weight is not None}"
        )


class Dropout(Module):
    """Zero each element with probability p while training and scale the rest by 1/(1-p).

    The identity in eval mode. The mask comes from the global generator (`manual_seed`).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> drop = nn.Dropout(0.5).eval()
    >>> drop(cr.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: Tensor) -> Tensor:
        x = C._t(x)
        if not self.training or self.p == 0.0:
            return x
        if self.p == 1.0:
            return x * np.zeros(x.shape, dtype=x.dtype)
        keep = _random.generator().random(x.shape) >= self.p
        return x * (keep.astype(x.dtype) / x.dtype.type(1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. for an optional layer)."""

    def forward(self, x: Tensor) -> Tensor:
        return x


class Flatten(Module):
    """Flattens dimensions start_dim.. into one (images (N, 8, 8) -> (N, 64))."""

    def __init__(self, start_dim: int = 1) -> None:
        super().__init__()
        self.start_dim = start_dim

    def forward(self, x: Tensor) -> Tensor:
        return C.flatten(C._t(x), self.start_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}"


_S = TypeVar("_S", bound="_ModuleSequence")


class _ModuleSequence(Module):
    """What Sequential and ModuleList share: children in order, named "0", "1", ..."""

    def append(self: _S, module: Module) -> _S:
        self.add_module(str(len(self._modules)), module)
        return self

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())


class Sequential(_ModuleSequence):
    """Modules applied one after another; children are named "0", "1", ... unless given names.

    Examples
    --------
    >>> from chainrule import nn
    >>> nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    Sequential(
      (0): Linear(in_features=2, out_features=3, bias=True)
      (1): ReLU()
      (2): Linear(in_features=3, out_features=1, bias=True)
    )
    """

    def __init__(self, *modules: Module | OrderedDict[str, Module]) -> None:
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, child in modules[0].items():
                self.add_module(name, child)
        else:
            for i, m in enumerate(modules):
                # an OrderedDict among several modules is rejected by add_module at runtime
                self.add_module(str(i), m)  # type: ignore[arg-type]

    def forward(self, x: Any) -> Any:
        for module in self._modules.values():
            x = module(x)
        return x

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.items())
        if isinstance(index, slice):
            return Sequential(OrderedDict(items[index]))
        return items[index][1]


class ModuleList(_ModuleSequence):
    """A list of modules whose parameters are registered (a plain list would hide them)."""

    def __init__(self, modules: Iterable[Module] = ()) -> None:
        super().__init__()
        for m in modules:
            self.append(m)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]
