"""Derivations as data for the page: MathML built from SymPy, sent as element trees.

The page never parses markup: every formula travels as a JSON tree ``[tag, {attrs}, child...]``
(a child is a tree or a text string) that the browser rebuilds with ``createElementNS`` and
``textContent`` from a fixed list of tags. ``MathMLMath`` speaks the renderers' small math
vocabulary (``symbolic.mathprint.TextMath``), so ``symbolic.render``'s lines and templates give
the same steps in MathML as in text and LaTeX.
"""

from __future__ import annotations

import html
import re
import string
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from typing import Any

import sympy as sp
from sympy.printing.mathml import MathMLPresentationPrinter

from chainrule.symbolic import render as V
from chainrule.symbolic.mathprint import TextMath

Tree = list[Any]  # [tag, {attr: value}, child, ...]

# The only tags the page rebuilds (app.js keeps the same lists).
MATHML_TAGS = frozenset(
    {"math", "mrow", "mi", "mn", "mo", "msup", "msub", "msubsup", "mfrac", "msqrt", "mroot"}
    | {"mtext", "mspace", "mstyle"}
)
SVG_TAGS = frozenset({"svg", "defs", "marker", "path", "rect", "g", "text", "title", "line"})
_ENTITY = re.compile(r"&([A-Za-z][A-Za-z0-9]*);")
_XML_ENTITIES = {"lt", "gt", "amp", "quot", "apos"}
_TAG = re.compile(r"(<[^>]+>)")
_PLUS_MINUS = re.compile(r"<mo>\+</mo>((?:<mrow>)*)<mo>[-−]</mo>")


class _Presentation(MathMLPresentationPrinter):
    """SymPy's presentation MathML with the notation of the text renderer: e, ln, σ, and sums
    last in products (σ(x)(1 − σ(x)), 6x(x² + 1)²), as the text and LaTeX renderers print them."""

    def _print_Relational(self, e):
        # SymPy's printer writes text unescaped (it keeps its own entities), so its x < 0 was
        # <mo><</mo>, markup no parser reads: a piecewise derivative (relu's) crashed the page.
        row = self.dom.createElement("mrow")
        row.appendChild(self._print(e.lhs))
        op = self.dom.createElement("mo")
        sign = {"<": "&lt;", ">": "&gt;", "<=": "≤", ">=": "≥", "!=": "≠", "==": "="}
        op.appendChild(self.dom.createTextNode(sign.get(e.rel_op, html.escape(e.rel_op))))
        row.appendChild(op)
        row.appendChild(self._print(e.rhs))
        return row

    def _print_Mul(self, expr):
        if expr.could_extract_minus_sign():
            row = self.dom.createElement("mrow")
            minus = self.dom.createElement("mo")
            minus.appendChild(self.dom.createTextNode("-"))
            row.appendChild(minus)
            row.appendChild(self._print(-expr))
            return row
        if sp.fraction(expr)[1] is not sp.S.One:
            return super()._print_Mul(expr)
        coeff, terms = expr.as_coeff_mul()
        factors = sorted(sp.Mul._from_args(terms).as_ordered_factors(), key=lambda f: f.is_Add)
        args = (coeff, *factors) if coeff != 1 else tuple(factors)
        saved = self._outer_order = self._settings["order"]
        self._settings["order"] = "old"  # "old": SymPy prints the factors as given
        try:
            return super()._print_Mul(sp.Mul._from_args(args))
        finally:
            self._settings["order"] = saved

    def _print_Add(self, expr, order=None):
        current = self._settings["order"]  # the factors' "old" must not reach a sum inside
        self._settings["order"] = getattr(self, "_outer_order", current)
        try:
            return super()._print_Add(expr)
        finally:
            self._settings["order"] = current

    def _print_Exp1(self, e):
        x = self.dom.createElement("mi")
        x.appendChild(self.dom.createTextNode("e"))
        return x

    def _print_exp(self, e):
        sup = self.dom.createElement("msup")
        sup.appendChild(self._print_Exp1(sp.E))
        sup.appendChild(self._print(e.args[0]))
        return sup

    def _print_Pow(self, e):
        printed = super()._print_Pow(e)
        if isinstance(e.base, sp.exp) and printed.nodeName == "msup":  # (eˣ)², not e^(x²)
            base = printed.removeChild(printed.firstChild)
            printed.insertBefore(self._paren(base), printed.firstChild)
        return printed

    def _named(self, name: str, arg):
        row = self.dom.createElement("mrow")
        head = self.dom.createElement("mi")
        head.appendChild(self.dom.createTextNode(name))
        row.appendChild(head)
        row.appendChild(self._paren(self._print(arg)))
        return row

    def _paren(self, inner):
        row = self.dom.createElement("mrow")
        for piece in ("(", inner, ")"):
            if isinstance(piece, str):
                mo = self.dom.createElement("mo")
                mo.appendChild(self.dom.createTextNode(piece))
                row.appendChild(mo)
            else:
                row.appendChild(piece)
        return row

    def _print_log(self, e):
        return self._named("ln", e.args[0])

    def _print_sigmoid(self, e):
        return self._named("σ", e.args[0])

    def _print_relu(self, e):
        return self._named("relu", e.args[0])

    def _print_softplus(self, e):
        return self._named("softplus", e.args[0])


