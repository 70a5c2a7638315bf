"""The drawable graph: one `Node` per tensor (and per constant operand), one `Edge` per input.

`build(root)` walks `Tensor.parents` iteratively (non-grad tensors and Python constants included,
so the picture shows every operand) and names each node: the tensor's `name`, else an infix
expression of its inputs' names (`w2*a1`), else `v3`. Knows tensors only through their public
attributes (`op`, `parents`, `params`, `data`, `requires_grad`, `is_leaf`) and labels ops
with the op table's `infix`; imports NumPy, `tensor` and `ops`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule.ops import OPS
from chainrule.tensor import Tensor

ATOM = 5  # precedence of a name or a number; the op table's `infix` uses the same scale


def infix(op: str) -> tuple[str, int, tuple[int, ...]] | None:
    """The op's graph label from the op table: (template, precedence of the result, least
    precedence of each operand left bare), or None for function notation `op(args)`."""
    entry = OPS.get(op)
    return entry.infix if entry is not None else None


class GraphFreedError(RuntimeError):
    """The graph behind a tensor was freed by `backward()` (no `retain_graph=True`)."""


@dataclass
class Node:
    """One value in the graph. `kind` is "op", "input" (a leaf that requires grad), "param"
    (an `nn.Parameter`) or "const" (no gradient: a tensor without requires_grad, a number)."""

    index: int
    label: str
    kind: str
    value: np.ndarray
    op: str | None = None
    inputs: tuple[int, ...] = ()
    requires_grad: bool = False
    tensor: Any = field(default=None, repr=False)
    grad: np.ndarray | None = None
    is_output: bool = False
    group: str | None = None
    prec: int = ATOM
    inline: bool = False  # the label is the expression of the inputs (an unnamed result)


@dataclass
class Edge:
    """Input `argnum` of node `dst` is node `src`; `local` is d dst / d src for scalar pairs,
    `contribution` the part of src's gradient that flows back along this edge."""

    src: int
    dst: int
    argnum: int
    local: float | None = None
    contribution: np.ndarray | None = None


@dataclass
class GraphModel:
    """Nodes in topological order (inputs first), the edges, and the output's index."""

    nodes: list[Node]
    edges: list[Edge]
    root: int

    def consumers(self, index: int) -> list[Edge]:
        """Edges leaving `index` (one per use of the value as an input)."""
        return [e for e in self.edges if e.src == index]

    def node_of(self, t: Tensor) -> Node | None:
        """The node drawn for tensor `t`, if it is in the graph."""
        return next((n for n in self.nodes if n.tensor is t), None)


def build(root: Tensor, names: dict[int, str] | None = None, max_label: int = 18) -> GraphModel:
    """The graph behind `root`, nodes named by `names` (id(tensor) -> name), tensor names, or
    an expression of at most `max_label` characters.

    Raises
    ------
    GraphFreedError
        If a `backward()` without `retain_graph=True` already freed part of the graph.
    """
    if not isinstance(root, Tensor):
        raise TypeError(f"expected a chainrule Tensor, got {type(root).__name__}")
    names = names or {}
    nodes: list[Node] = []
    index: dict[int, int] = {}
    counters = {"v": 0, "input": 0, "param": 0, "const": 0}
    for t in _postorder(root):
        inputs = []
        for p in t.parents if t.op is not None else ():
            if isinstance(p, Tensor):
                inputs.append(index[id(p)])
            else:
                inputs.append(_add(nodes, _constant(p, len(nodes), counters)))
        index[id(t)] = _add(
            nodes, _tensor_node(t, tuple(inputs), nodes, names, counters, max_label)
        )
    edges = [Edge(src, n.index, k) for n in nodes for k, src in enumerate(n.inputs)]
    nodes[index[id(root)]].is_output = True
    return GraphModel(nodes, edges, index[id(root)])


def _add(nodes: list[Node], node: Node) -> int:
    nodes.append(node)
    return node.index


