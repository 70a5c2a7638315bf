"""Gradients for the drawing and the trace, computed from the graph without touching `.grad`.

Replays reverse mode over a `GraphModel` with each op's own vjps on plain arrays
(`chainrule.ops.NUMPY_NS`), keeping what `Tensor.backward` throws away: every intermediate
gradient and the contribution of every edge. Also gives each scalar edge its local derivative.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule.ops import NUMPY_NS
from chainrule.tensor import Tensor
from chainrule.viz.model import Edge, GraphModel, Node


def vjp(node: Node, argnum: int, g: np.ndarray) -> np.ndarray:
    """The gradient that upstream `g` at `node` sends to its input `argnum` (input's shape)."""
    t = node.tensor
    op = t.op
    inputs = [p.data if isinstance(p, Tensor) else p for p in t.parents]
    rule = op.vjps[0] if op.variadic else op.vjps[argnum]
    if rule is None:
        raise RuntimeError(f"{op.name}: input {argnum} is not differentiable")
    extra: dict[str, Any] = {"argnum": argnum} if op.variadic else {}
    with np.errstate(divide="ignore", invalid="ignore"):
        gi = np.asarray(rule(g, t.data, *inputs, NUMPY_NS, **extra, **t.params))
    shape = np.shape(inputs[argnum])
    return gi if gi.shape == shape else NUMPY_NS.sum_to(gi, shape)


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
    grads: dict[int, np.ndarray] = {model.root: seed}
    by_dst: dict[int, list[Edge]] = {}
    for e in model.edges:
        by_dst.setdefault(e.dst, []).append(e)
    for node in model.nodes:
        node.grad = None
    for node in reversed(model.nodes):
        g = grads.get(node.index)
        if g is None or not node.requires_grad:
            continue
        node.grad = g
        for e in by_dst.get(node.index, []) if node.kind == "op" else []:
            if not model.nodes[e.src].requires_grad:
                continue
            e.contribution = vjp(node, e.argnum, g)
            prev = grads.get(e.src)
            grads[e.src] = e.contribution if prev is None else prev + e.contribution


def local_derivatives(model: GraphModel) -> None:
    """Set `edge.local` = d dst / d src for every edge between one-element values."""
    for e in model.edges:
        dst, src = model.nodes[e.dst], model.nodes[e.src]
        if dst.kind != "op" or dst.value.size != 1 or src.value.size != 1:
            continue
        if not src.requires_grad:
            continue
        e.local = float(np.real(vjp(dst, e.argnum, np.ones_like(dst.value)).reshape(())))
