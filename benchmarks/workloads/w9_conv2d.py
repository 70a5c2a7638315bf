"""W9 conv2d: a training step of a LeNet-5-style net on 1x28x28 images, batch 64, Adam:
Conv2d 1->6 k5, ReLU, MaxPool 2, Conv2d 6->16 k5, ReLU, MaxPool 2, Linear 256->120->84->10
with ReLU. Target: at most 1.2x PyTorch's step."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.harness import Workload
from benchmarks.workloads.layers import LayerProblem, conv_flops, linear_flops
from benchmarks.workloads.layers import build as build_layers

KEY, NAME = "W9", "conv2d-step"
BATCH, SIDE, CLASSES = 64, 28, 10


def _layers(nn: Any) -> list[Any]:
    """The same layer list in either library (their nn modules share PyTorch's names)."""
    return [
        nn.Conv2d(1, 6, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(256, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, CLASSES),
    ]


def chainrule_model() -> Any:
    from chainrule import nn

    return nn.Sequential(*_layers(nn))


def torch_model() -> Any:
    from torch import nn

    return nn.Sequential(*_layers(nn))


def problem() -> LayerProblem:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, SIDE, SIDE)).astype(np.float32)
    flops = (
        conv_flops(BATCH, 1, 6, 5, (24, 24), first=True)
        + conv_flops(BATCH, 6, 16, 5, (8, 8), first=False)
        + linear_flops(BATCH, 256, 120)
        + linear_flops(BATCH, 120, 84)
        + linear_flops(BATCH, 84, CLASSES)
    )
    about = "PyTorch's step measured at 11.3 ms on this machine (issue 14, 2 threads)"
    return LayerProblem(
        KEY, NAME, chainrule_model, torch_model, x, rng.integers(0, CLASSES, BATCH), flops, about
    )


def build(quick: bool) -> Workload:
    return build_layers(problem(), quick)
