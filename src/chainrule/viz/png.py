"""A laid-out `Scene` drawn with matplotlib (PNG, PDF or anything `savefig` writes).

Uses the layout the SVG uses, one layout unit per typographic point, and DejaVu Sans Mono (shipped
with matplotlib), so text fits its boxes exactly. matplotlib is imported here only, on demand,
through the Agg canvas (no GUI backend, no pyplot state).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chainrule.viz.layout import DrawingTooLarge
from chainrule.viz.scene import FONT_SIZE, LABEL_FONT, LINE_H, PAD_Y, ROLES, STYLES, Scene


def save(scene: Scene, path: str | Path, dpi: int = 150) -> None:
    """Write `scene` to `path`; the format comes from the extension (png, pdf, jpg, ...)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from matplotlib.patches import FancyArrowPatch, FancyBboxPatch
        from matplotlib.path import Path as MPath
    except ImportError as exc:  # pragma: no cover - matplotlib is in the `all` extra
        raise ImportError(
            "writing PNG needs matplotlib: pip install 'chainrule[all]' (SVG and DOT do not)"
        ) from exc
    lay = scene.layout()
    width, height, legend = scene.canvas()
    pixels = max(width, height) * dpi / 72
    if Path(path).suffix.lower() not in (".pdf", ".svg", ".eps", ".ps") and pixels >= 2**16:
        raise DrawingTooLarge(  # Agg's limit; checked before matplotlib allocates the canvas
            f"the drawing is {width * dpi / 72:.0f} x {height * dpi / 72:.0f} px at {dpi} dpi, "
            "over the 65535 px a side a raster image can have; save it as .svg or .pdf"
        )
    fig = Figure(figsize=(width / 72, height / 72))
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    mono: dict[str, Any] = {"family": "DejaVu Sans Mono"}
    for edge, route in zip(scene.edges, lay.routes):
        verts, codes = [route.points[0]], [MPath.MOVETO]
        for _, c1, c2, p1 in route.beziers():
            verts += [c1, c2, p1]
            codes += [MPath.CURVE4] * 3
        ax.add_patch(
            FancyArrowPatch(
                path=MPath(verts, codes),
                arrowstyle="-|>,head_length=5,head_width=2.5",
                color="#4b5563",
                lw=1.0,
                shrinkA=0,
                shrinkB=0,
            )
        )
        if edge.label and route.label:
            b = route.label
            ax.text(
                b.x - b.w / 2 + 2,
                b.y,
                edge.label,
                fontsize=LABEL_FONT,
                va="center",
                ha="left",
                color="#1f2937",
                **mono,
            )
    for node, box in zip(scene.nodes, lay.boxes):
        fill, stroke, dashed, sw = STYLES[node.kind]
        ax.add_patch(
            FancyBboxPatch(
                (box.x - box.w / 2, box.y - box.h / 2),
                box.w,
                box.h,
                boxstyle="round,pad=0,rounding_size=6",
                fc=fill,
                ec=stroke,
                lw=sw,
                ls="--" if dashed else "-",
            )
        )
        y0 = box.y - box.h / 2 + PAD_Y
        for i, (text, role) in enumerate(node.lines):
            colour, bold = ROLES[role]
            ax.text(
                box.x,
                y0 + LINE_H * (i + 0.5),
                text,
                ha="center",
                va="center",
                fontsize=FONT_SIZE * (0.92 if role == "op" else 1.0),
                color=colour,
                fontweight="bold" if bold else "normal",
                fontstyle="italic" if role == "op" else "normal",
                **mono,
            )
    for y, text in legend:
        ax.text(12, y, text, fontsize=LABEL_FONT, color="#6b7280", va="baseline", **mono)
    fig.savefig(str(path), dpi=dpi, facecolor="white")
