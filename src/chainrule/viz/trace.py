"""`trace(t)`: the backward pass written out, one line per node, with every chain-rule product.

Each node's gradient is the sum over its consumers of (upstream gradient) x (local derivative);
the trace lists the nodes output first (reverse topological order, closest to the output first),
with the symbolic local derivative, its numbers and the result. An unnamed operand of a sum
(`w2*a1` in `z2 = w2*a1 + b2`) passes its consumer's gradient on unchanged, so it gets no line of
its own: `dL/dw2 = dL/dz2 * dz2/dw2 = -0.056 * a1`, as the tutorial notes write it. Rendering
lives in `tracefmt.py`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.ops import OPS
from chainrule.tensor import Tensor
from chainrule.viz import gradients, tracefmt
from chainrule.viz.formulas import Local, local
from chainrule.viz.groups import parameter_names
from chainrule.viz.model import Edge, GraphModel, Node, build, is_number


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
        """d output / d the node labelled `label` (also one passed through without a line of its
        own, such as `w2*a1`); KeyError names the labels there are."""
        for s in self.steps:
            if s.node.label == label:
                return s.grad
        for n in self.model.nodes if self.model is not None else ():
            if n.label == label and n.grad is not None:
                return n.grad
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

    def __repr__(self) -> str:
        """The output and its leaves' gradients in one line (print it for the whole walk)."""
        out = self.output.label
        grads = [f"d{out}/d{k} = {_short(g, self.digits)}" for k, g in self.inputs.items()]
        more = ", ..." if len(grads) > 3 else ""
        return f"<Trace of {out}: {len(self.forward)} nodes, {', '.join(grads[:3])}{more}>"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()


def _short(a: np.ndarray, digits: int) -> str:
    a = np.asarray(a)
    return f"{a.item():.{digits}f}" if a.size == 1 else f"array of shape {a.shape}"


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
    through = {n.index for n in model.nodes if _pass_through(model, n) is not None}
    order = [n for n in _backward_order(model, through) if n.grad is not None]
    order = [n for n in order if n.index not in through]
    steps = [_step(model, n) for n in order]
    forward = [n for n in _forward_order(model) if n.index not in through]
    return Trace(model.nodes[model.root], forward, steps, digits, model)


def _identity_edge(op: str | None, argnum: int) -> bool:
    """Whether the op table's local derivative of input `argnum` is exactly 1 (the operand's
    gradient is the op's gradient: a sum, the first operand of a difference)."""
    entry = OPS.get(op or "")
    if entry is None or not entry.local:
        return False
    return entry.local[0 if entry.variadic else argnum] == "1"  # a formula function never is


def _pass_through(model: GraphModel, node: Node) -> Edge | None:
    """The edge by which `node` hands its consumer's gradient on unchanged, if it is an unnamed
    operand of a sum (labelled by its expression, used once, same shape) inside a larger
    expression; None otherwise. The output's own operands keep their lines (dy/d(x*x) says more
    than dy/dy)."""
    edges = model.consumers(node.index)
    if not node.inline or node.is_output or len(edges) != 1:
        return None
    e = edges[0]
    dst = model.nodes[e.dst]
    if not _identity_edge(dst.op, e.argnum) or dst.index == model.root:
        return None
    return e if node.value.shape == dst.value.shape else None


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
    """One term per use of `node`, named after the first consumer that has a line of its own:
    through `w2*a1`, the term of w2 reads dL/dz2 * dz2/dw2 with the local derivative a1."""
    terms = []
    for e in model.consumers(node.index):
        if e.contribution is None:
            continue
        out = model.nodes[e.dst]
        args = [model.nodes[i] for i in out.inputs]
        shown = out
        while (hop := _pass_through(model, shown)) is not None:
            shown = model.nodes[hop.dst]
        local_ = local(out, args, e.argnum, e.local)
        terms.append(Term(shown, local_, shown.grad, e.contribution))
    return Step(node, terms, node.grad)


def _backward_order(model: GraphModel, through: set[int]) -> list[Node]:
    """Reverse topological order, nearest the output first (a pass-through node adds no
    distance); among equals leaves first, then in the order inputs are written: w2, b2, a1 for
    z2 = w2*a1 + b2, as in the tutorial notes."""
    depth = {model.root: 0}
    for n in reversed(model.nodes):  # outputs first: every consumer is done before its inputs
        hop = 0 if n.index in through else 1
        for i in n.inputs:
            depth[i] = max(depth.get(i, 0), depth.get(n.index, 0) + hop)
    seen: dict[int, int] = {}
    stack = [model.root]
    while stack:  # preorder from the output, first argument first
        i = stack.pop()
        if i in seen:
            continue
        seen[i] = len(seen)
        stack.extend(reversed(model.nodes[i].inputs))
    reachable = [n for n in model.nodes if n.index in seen]
    return sorted(reachable, key=lambda n: (depth[n.index], n.op is not None, seen[n.index]))
