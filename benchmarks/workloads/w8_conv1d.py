"""W8 conv1d: a training step of the MNIST-1D paper's ConvBase (`chainrule.models.ConvNet1d`:
Conv1d 1->25 k5, 25->25 k3, 25->25 k3, all stride 2 padding 1, ReLU, Linear 125->10) on a
batch of 100 signals of length 40, Adam. Target: at most 1.0x PyTorch's step."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.harness import Workload
from benchmarks.workloads.layers import LayerProblem, conv_flops, linear_flops
from benchmarks.workloads.layers import build as build_layers

KEY, NAME = "W8", "conv1d-step"
BATCH, LENGTH, CLASSES = 100, 40, 10


def chainrule_model() -> Any:
    from chainrule.models import ConvNet1d

    return ConvNet1d(LENGTH, CLASSES)


def torch_model() -> Any:
    import torch
    from torch import nn

    class ConvBase(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv1d(1, 25, 5, stride=2, padding=1)
            self.conv2 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.conv3 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.linear = nn.Linear(125, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            h = x[:, None]
            for conv in (self.conv1, self.conv2, self.conv3):
                h = torch.relu(conv(h))
            return self.linear(h.flatten(1))

    return ConvBase()


def problem() -> LayerProblem:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, LENGTH)).astype(np.float32)
    flops = (
        conv_flops(BATCH, 1, 25, 5, (19,), first=True)
        + conv_flops(BATCH, 25, 25, 3, (10,), first=False)
        + conv_flops(BATCH, 25, 25, 3, (5,), first=False)
        + linear_flops(BATCH, 125, CLASSES)
    )
    about = "PyTorch's step measured at 1.2 ms on this machine (issue 14, 2 threads)"
    return LayerProblem(
        KEY, NAME, chainrule_model, torch_model, x, rng.integers(0, CLASSES, BATCH), flops, about
    )


def build(quick: bool) -> Workload:
    return build_layers(problem(), quick)