def _glue(text: str) -> str:
    """The renderers join pieces with plain text (' = ', ' + ', '−', ', '): make it <mo>."""
    out, depth = [], 0
    for piece in _TAG.split(text):
        if piece.startswith("<"):
            closing, selfclosing = piece.startswith("</"), piece.endswith("/>")
            depth += 0 if selfclosing else (-1 if closing else 1)
            out.append(piece)
        elif depth == 0:
            out += [f"<mo>{html.escape(c)}</mo>" for c in piece if not c.isspace()]
        else:
            out.append(piece)
    return "".join(out)


class MathMLMath(TextMath):
    """The renderers' math vocabulary, printing presentation-MathML fragments."""

    times_sign = "<mo>·</mo>"

    def __init__(self) -> None:
        self._printer = _Presentation({"order": "none", "mul_symbol": None})
        self._text = TextMath()
        # A derivation's lines print the same expressions again and again (dy/du, u, the
        # factors): 349 prints but 60 distinct ones for the six seed examples, so each is
        # printed once per printer (one printer per derivation).
        self._printed: dict[sp.Basic, str] = {}

    def expr(self, e) -> str:
        e = sp.sympify(e)
        if e not in self._printed:
            # the text printer's term order (x² + 1, sums last), the MathML printer's markup
            self._printed[e] = self._printer.doprint(_ordered(e))
        return self._printed[e]

    def deriv(self, f, x, partial: bool) -> str:
        d = "∂" if partial else "d"
        return (
            f'<mfrac><mrow><mi mathvariant="normal">{d}</mi>{self.expr(f)}</mrow>'
            f'<mrow><mi mathvariant="normal">{d}</mi>{self.expr(x)}</mrow></mfrac>'
        )

    def d_of(self, f, x, partial: bool) -> str:
        d = "∂" if partial else "d"
        head = (
            f'<mfrac><mi mathvariant="normal">{d}</mi>'
            f'<mrow><mi mathvariant="normal">{d}</mi>{self.expr(x)}</mrow></mfrac>'
        )
        return f"<mrow>{head}{self.paren(self.expr(f))}</mrow>"

    def paren(self, text: str) -> str:
        return f"<mrow><mo>(</mo>{_glue(text)}<mo>)</mo></mrow>"

    def factor(self, e, first: bool) -> str:
        e = sp.sympify(e)
        needs = e.is_Add or (not first and e.could_extract_minus_sign())
        return self.paren(self.expr(e)) if needs else self.expr(e)

    def times(self, parts: Sequence[str]) -> str:
        return "<mrow>" + self.times_sign.join(_glue(p) for p in parts) + "</mrow>"

    def frac(self, num: str, den: str) -> str:
        return f"<mfrac><mrow>{_glue(num)}</mrow><mrow>{_glue(den)}</mrow></mfrac>"


