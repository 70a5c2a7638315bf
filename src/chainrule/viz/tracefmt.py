"""A `Trace` as plain text, Markdown or LaTeX, from one description of each line.

A backward line is a chain of equal stages: the chain rule in d-notation, upstream numbers times
the symbolic local derivatives, all numbers, the per-consumer contributions, the result. Each
format supplies only its notation (how to write d out/d x, a product, a label, a number).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from chainrule.viz import fmt
from chainrule.viz.model import ATOM, Node, expression, infix, is_number

if TYPE_CHECKING:
    from chainrule.viz.trace import Step, Trace


@dataclass(frozen=True)
class Notation:
    times: str
    label: Callable[[str], str]
    frac: Callable[[str, str], str]


def _d_text(num: str, den: str) -> str:
    return f"d{num}/d{den}"


TEXT = Notation(" * ", lambda s: s, _d_text)
TEX = Notation(
    r" \times ", lambda s: tex_label(s), lambda a, b: rf"\frac{{\partial {a}}}{{\partial {b}}}"
)

_TEX_WORDS = {
    "sigmoid": r"\sigma",
    "log": r"\log",
    "exp": r"\exp",
    "sin": r"\sin",
    "cos": r"\cos",
    "tanh": r"\tanh",
    "sqrt": r"\sqrt",
}


# LaTeX's specials in a label (a tensor's name is any string): escaped, so a name is never markup
_TEX_SPECIALS = str.maketrans(
    {"\\": r"\backslash{}", "{": r"\{", "}": r"\}", "&": r"\&", "%": r"\%", "#": r"\#",
     "$": r"\$", "~": r"\sim{}"}
)  # fmt: skip


def tex_label(s: str) -> str:
    """`w2*a1` -> `w_{2} \\cdot a_{1}`, `sigmoid(z)` -> `\\sigma(z)`, `W^T` -> `W^{\\top}`."""
    s = s.translate(_TEX_SPECIALS)
    s = s.replace("^T", r"^{\top}").replace("*", r" \cdot ").replace("@", " ")
    s = re.sub(r"\b([A-Za-z]+)(\d+)\b", lambda m: f"{m[1]}_{{{m[2]}}}", s)
    s = re.sub(r"\b(sigmoid|log|exp|sin|cos|tanh|sqrt)\b", lambda m: _TEX_WORDS[m[1]], s)
    return s.replace("_", r"\_").replace(r"\_{", "_{")


def _wrap(n: Node) -> str:
    """A label as the variable of a derivative: `z2`, `fc1.weight`, else in parentheses."""
    return n.label if re.fullmatch(r"[\w.]+", n.label) else f"({n.label})"


def _sum_parts(text: str) -> bool:
    """Whether `text` has a + or - at parenthesis depth 0 (it needs parentheses in a product)."""
    depth = 0
    for i, c in enumerate(text):
        depth += (c == "(") - (c == ")")
        if depth == 0 and c in "+-" and 0 < i < len(text) - 1 and text[i - 1] == " ":
            return True
    return False


def _scalar(step: Step) -> bool:
    return step.grad.size == 1 and all(t.local.factors is not None for t in step.terms)


def stages(trace: Trace, step: Step, nt: Notation) -> list[str]:
    """The equal stages of one backward line, left to right, without repeats."""
    out, d = trace.output, trace.digits
    num = lambda a: fmt.number(np.asarray(a).reshape(-1)[0], d)
    frac = lambda a, b: nt.frac(nt.label(_wrap(a)), nt.label(_wrap(b)))
    if not step.terms:
        return ["1" if np.all(step.grad == 1) else "(seed)", _value(step.grad, d)]
    chain = " + ".join(
        frac(out, t.consumer) + nt.times + frac(t.consumer, step.node) for t in step.terms
    )
    if not _scalar(step):
        vjp = " + ".join(t.local.vjp_text.format(g=frac(out, t.consumer)) for t in step.terms)
        return [chain, nt.label(vjp) if nt is TEX else vjp, _value(step.grad, d)]
    symbolic, numbers = [], []
    for t in step.terms:
        text = nt.label(t.local.text)
        symbolic.append(num(t.upstream) + nt.times + (f"({text})" if _sum_parts(text) else text))
        factors = t.local.factors or (1.0,)
        numbers.append(nt.times.join([num(t.upstream), *(num(f) for f in factors)]))
    out_stages = [chain, " + ".join(symbolic), " + ".join(numbers)]
    if len(step.terms) > 1:
        out_stages.append(" + ".join(num(t.contribution) for t in step.terms))
    out_stages.append(num(step.grad))
    return [s for i, s in enumerate(out_stages) if i == 0 or s != out_stages[i - 1]]


def _value(a: np.ndarray, digits: int) -> str:
    return ", ".join(fmt.value_lines(a, digits))


def forward_stages(trace: Trace, node: Node, nt: Notation) -> list[str]:
    """`z1`, `w1*x + b1`, `0.500 + 0.200`, `0.700` (repeats and non-scalar numbers dropped)."""
    assert trace.model is not None  # trace() always keeps the model it traced
    d, nodes = trace.digits, trace.model.nodes
    value = _value(node.value, d)
    if node.op is None:
        return [nt.label(node.label), value]
    args = [nodes[i] for i in node.inputs]
    expr = expression(node.op, args)[0]
    parts = [nt.label(node.label), nt.label(expr)]
    if all(a.value.size == 1 for a in args) and node.value.size == 1:
        parts.append(_numeric(node, nodes, d, top=True)[0])
    parts.append(value)
    return [s for i, s in enumerate(parts) if i == 0 or s != parts[i - 1]]


def _numeric(node: Node, nodes: list[Node], d: int, top: bool = False) -> tuple[str, int]:
    """The node's expression with numbers for its inputs; unnamed inputs are expanded too, so
    `z1 = w1*x + b1` reads `0.500*1.000 + 0.200`, as the tutorial notes write it."""
    if node.op is not None and (top or node.inline):
        args = [_numeric(nodes[i], nodes, d) for i in node.inputs]
        return _infix(node.op, [a for a, _ in args], [p for _, p in args]), node.prec
    text = node.label if is_number(node) else fmt.value_lines(node.value, d)[0]
    return text, 3 if text.startswith("-") else ATOM


def _infix(op: str, labels: list[str], precs: list[int]) -> str:
    form = infix(op)
    if form is not None and len(form[2]) == len(labels):
        template, _, need = form
        return template.format(*[s if p >= k else f"({s})" for s, p, k in zip(labels, precs, need)])
    return f"{op}({', '.join(labels)})"


def text(trace: Trace) -> str:
    lines = ["Forward"]
    lines += ["  " + " = ".join(forward_stages(trace, n, TEXT)) for n in trace.forward]
    out = _wrap(trace.output)
    lines.append(f"Backward (d{out}/d node = sum over consumers of upstream x local)")
    for step in trace.steps:
        lhs = TEXT.frac(_wrap(trace.output), _wrap(step.node))
        lines.append("  " + " = ".join([lhs, *stages(trace, step, TEXT)]))
    return "\n".join(lines)


def _md(s: str) -> str:
    return "`" + s.replace("`", "'").replace("|", "\\|") + "`"


def markdown(trace: Trace) -> str:
    rows = ["| node | definition | value |", "|---|---|---|"]
    for n in trace.forward:
        st = forward_stages(trace, n, TEXT)
        rows.append(
            f"| {_md(n.label)} | {_md(' = '.join(st[1:-1])) if len(st) > 2 else ''} | {st[-1]} |"
        )
    rows += ["", "| gradient | chain rule | value |", "|---|---|---|"]
    for step in trace.steps:
        lhs = TEXT.frac(_wrap(trace.output), _wrap(step.node))
        st = stages(trace, step, TEXT)
        rows.append(f"| {_md(lhs)} | {_md(' = '.join(st[:-1]))} | **{st[-1]}** |")
    return "\n".join(rows)


def latex(trace: Trace) -> str:
    rows = []
    for step in trace.steps:
        lhs = TEX.frac(tex_label(_wrap(trace.output)), tex_label(_wrap(step.node)))
        body = " = ".join(stages(trace, step, TEX)).replace("(seed)", r"\text{seed}")
        rows.append(f"{lhs} &= {body}")
    return "\\begin{align*}\n" + " \\\\\n".join(rows) + "\n\\end{align*}"
