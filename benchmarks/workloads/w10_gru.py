"""W10 gru: a training step of the MNIST-1D paper's GRUBase (`chainrule.models.GRUNet`: a
bidirectional GRU 1->6 over 40 steps, every step's output into Linear 480->10) on a batch of
100, Adam. Target: at most 1.5x PyTorch's step."""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmarks.harness import Workload
from benchmarks.workloads.layers import LayerProblem, linear_flops
from benchmarks.workloads.layers import build as build_layers

KEY, NAME = "W10", "gru-step"
BATCH, LENGTH, HIDDEN, CLASSES = 100, 40, 6, 10


def chainrule_model() -> Any:
    from chainrule.models import GRUNet

    return GRUNet(LENGTH, CLASSES, HIDDEN)


def torch_model() -> Any:
    import torch
    from torch import nn

    class GRUBase(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(1, HIDDEN, batch_first=True, bidirectional=True)
            self.linear = nn.Linear(2 * HIDDEN * LENGTH, CLASSES)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.linear(self.gru(x[..., None])[0].flatten(1))

    return GRUBase()


def problem() -> LayerProblem:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, LENGTH)).astype(np.float32)
    gates = 3 * HIDDEN
    per_step = linear_flops(BATCH, 1, gates, first=True) + linear_flops(BATCH, HIDDEN, gates)
    flops = 2 * LENGTH * per_step + linear_flops(BATCH, 2 * HIDDEN * LENGTH, CLASSES)
    about = "PyTorch's step measured at 9.7 ms on this machine (issue 14, 2 threads)"
    return LayerProblem(
        KEY, NAME, chainrule_model, torch_model, x, rng.integers(0, CLASSES, BATCH), flops, about
    )


def build(quick: bool) -> Workload:
    return build_layers(problem(), quick)