def _postorder(root: Tensor) -> list[Tensor]:
    """Every tensor behind root, inputs before outputs; an explicit stack, no recursion."""
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        t, expanded = stack.pop()
        if expanded:
            order.append(t)
            continue
        if id(t) in seen:
            continue
        seen.add(id(t))
        stack.append((t, True))
        if t.op is None:
            continue
        if t._parents is None:
            raise GraphFreedError(_freed(root))
        for p in reversed(t.parents):
            if isinstance(p, Tensor) and id(p) not in seen:
                stack.append((p, False))
    return order


def _freed(root: Tensor) -> str:
    who = f"{root.name!r}" if root.name else "this tensor"
    return (
        f"the graph behind {who} was freed by backward(); draw or trace it before backward, "
        "or call backward(retain_graph=True). viz.graph(t, backward=True) and viz.trace(t) "
        "compute every gradient themselves without calling backward()"
    )


def _kind(t: Tensor) -> str:
    if t.op is not None:
        return "op"
    if not t.requires_grad:
        return "const"
    return "param" if any(c.__name__ == "Parameter" for c in type(t).__mro__) else "input"


def _tensor_node(
    t: Tensor,
    inputs: tuple[int, ...],
    nodes: list[Node],
    names: dict[int, str],
    counters: dict[str, int],
    max_label: int,
) -> Node:
    kind = _kind(t)
    node = Node(
        len(nodes),
        "",
        kind,
        t.data,
        op=t.op.name if t.op else None,
        inputs=inputs,
        requires_grad=t.requires_grad,
        tensor=t,
    )
    name = names.get(id(t)) or t.name
    if name:
        node.label = name
    elif kind == "op":
        node.label, node.prec = expression(t.op.name, [nodes[i] for i in inputs])
        node.inline = True
        if len(node.label) > max_label:
            node.inline = False
            counters["v"] += 1
            node.label, node.prec = f"v{counters['v']}", ATOM
    elif kind == "const" and t.data.size == 1:
        node.label, node.prec = _number_label(t.data.reshape(()).item())
    else:
        counters[kind] += 1
        node.label = f"{kind}{counters[kind]}"
    if t.grad is not None:
        node.grad = np.asarray(t.grad.data)
    return node


def _constant(value: Any, i: int, counters: dict[str, int]) -> Node:
    arr = np.asarray(value)
    if arr.size == 1:
        label, prec = _number_label(arr.reshape(()).item())
    else:
        counters["const"] += 1
        label, prec = f"const{counters['const']}", ATOM
    return Node(i, label, "const", arr, prec=prec)


def _number_label(v: Any) -> tuple[str, int]:
    text = f"{v:.4g}" if isinstance(v, float) else str(v)
    return text, (3 if text.startswith("-") else ATOM)


def is_number(n: Node) -> bool:
    """Whether the node is a constant labelled by its own value (the 2 in x^2)."""
    try:
        float(n.label)
    except ValueError:
        return False
    return n.kind == "const"


def expression(op: str, args: list[Node]) -> tuple[str, int]:
    """Infix text for the op applied to its inputs' labels, parenthesised by precedence;
    `-1*t` is written `-t` and `a + -t` is written `a - t` (SymPy's subtraction)."""
    if op == "mul" and len(args) == 2:
        for a, b in (args, args[::-1]):
            if is_number(a) and float(a.label) == -1:
                return "-" + (b.label if b.prec >= 3 else f"({b.label})"), 3
    if op == "add" and len(args) == 2:
        for a, b in (args, args[::-1]):
            if b.prec == 3 and b.label.startswith("-") and a.label[:1] != "-":
                return f"{a.label} - {b.label[1:]}", 1
    form = infix(op)
    if form is not None and len(form[2]) == len(args):
        template, prec, need = form
        parts = [a.label if a.prec >= k else f"({a.label})" for a, k in zip(args, need)]
        return template.format(*parts), prec
    return f"{op}({', '.join(a.label for a in args)})", ATOM
