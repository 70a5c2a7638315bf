"""Graphs shared by the viz tests: the seed 003 section 6.1 network and a small MLP."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

SEED_INPUTS = {"x": 1.0, "w1": 0.5, "b1": 0.2, "w2": 0.8, "b2": 0.1, "t": 0.9}


def seed_network() -> tuple[cr.Tensor, dict[str, cr.Tensor]]:
    """z1 = w1 x + b1, a1 = s(z1), z2 = w2 a1 + b2, a2 = s(z2), L = (a2 - t)^2 / 2."""
    v = {
        k: cr.tensor(val, dtype=np.float64, requires_grad=True, name=k)
        for k, val in SEED_INPUTS.items()
    }
    z1 = v["w1"] * v["x"] + v["b1"]
    z1.name = "z1"
    a1 = cr.sigmoid(z1)
    a1.name = "a1"
    z2 = v["w2"] * a1 + v["b2"]
    z2.name = "z2"
    a2 = cr.sigmoid(z2)
    a2.name = "a2"
    loss = 0.5 * (a2 - v["t"]) ** 2
    loss.name = "L"
    v.update(z1=z1, a1=a1, z2=z2, a2=a2)
    return loss, v


@pytest.fixture
def seed() -> tuple[cr.Tensor, dict[str, cr.Tensor]]:
    return seed_network()


@pytest.fixture
def mlp(rng: np.random.Generator):
    """A 3-layer MLP (4-8-8-3) on a batch of 16, cross-entropy loss: matrix-valued nodes."""
    from chainrule import nn
    from chainrule.nn import functional as F

    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3))
    x = cr.tensor(rng.normal(size=(16, 4)).astype(np.float32), name="X")  # as the weights
    y = cr.tensor(rng.integers(0, 3, size=16), name="y")
    return model, x, y, F.cross_entropy
