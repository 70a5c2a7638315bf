"""A `Scene` as Graphviz DOT, for users who have Graphviz (`dot -Tpdf graph.dot -o graph.pdf`).

The same boxes, colours, lines and edge labels as the built-in SVG; Graphviz does its own
layout. Strings are quoted and escaped, so any label is valid DOT.
"""

from __future__ import annotations

from chainrule.viz.scene import ROLES, STYLES, Scene


def _quote(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _html(s: str) -> str:
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def render(scene: Scene, name: str = "chainrule") -> str:
    """DOT source: `digraph`, top to bottom, one HTML-label box per node."""
    lines = [
        f"digraph {_quote(name)} {{",
        '  graph [rankdir=TB, nodesep=0.3, ranksep=0.35, fontname="Courier"];',
        '  node [shape=box, style="rounded,filled", fontname="Courier", fontsize=11];',
        '  edge [fontname="Courier", fontsize=9, color="#4b5563", arrowsize=0.7];',
    ]
    for i, node in enumerate(scene.nodes):
        fill, stroke, dashed, sw = STYLES[node.kind]
        rows = []
        for text, role in node.lines:
            colour, bold = ROLES[role]
            t = _html(text)
            t = f"<B>{t}</B>" if bold else (f"<I>{t}</I>" if role == "op" else t)
            rows.append(f'<FONT COLOR="{colour}">{t}</FONT>')
        style = '"rounded,filled,dashed"' if dashed else '"rounded,filled"'
        lines.append(
            f"  n{i} [label=<{'<BR/>'.join(rows)}>, fillcolor={_quote(fill)}, "
            f"color={_quote(stroke)}, penwidth={sw}, style={style}, "
            f"tooltip={_quote(node.tooltip)}];"
        )
    for e in scene.edges:
        attrs = [f"label={_quote(e.label)}"] if e.label else []
        if e.tooltip:
            attrs.append(f"tooltip={_quote(e.tooltip)}")
        lines.append(f"  n{e.src} -> n{e.dst}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"