def _ordered(e: sp.Expr) -> sp.Expr:
    """Sums in the text printer's order (x² + 1, not 1 + x²); nothing re-evaluated, so a
    factored answer stays factored (-3(x + 1) is not distributed)."""
    if e.is_Atom:
        return e
    args = [_ordered(a) for a in e.args]
    if e.is_Add:
        return sp.Add(*sp.Add(*args, evaluate=False).as_ordered_terms(), evaluate=False)
    if e.is_Mul:
        return sp.Mul(*args, evaluate=False)  # _Presentation._print_Mul orders the factors
    return e.func(*args, evaluate=False) if isinstance(e, sp.Pow) else e.func(*args)


def to_tree(markup: str, allowed: frozenset[str]) -> Tree:
    """Markup (trusted: printed by SymPy or chainrule) -> a JSON element tree of allowed tags.

    Named entities such as &InvisibleTimes; become characters; a tag outside ``allowed`` or an
    attribute that could run script (on..., href) raises ValueError.
    """
    text = _ENTITY.sub(
        lambda m: m.group(0) if m.group(1) in _XML_ENTITIES else html.unescape(m.group(0)), markup
    )
    return _element(ET.fromstring(text), allowed)


def _element(el: ET.Element, allowed: frozenset[str]) -> Tree:
    tag = el.tag.rsplit("}", 1)[-1]
    if tag not in allowed:
        raise ValueError(f"to_tree: tag <{tag}> is not allowed")
    attrs = {}
    for k, v in el.attrib.items():
        k = k.rsplit("}", 1)[-1]
        if k.lower().startswith("on") or "href" in k.lower():
            raise ValueError(f"to_tree: attribute {k!r} is not allowed")
        attrs[k] = v
    out: Tree = [tag, attrs]
    if el.text and el.text.strip():
        out.append(el.text)
    for child in el:
        out.append(_element(child, allowed))
        if child.tail and child.tail.strip():
            out.append(child.tail)
    return out


def math(fragment: str) -> Tree:
    """A MathML fragment (with the renderers' plain-text glue) as a <math> tree."""
    body = _glue(fragment).replace("<mo>-</mo>", "<mo>−</mo>").replace("<mn>-", "<mo>−</mo><mn>")
    body = _PLUS_MINUS.sub(r"<mo>−</mo>\1", body)  # a + −b is written a − b
    return to_tree(f"<math>{body}</math>", MATHML_TAGS)


def line_segments(line: V.Line, lang: str, printer: MathMLMath) -> dict[str, Any]:
    """One rendered line: its rule name (the template's *bold* part) and text/math segments."""
    template = V.TEMPLATES[line.key, lang]
    segments: list[dict[str, Any]] = []
    rule = ""
    for literal, field_name, _, _ in string.Formatter().parse(template):
        for i, chunk in enumerate(literal.split("*")):
            if chunk:
                bold = i % 2 == 1
                rule = rule or (chunk if bold else "")
                segments.append({"text": chunk, "bold": bold})
        if field_name is not None:
            segments.append({"math": math(line.math[field_name](printer))})
    return {"key": line.key, "rule": rule, "segments": segments}


def step_tree(lines: Sequence[V.Line], lang: str) -> list[dict[str, Any]]:
    """A derivation's lines nested by depth: each node has ``children`` (its sub-steps) and
    ``line``, its index in ``lines`` (how the checker points at a step)."""
    printer = MathMLMath()
    roots: list[dict[str, Any]] = []
    stack: list[tuple[int, dict[str, Any]]] = []
    for i, line in enumerate(lines):
        node = {**line_segments(line, lang, printer), "line": i, "children": []}
        while stack and stack[-1][0] >= line.depth:
            stack.pop()
        (stack[-1][1]["children"] if stack else roots).append(node)
        stack.append((line.depth, node))
    return roots
