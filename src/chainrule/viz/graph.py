"""`graph(t)`: the computational graph behind a tensor, with values, gradients and local
derivatives, as a `Graph` that renders to SVG, PNG (matplotlib) or Graphviz DOT.

Layout is chainrule's own (`layout.py`), so no Graphviz install is needed; `to_dot()` is there
for those who prefer Graphviz's layout. Modules can be collapsed to one box each (`groups.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from chainrule.tensor import Tensor
from chainrule.viz import dot, gradients, png, svg
from chainrule.viz import groups as groups_mod
from chainrule.viz.model import GraphModel, build
from chainrule.viz.scene import Scene, build_scene

GroupSpec = Mapping[int, str] | Callable[[Tensor], str | None] | None


class Graph:
    """A drawable computational graph; build it with :func:`graph`.

    Attributes
    ----------
    model : GraphModel
        The nodes (labels, values, gradients) and edges (local derivatives) drawn.
    scene : Scene
        The boxes and edges after grouping, with their layout.
    """

    def __init__(self, model: GraphModel, scene: Scene) -> None:
        self.model = model
        self.scene = scene

    def __repr__(self) -> str:
        m = self.model
        out = m.nodes[m.root].label
        return f"<Graph of {out}: {len(m.nodes)} nodes, {len(m.edges)} edges>"

    def to_dot(self) -> str:
        """Graphviz DOT source (render with `dot -Tsvg`; Graphviz lays it out itself)."""
        return dot.render(self.scene)

    def to_svg(self) -> str:
        """A standalone SVG document, laid out by chainrule."""
        return svg.render(self.scene)

    def save(self, path: str | Path, dpi: int = 150) -> Path:
        """Write the drawing; the format comes from the extension.

        `.svg` and `.dot`/`.gv` need nothing; `.png`, `.pdf`, `.jpg` use matplotlib.
        Returns the path written.
        """
        path = Path(path)
        ext = path.suffix.lower().lstrip(".")
        if ext == "svg":
            path.write_text(self.to_svg(), encoding="utf-8")
        elif ext in ("dot", "gv"):
            path.write_text(self.to_dot(), encoding="utf-8")
        elif ext in ("png", "pdf", "jpg", "jpeg"):
            png.save(self.scene, path, dpi=dpi)
        else:
            raise ValueError(
                f"save: cannot tell the format of {str(path)!r}; use .svg, .png, .pdf, .jpg or .dot"
            )
        return path

    def _repr_svg_(self) -> str:
        return self.to_svg()


def graph(
    t: Tensor,
    *,
    backward: bool = False,
    gradient: Any = None,
    groups: GroupSpec = None,
    module: Any = None,
    names: Mapping[int, str] | None = None,
    digits: int = 3,
    max_label: int = 18,
) -> Graph:
    """Draw the graph that computed `t`: every operand, its value and (when known) gradient.

    Parameters
    ----------
    t : Tensor
        The output. Its graph must still exist: draw before `backward()`, or after
        `backward(retain_graph=True)`.
    backward : bool
        Compute d t / d node for every node (intermediates included) and show it, without
        calling `t.backward()` or touching any `.grad`. Otherwise the boxes show the `.grad`
        the tensors hold (leaves after a backward, and non-leaves that called `retain_grad()`).
    gradient : array_like, optional
        Seed for `backward=True` when `t` is not a scalar.
    groups : mapping or callable, optional
        Collapse nodes into one box per group: `{id(tensor): "label"}`, or a function
        `tensor -> label or None`.
    module : nn.Module, optional
        Name parameters after the module's `named_parameters()` ("fc1.weight"); combine with
        ``groups=viz.module_groups(...)`` to draw one box per submodule.
    names : mapping, optional
        `{id(tensor): "label"}` for tensors without a `name`.
    digits : int
        Decimals shown.
    max_label : int
        Longer infix expressions are replaced by short names (v1, v2, ...).

    Returns
    -------
    Graph

    Raises
    ------
    GraphFreedError
        When `backward()` (without `retain_graph=True`) already freed the graph.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import viz
    >>> x = cr.tensor(2.0, requires_grad=True, name="x")
    >>> y = cr.sin(x) * x
    >>> g = viz.graph(y, backward=True)
    >>> [n.label for n in g.model.nodes]
    ['x', 'sin(x)', 'sin(x)*x']
    >>> g.to_svg().startswith("<?xml")
    True
    """
    label_map = dict(names or {})
    if module is not None:
        label_map.update(groups_mod.parameter_names(module))
    model = build(t, label_map, max_label=max_label)
    if backward:
        gradients.backward(model, gradient)
    gradients.local_derivatives(model)
    by_node = groups_mod.resolve(model, groups)
    return Graph(model, build_scene(model, by_node, digits))
