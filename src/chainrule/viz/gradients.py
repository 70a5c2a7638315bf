"""Gradients for the drawing and the trace, computed from the graph without touching `.grad`.

Runs the engine's one reverse sweep (`chainrule.backward.sweep`) over the tensors behind a
`GraphModel`, with hooks that keep what `Tensor.backward` throws away: every intermediate
gradient and the contribution of every edge. Also gives each scalar edge its local derivative,
from the same per-node `pullback`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.backward import SweepHooks, pullback, sweep, toposort
from chainrule.ops import NUMPY_NS
from chainrule.tensor import Tensor
from chainrule.viz.model import Edge, GraphModel


class _Keep(SweepHooks):
    """Writes each gradient of the sweep onto the model: `node.grad`, `edge.contribution`."""

    def __init__(self, model: GraphModel) -> None:
        self.nodes = {id(n.tensor): n for n in model.nodes if isinstance(n.tensor, Tensor)}
        self.edges: dict[tuple[int, int], Edge] = {(e.dst, e.argnum): e for e in model.edges}

    def node(self, node: Tensor, g: Any) -> None:
        self.nodes[id(node)].grad = np.asarray(g)

    def edge(self, node: Tensor, argnum: int, input: Tensor, g: Any) -> None:
        self.edges[self.nodes[id(node)].index, argnum].contribution = np.asarray(g)


def backward(model: GraphModel, gradient: Any = None) -> None:
    """Fill `node.grad` for every node that requires grad, and `edge.contribution`.

    `gradient` seeds the output (default: ones, allowed only for a one-element output).
    """
    root = model.nodes[model.root]
    if gradient is None:
        if root.value.size != 1:
            raise ValueError(
                f"the output has shape {root.value.shape}; gradients need a scalar output "
                "or an explicit gradient= of the same shape"
            )
        seed = np.ones_like(root.value)
    else:
        seed = np.asarray(getattr(gradient, "data", gradient), dtype=root.value.dtype)
        if seed.shape != root.value.shape:
            raise ValueError(
                f"gradient has shape {seed.shape}, output has shape {root.value.shape}"
            )
    for node in model.nodes:
        node.grad = None
    if not root.requires_grad:
        return
    t = root.tensor
    # The picture shows NaN where a gradient is undefined instead of warning about it.
    with np.errstate(divide="ignore", invalid="ignore"):
        sweep(toposort([t]), [t], [seed], retain_graph=True, accumulate=False, hooks=[_Keep(model)])


def local_derivatives(model: GraphModel) -> None:
    """Set `edge.local` = d dst / d src for every edge between one-element values."""
    for e in model.edges:
        dst, src = model.nodes[e.dst], model.nodes[e.src]
        if dst.kind != "op" or dst.value.size != 1 or src.value.size != 1:
            continue
        if not src.requires_grad:
            continue
        with np.errstate(divide="ignore", invalid="ignore"):
            ((_, _, d),) = pullback(dst.tensor, np.ones_like(dst.value), NUMPY_NS, False, e.argnum)
        e.local = float(np.real(np.asarray(d).reshape(())))
