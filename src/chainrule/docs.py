"""docs/ops.md, generated from the op table (`python -m chainrule.docs > docs/ops.md`)."""

from __future__ import annotations

from chainrule.ops import OPS, OpDef


def _names(op: OpDef) -> str:
    return ", ".join(f"`{n}`" for n in op.names) or "-"


def ops_markdown() -> str:
    """The op reference as Markdown, straight from `ops.OPS`: the primitives, the functions a
    learner types (composites of them) and where chainrule differs from PyTorch and NumPy."""
    ops = [op for op in OPS.values() if not op.user]
    lines = [
        "# Primitive ops",
        "",
        "Generated from `chainrule.ops.OPS` by `python -m chainrule.docs`; do not edit by hand.",
        "Every other function (softmax, mean, var, losses, ...) is composed from these, so its",
        "derivative follows from the rules below by the chain rule. The names column lists what",
        "the parser of `chainrule explain` and `chainrule backprop` accepts for each op.",
        "",
        "| op | derivative rule | inputs | names | SymPy twin |",
        "|---|---|---|---|---|",
    ]
    for op in ops:
        if op.primitive:
            arity = "n" if op.variadic else str(op.arity)
            twin = "yes" if op.sym is not None else f"none: {op.nosym}"
            lines.append(f"| `{op.name}` | {op.doc} | {arity} | {_names(op)} | {twin} |")
    lines += [
        "",
        "## Functions a learner types",
        "",
        "Composites of the primitives above (the engine records their pieces), each with a",
        "SymPy twin, so the parser and the explainer know them by name.",
        "",
        "| function | derivative rule | names |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{op.name}` | {op.doc} | {_names(op)} |"
        for op in ops
        if not op.primitive and op.differentiable
    ]
    lines += [
        "",
        "## Not differentiable",
        "",
        "Predicates, indices and new tensors. Their results carry no gradient at all",
        "(`requires_grad` is False, as in PyTorch), which is not a zero gradient: nothing flows",
        "back to the inputs through them. Use them as masks (`where`) or indices (`getitem`),",
        "whose gradients are defined.",
        "",
        "| op | what it computes | returns |",
        "|---|---|---|",
    ]
    lines += [f"| `{op.name}` | {op.doc} | {op.returns} |" for op in ops if not op.differentiable]
    lines += [
        "",
        "## Differences from PyTorch and NumPy",
        "",
        "Where a derivative does not exist, or where chainrule chose one of several conventions",
        "(from the op table's `kink` and `differs` fields).",
        "",
        "| op | difference |",
        "|---|---|",
    ]
    for op in ops:
        for note in (op.kink, op.differs):
            if note:
                lines.append(f"| `{op.name}` | {note} |")
    lines += [
        "",
        "## Batching rules (vmap)",
        "",
        "Every op not listed here is elementwise: vmap moves its batch axes to the front and",
        "broadcasting does the rest. These carry a rule of their own (the table's `batch` field).",
        "",
        "| op | batching rule |",
        "|---|---|",
    ]
    for op in ops:
        if op.batch is not None:
            doc = " ".join((op.batch.__doc__ or "").split())
            lines.append(f"| `{op.name}` | {doc} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(ops_markdown(), end="")
