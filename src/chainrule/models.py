"""The model families `chainrule train --model` builds: an MLP, logistic regression, the
MNIST-1D paper's CNN and GRU (Greydanus 2020, `notebooks/models.py` of the mnist1d repository),
and a small 2-d CNN for square images (the 8x8 digits).

Every model takes a batch of flat feature vectors (N, L) and returns logits (N, classes); the
CNN and GRU read the L features as a 1-channel sequence. Built only from `chainrule.nn`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from chainrule import composite as C
from chainrule import nn
from chainrule.tensor import Tensor

__all__ = [
    "MODELS",
    "ConvNet1d",
    "ConvNet2d",
    "GRUNet",
    "Residual",
    "conv_net",
    "gru_net",
    "logistic",
    "mlp",
]


class Residual(nn.Module):
    """x + f(x): a skip connection around `f` (the paper's MLP adds one around its 2nd layer)."""

    def __init__(self, f: nn.Module) -> None:
        super().__init__()
        self.f = f

    def forward(self, x: Tensor) -> Tensor:
        return x + self.f(x)


class ConvNet1d(nn.Module):
    """The paper's ConvBase: three Conv1d layers of `channels` (kernel 5, 3, 3; stride 2;
    padding 1) with ReLU, then a linear classifier on the flattened feature maps."""

    def __init__(self, length: int, n_classes: int, channels: int = 25) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(1, channels, 5, stride=2, padding=1)
        self.conv2 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        self.conv3 = nn.Conv1d(channels, channels, 3, stride=2, padding=1)
        for k in (5, 3, 3):  # each layer's output length, as Conv1d computes it
            length = (length + 2 - k) // 2 + 1
        if length < 1:
            raise ValueError("ConvNet1d: the input is too short for three stride-2 convolutions")
        self.linear = nn.Linear(channels * length, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = C.expand_dims(C._t(x), 1)  # (N, L) -> (N, 1, L): one input channel
        for conv in (self.conv1, self.conv2, self.conv3):
            h = C.relu(conv(h))
        return self.linear(C.flatten(h, 1))


class GRUNet(nn.Module):
    """The paper's GRUBase: a bidirectional GRU (hidden size 6) over the L features read as
    a sequence, every step's output flattened into a linear classifier."""

    def __init__(self, length: int, n_classes: int, hidden_size: int = 6) -> None:
        super().__init__()
        self.gru = nn.GRU(1, hidden_size, batch_first=True, bidirectional=True)
        self.linear = nn.Linear(2 * hidden_size * length, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        out, _ = self.gru(C.expand_dims(C._t(x), -1))  # (N, L) -> (N, L, 1)
        return self.linear(C.flatten(out, 1))


class ConvNet2d(nn.Module):
    """A small 2-d CNN for square images given as flat rows (the 8x8 digits): two 3x3 Conv2d
    layers (16 and 32 channels, 'same' padding) with ReLU, 2x2 max pooling, dropout and a linear
    classifier."""

    def __init__(self, in_features: int, n_classes: int, dropout: float = 0.0) -> None:
        super().__init__()
        side = math.isqrt(in_features)
        if side * side != in_features or side < 2:
            raise ValueError(f"ConvNet2d: {in_features} features are not a square image")
        self.side = side
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.drop = nn.Dropout(dropout)
        self.linear = nn.Linear(32 * (side // 2) ** 2, n_classes)

    def forward(self, x: Tensor) -> Tensor:
        h = C.reshape(C._t(x), (-1, 1, self.side, self.side))
        h = self.pool(C.relu(self.conv2(C.relu(self.conv1(h)))))
        return self.linear(self.drop(C.flatten(h, 1)))


def mlp(
    in_features: int,
    n_classes: int,
    hidden: tuple[int, ...] = (128, 64),
    activation: type[nn.Module] = nn.ReLU,
    dropout: float = 0.0,
    residual: bool = False,
) -> nn.Sequential:
    """[Linear -> activation (-> Dropout)] per hidden size, then Linear to the logits; with
    `residual`, a hidden layer that keeps the width adds its input (x + f(x)).

    Examples
    --------
    >>> from chainrule.models import mlp
    >>> mlp(40, 10, hidden=(100, 100), residual=True)
    Sequential(
      (0): Linear(in_features=40, out_features=100, bias=True)
      (1): ReLU()
      (2): Residual(
        (f): Sequential(
          (0): Linear(in_features=100, out_features=100, bias=True)
          (1): ReLU()
        )
      )
      (3): Linear(in_features=100, out_features=10, bias=True)
    )
    """
    layers: list[nn.Module] = []
    width = in_features
    for h in hidden:
        block: list[nn.Module] = [nn.Linear(width, h), activation()]
        if dropout:
            block.append(nn.Dropout(dropout))
        if residual and h == width:
            layers.append(Residual(nn.Sequential(*block)))
        else:
            layers += block
        width = h
    layers.append(nn.Linear(width, n_classes))
    return nn.Sequential(*layers)


def logistic(in_features: int, n_classes: int, **_: Any) -> nn.Module:
    """Multinomial logistic regression: one Linear layer to the logits."""
    return nn.Linear(in_features, n_classes)


def conv_net(in_features: int, n_classes: int, **_: Any) -> nn.Module:
    return ConvNet1d(in_features, n_classes)


def gru_net(in_features: int, n_classes: int, **_: Any) -> nn.Module:
    return GRUNet(in_features, n_classes)


def conv_net2d(in_features: int, n_classes: int, dropout: float = 0.0, **_: Any) -> nn.Module:
    return ConvNet2d(in_features, n_classes, dropout)


MODELS: dict[str, Callable[..., nn.Module]] = {
    "mlp": mlp,
    "logistic": logistic,
    "cnn": conv_net,
    "gru": gru_net,
    "cnn2d": conv_net2d,
}
