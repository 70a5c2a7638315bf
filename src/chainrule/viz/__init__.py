"""chainrule.viz: draw the computational graph with values and gradients, and trace backprop.

`graph(t)` returns a `Graph` (SVG, PNG, DOT; laid out by chainrule itself, no Graphviz needed);
`trace(t)` returns a `Trace` (every chain-rule product of the backward pass, as text, Markdown
or LaTeX). Imports NumPy only; matplotlib is imported when a PNG is written.
"""

from chainrule.viz.graph import Graph, graph
from chainrule.viz.groups import ModuleGroups, module_groups
from chainrule.viz.layout import DrawingTooLarge
from chainrule.viz.model import GraphFreedError
from chainrule.viz.trace import Trace, trace

__all__ = [
    "DrawingTooLarge",
    "Graph",
    "GraphFreedError",
    "ModuleGroups",
    "Trace",
    "graph",
    "module_groups",
    "trace",
]
