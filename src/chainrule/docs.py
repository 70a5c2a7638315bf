"""docs/ops.md, generated from the op table (`python -m chainrule.docs > docs/ops.md`)."""

from __future__ import annotations

from chainrule.ops import OPS


def ops_markdown() -> str:
    """The op reference as Markdown: one row per primitive, straight from `ops.OPS`."""
    lines = [
        "# Primitive ops",
        "",
        "Generated from `chainrule.ops.OPS` by `python -m chainrule.docs`; do not edit by hand.",
        "Every other function (softmax, mean, var, leaky_relu, losses, ...) is composed from",
        "these, so its derivative follows from the rules below by the chain rule.",
        "",
        "| op | derivative rule | inputs | SymPy twin |",
        "|---|---|---|---|",
    ]
    for op in OPS.values():
        arity = "n" if op.variadic else str(op.arity)
        twin = "yes" if op.sym is not None else f"none: {op.nosym}"
        lines.append(f"| `{op.name}` | {op.doc} | {arity} | {twin} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(ops_markdown(), end="")
