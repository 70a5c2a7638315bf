"""A laid-out `Scene` as a standalone SVG document (no external tools, no fonts embedded).

Boxes are rounded rectangles in the style of their kind, text is monospace so the sizes the
layout assumed hold in any browser; edges are cubic curves with an arrowhead and their label
beside them. Every node and edge carries a <title> (hover text in browsers and Jupyter).
"""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from chainrule.viz.scene import (
    CHAR_W,
    FONT_SIZE,
    LABEL_FONT,
    LINE_H,
    PAD_Y,
    ROLES,
    STYLES,
    Scene,
)

FONT = "DejaVu Sans Mono, Menlo, Consolas, Liberation Mono, monospace"


def render(scene: Scene) -> str:
    """The SVG text of `scene`."""
    lay = scene.layout()
    width, height, legend = scene.canvas()
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
        f'viewBox="0 0 {width:.1f} {height:.1f}" font-family={quoteattr(FONT)} '
        f'font-size="{FONT_SIZE}">',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#4b5563"/></marker></defs>',
        f'<rect width="{width:.1f}" height="{height:.1f}" fill="white"/>',
    ]
    for edge, route in zip(scene.edges, lay.routes):
        d = f"M{route.points[0][0]:.1f},{route.points[0][1]:.1f}" + "".join(
            f" C{c1[0]:.1f},{c1[1]:.1f} {c2[0]:.1f},{c2[1]:.1f} {p1[0]:.1f},{p1[1]:.1f}"
            for _, c1, c2, p1 in route.beziers()
        )
        out.append(
            f'<g class="edge"><title>{escape(edge.tooltip or "")}</title>'
            f'<path d="{d}" fill="none" stroke="#4b5563" stroke-width="1.1" '
            'marker-end="url(#arrow)"/>'
        )
        if edge.label and route.label:
            b = route.label
            out.append(
                f'<text x="{b.x - b.w / 2 + 2:.1f}" y="{b.y + LABEL_FONT * 0.35:.1f}" '
                f'font-size="{LABEL_FONT}" fill="#1f2937">{escape(edge.label)}</text>'
            )
        out.append("</g>")
    for node, box in zip(scene.nodes, lay.boxes):
        out.append(_node(node, box))
    for y, text in legend:
        out.append(
            f'<text class="legend" x="12" y="{y:.1f}" font-size="{LABEL_FONT}" '
            f'fill="#6b7280">{escape(text)}</text>'
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _node(node, box) -> str:
    fill, stroke, dashed, sw = STYLES[node.kind]
    x0, y0 = box.x - box.w / 2, box.y - box.h / 2
    dash = ' stroke-dasharray="4,3"' if dashed else ""
    parts = [
        f'<g class="node {node.kind}" id="{node.key}"><title>{escape(node.tooltip)}</title>',
        f'<rect x="{x0:.1f}" y="{y0:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" rx="6" '
        f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"{dash}/>',
    ]
    for i, (text, role) in enumerate(node.lines):
        colour, bold = ROLES[role]
        y = y0 + PAD_Y + LINE_H * (i + 0.75)
        weight = ' font-weight="bold"' if bold else ""
        size = f' font-size="{FONT_SIZE * 0.92:.2f}" font-style="italic"' if role == "op" else ""
        parts.append(
            f'<text x="{box.x:.1f}" y="{y:.1f}" text-anchor="middle" fill="{colour}"'
            f'{weight}{size} textLength="{len(text) * CHAR_W * (0.92 if size else 1):.1f}"'
            f' lengthAdjust="spacingAndGlyphs">{escape(text)}</text>'
        )
    parts.append("</g>")
    return "\n".join(parts)
