"""What is drawn: a `GraphModel` (optionally with groups collapsed) as boxes of text and edges.

Decides each box's lines (name, op, value, gradient), its style by kind (input, parameter,
constant, op, output, group) and each edge's label (the local derivative of a scalar edge).
Text is monospace, so box sizes follow from character counts; `svg.py`, `png.py` and `dot.py`
all draw this one scene.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from chainrule.viz import fmt
from chainrule.viz.layout import Layout, layout
from chainrule.viz.model import GraphModel, Node, is_number

FONT_SIZE = 12.0
CHAR_W = 0.6 * FONT_SIZE  # DejaVu Sans Mono advance width; monospace fonts are close to 0.6 em
LINE_H = 15.0
PAD_X, PAD_Y = 8.0, 5.0
LABEL_FONT = 10.5

# kind -> (fill, stroke, dashed, stroke width)
STYLES = {
    "input": ("#dbeafe", "#1d4ed8", False, 1.2),
    "param": ("#dcfce7", "#15803d", False, 1.2),
    "const": ("#f3f4f6", "#6b7280", True, 1.0),
    "op": ("#ffffff", "#374151", False, 1.0),
    "output": ("#ffedd5", "#c2410c", False, 2.4),
    "group": ("#ede9fe", "#6d28d9", False, 1.6),
}
# line role -> (colour, bold)
ROLES = {
    "title": ("#111827", True),
    "op": ("#6b7280", False),
    "value": ("#111827", False),
    "grad": ("#b91c1c", False),
}
LEGEND = (
    "blue: input   green: parameter   grey: constant   orange: output   purple: group\n"
    "edge label: local derivative d(out)/d(in)   red: gradient d{out}/d(node)"
)


@dataclass
class SceneNode:
    key: str
    lines: list[tuple[str, str]]  # (text, role)
    kind: str
    tooltip: str = ""

    @property
    def size(self) -> tuple[float, float]:
        w = max(len(t) * CHAR_W * (1.0 if r != "op" else 0.92) for t, r in self.lines)
        return w + 2 * PAD_X, len(self.lines) * LINE_H + 2 * PAD_Y


@dataclass
class SceneEdge:
    src: int
    dst: int
    label: str | None = None
    tooltip: str = ""

    @property
    def label_size(self) -> tuple[float, float] | None:
        if not self.label:
            return None
        return len(self.label) * 0.6 * LABEL_FONT + 4, LABEL_FONT * 1.4


@dataclass
class Scene:
    nodes: list[SceneNode]
    edges: list[SceneEdge]
    legend: str = ""
    _layout: Layout | None = field(default=None, repr=False)

    def canvas(self) -> tuple[float, float, list[tuple[float, str]]]:
        """Width and height of the drawing, and the legend lines with their baselines."""
        lay = self.layout()
        lines = self.legend.splitlines()
        width = max([lay.width] + [len(t) * 0.6 * LABEL_FONT + 24 for t in lines])
        height = lay.height + LABEL_FONT * 1.5 * len(lines) + (6 if lines else 0)
        ys = [lay.height + LABEL_FONT * (1.5 * i + 1.1) for i in range(len(lines))]
        return width, height, list(zip(ys, lines))

    def layout(self) -> Layout:
        if self._layout is None:
            self._layout = layout(
                [n.size for n in self.nodes],
                [(e.src, e.dst) for e in self.edges],
                [e.label_size for e in self.edges],
            )
        return self._layout


def build_scene(model: GraphModel, groups: dict[int, str] | None = None, digits: int = 3) -> Scene:
    """One box per node not in a group, one per group; edges inside a group are dropped."""
    groups = groups or {}
    out_label = model.nodes[model.root].label
    keys: dict[int, int] = {}
    nodes: list[SceneNode] = []
    members: dict[str, list[Node]] = {}
    for n in model.nodes:
        g = groups.get(n.index)
        if g is not None:
            members.setdefault(g, []).append(n)
            continue
        keys[n.index] = len(nodes)
        nodes.append(_node_box(n, digits, out_label))
    for g, ms in members.items():
        for n in ms:
            keys[n.index] = len(nodes)
        nodes.append(_group_box(g, ms, model, digits))
    edges: list[SceneEdge] = []
    seen: set[tuple[int, int]] = set()
    for e in model.edges:
        u, v = keys[e.src], keys[e.dst]
        if u == v:
            continue
        grouped = e.src in groups or e.dst in groups
        if grouped and (u, v) in seen:
            continue
        seen.add((u, v))
        src, dst = model.nodes[e.src], model.nodes[e.dst]
        label = None if grouped or e.local is None else "×" + fmt.number(e.local, digits)
        tip = f"d({dst.label})/d({src.label}) = {fmt.number(e.local, 6)}" if label else ""
        edges.append(SceneEdge(u, v, label, tip))
    return Scene(nodes, edges, LEGEND.replace("{out}", out_label if len(out_label) < 12 else "out"))


def _node_box(n: Node, digits: int, out_label: str) -> SceneNode:
    lines = [(n.label, "title")]
    if is_number(n):  # a constant operand is its own label
        return SceneNode(f"n{n.index}", lines, "const", f"constant {n.label}")
    if n.op is not None:
        lines.append((n.op, "op"))
    elif n.kind != "const" or n.tensor is not None:
        lines.append(({"input": "input", "param": "parameter"}.get(n.kind, "constant"), "op"))
    lines += _array_lines("", n.value, digits, "value")
    if n.grad is not None:
        lines += _array_lines("grad ", n.grad, digits, "grad", shape=False)
    kind = "output" if n.is_output else n.kind
    return SceneNode(f"n{n.index}", lines, kind, f"{n.label}: {n.op or n.kind}")


def _array_lines(
    prefix: str, a: np.ndarray, digits: int, role: str, shape: bool = True
) -> list[tuple[str, str]]:
    a = np.asarray(a)
    if a.size == 1 or (a.ndim == 1 and a.size <= fmt.SMALL_ARRAY):
        return [(prefix + fmt.value_lines(a, digits)[0], role)]
    summary = fmt.value_lines(a, digits)
    lines = [(summary[0], role)] if shape else []
    if len(summary) > 1:
        lines.append((prefix + summary[1], role))
    return lines


def _count(k: int, word: str) -> str:
    return f"{k} {word}" + ("" if k == 1 else "s")


def _group_box(label: str, ms: list[Node], model: GraphModel, digits: int) -> SceneNode:
    """A collapsed module: its ops, parameters and the value of what leaves it."""
    inside = {n.index for n in ms}
    ops = [n for n in ms if n.kind == "op"]
    params = [n for n in ms if n.kind in ("param", "input")]
    lines = [
        (label, "title"),
        (f"{_count(len(ops), 'op')}, {_count(len(params), 'parameter')}", "op"),
    ]
    for p in params[:4]:
        lines.append((f"{p.label.split('.')[-1]} {fmt.shape(p.value)}", "op"))
    exits = [
        n for n in ms if n.is_output or any(e.dst not in inside for e in model.consumers(n.index))
    ]
    for n in exits[:1]:
        lines += _array_lines("", n.value, digits, "value")
        if n.grad is not None:
            lines += _array_lines("grad ", n.grad, digits, "grad", shape=False)
    return SceneNode(
        "g" + str(ms[0].index),
        lines,
        "output" if any(n.is_output for n in ms) else "group",
        f"{label}: " + ", ".join(sorted({n.op for n in ops if n.op})),
    )
