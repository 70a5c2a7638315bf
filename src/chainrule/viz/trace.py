"""`trace(t)`: the backward pass written out, one line per node, with every chain-rule product.

Each node's gradient is the sum over its consumers of (upstream gradient) x (local derivative);
the trace lists the nodes output first (reverse topological order, closest to the output first),
with the symbolic local derivative, its numbers and the result. Rendering lives in `tracefmt.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.tensor import Tensor
from chainrule.viz import gradients, tracefmt
from chainrule.viz.formulas import Local, local
from chainrule.viz.groups import parameter_names
from chainrule.viz.model import GraphModel, Node, build, is_number


@dataclass
class Term:
    """One consumer's share: `upstream` (d out/d consumer) x `local` = `contribution`."""

    consumer: Node
    local: Local
    upstream: np.ndarray
    contribution: np.ndarray


@dataclass
class Step:
    """d out / d `node` = sum of its `terms` = `grad`."""

    node: Node
    terms: list[Term]
    grad: np.ndarray


@dataclass
class Trace:
    """The forward values and the backward walk of one output.

    Attributes
    ----------
    output : Node
        The node differentiated (its label names the numerators: dL/d...).
    forward : list of Node
        Every node, inputs first, with its value.
    steps : list of Step
        One per node that receives a gradient, in the order backprop visits them.
    digits : int
        Decimals printed.
    """

    output: Node
    forward: list[Node]
    steps: list[Step]
    digits: int = 3
    model: GraphModel | None = field(default=None, repr=False)

    def gradient(self, label: str) -> np.ndarray:
        """d output / d the node labelled `label`; KeyError names the labels there are."""
        for s in self.steps:
            if s.node.label == label:
                return s.grad
        known = ", ".join(s.node.label for s in self.steps)
        raise KeyError(f"no node labelled {label!r} receives a gradient; known: {known}")

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        """The gradient of every leaf (inputs and parameters), by label, in trace order."""
        return {s.node.label: s.grad for s in self.steps if s.node.kind in ("input", "param")}

    def to_text(self) -> str:
        """Plain ASCII: a forward section, then one `dL/dz = ... = value` line per node."""
        return tracefmt.text(self)

    def to_markdown(self) -> str:
        """Markdown tables (forward values; backward: gradient, chain rule, value)."""
        return tracefmt.markdown(self)

    def to_latex(self) -> str:
        """A LaTeX `align*` environment, one `\\frac{\\partial L}{\\partial z}` row per node."""
        return tracefmt.latex(self)

    def __str__(self) -> str:
        return self.to_text()

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def trace(
    t: Tensor,
    gradient: Any = None,
    *,
    digits: int = 3,
    names: dict[int, str] | None = None,
    module: Any = None,
) -> Trace:
    """Write out the backward pass from `t`: each gradient as a sum of chain-rule products.

    Runs its own reverse walk over the graph with the ops' vjps, so it needs no `backward()`
    and leaves every `.grad` untouched; it works before `backward()` or after
    `backward(retain_graph=True)`.

    Parameters
    ----------
    t : Tensor
        The output (a scalar, or pass `gradient`).
    gradient : array_like, optional
        Seed for a non-scalar output, shaped like `t`.
    digits : int
        Decimals printed (3 by default, as in the tutorial notes).
    names : dict, optional
        id(tensor) -> label, for tensors without a `name`.
    module : nn.Module, optional
        Label parameters by their `named_parameters()` names ("fc1.weight").

    Returns
    -------
    Trace

    Raises
    ------
    GraphFreedError
        If `backward()` without `retain_graph=True` already freed the graph.
    ValueError
        If `t` is not a scalar and no `gradient` is given.

    Examples
    --------
    >>> import chainrule as cr
    >>> x = cr.tensor(2.0, requires_grad=True, name="x")
    >>> y = x * x + cr.sin(x)
    >>> y.name = "y"
    >>> for line in trace(y).to_text().splitlines()[-1].split(" = "):
    ...     print(line)
      dy/dx
    dy/d(x*x) * d(x*x)/dx + dy/d(x*x) * d(x*x)/dx + dy/d(sin(x)) * d(sin(x))/dx
    1.000 * x + 1.000 * x + 1.000 * cos(x)
    1.000 * 2.000 + 1.000 * 2.000 + 1.000 * -0.416
    2.000 + 2.000 + -0.416
    3.584
    """
    label_map = dict(names or {})
    if module is not None:
        label_map.update(parameter_names(module))
    model = build(t, label_map)
    gradients.backward(model, gradient)
    gradients.local_derivatives(model)
    steps = [_step(model, n) for n in _backward_order(model) if n.grad is not None]
    return Trace(model.nodes[model.root], _forward_order(model), steps, digits, model)


def _forward_order(model: GraphModel) -> list[Node]:
    """Leaves first, in the order they are first used, then the ops as computed; Python
    constants (the 2 in x^2) are left out, they are in the expressions."""
    leaves: list[Node] = []
    for n in model.nodes:
        for i in n.inputs:
            leaf = model.nodes[i]
            if leaf.op is None and not is_number(leaf) and leaf not in leaves:
                leaves.append(leaf)
    if model.nodes[model.root].op is None:
        leaves = [model.nodes[model.root]]
    return leaves + [n for n in model.nodes if n.op is not None]


def _step(model: GraphModel, node: Node) -> Step:
    terms = []
    for e in model.consumers(node.index):
        if e.contribution is None:
            continue
        out = model.nodes[e.dst]
        args = [model.nodes[i] for i in out.inputs]
        terms.append(Term(out, local(out, args, e.argnum, e.local), out.grad, e.contribution))
    return Step(node, terms, node.grad)


def _backward_order(model: GraphModel) -> list[Node]:
    """Reverse topological order, nearest the output first; ties in the order inputs are
    written (so w2 comes before b2 in w2*a1 + b2, as in the tutorial notes)."""
    depth = {model.root: 0}
    for n in reversed(model.nodes):  # outputs first: every consumer is done before its inputs
        for i in n.inputs:
            depth[i] = max(depth.get(i, 0), depth.get(n.index, 0) + 1)
    seen: dict[int, int] = {}
    stack = [model.root]
    while stack:  # preorder from the output, first argument first
        i = stack.pop()
        if i in seen:
            continue
        seen[i] = len(seen)
        stack.extend(reversed(model.nodes[i].inputs))
    reachable = [n for n in model.nodes if n.index in seen]
    return sorted(reachable, key=lambda n: (depth[n.index], seen[n.index]))
