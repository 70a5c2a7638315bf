"""Math notation for the renderers: one-line Unicode (``TextMath``) and LaTeX (``LatexMath``).

Both offer the same small vocabulary (an expression, dy/dx, d/dx(f), products, fractions), so a
rendered line is written once and printed either way. Imports SymPy and functions.py only.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

import sympy as sp
from sympy.printing.latex import LatexPrinter
from sympy.printing.precedence import PRECEDENCE
from sympy.printing.str import StrPrinter

ORDERED_TERMS_MAX = 100  # see steps.ORDERED_TERMS_MAX: longer sums print in SymPy's stored order
_SUPER_CHARS = "0123456789-+nixyuvt"
_SUPER = str.maketrans(_SUPER_CHARS, "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺ⁿⁱˣʸᵘᵛᵗ")
_NUMBER_END = re.compile(r"(?:^|[^\w.])\d+(?:\.\d+)?$")
_LETTER_END = re.compile(r"(?:^|[^\w])[A-Za-zα-ωΑ-Ω]$")
_LETTER_START = re.compile(r"^[A-Za-zα-ωΑ-Ω](?![\w(^])")


if TYPE_CHECKING:  # a mixin: super() is the SymPy printer it is mixed into (untyped: Any)
    from sympy.printing.printer import Printer as _Printer
else:
    _Printer = object


class _SumsLast(_Printer):
    """Print products with their sums last, as textbooks do: σ(x)(1 − σ(x)), e^x(x² + 2x), and a
    derivative symbol (rules.Rate) after them: (2a + 1)·da/dx, never da/dx(2a + 1)."""

    def _print_Mul(self, expr, **kwargs):
        factors = expr.as_ordered_factors()
        moved = sorted(factors, key=lambda f: (hasattr(f, "parts"), bool(f.is_Add)))
        if moved == factors:
            return super()._print_Mul(expr, **kwargs)
        coefficient, rest = expr.as_coeff_Mul()
        if coefficient.is_negative:  # -3x·e^x(x + 1), not SymPy's -1·3x·... of an unevaluated Mul
            return "-" + self._print(-coefficient * rest)
        # order "none" keeps our factor order; _print_Add restores the real order inside.
        self._saved_order, self._settings["order"] = self._settings["order"], "none"
        try:
            return super()._print_Mul(sp.Mul(*moved, evaluate=False), **kwargs)
        finally:
            self._settings["order"] = self._saved_order

    def _print_Add(self, expr, **kwargs):
        current = self._settings["order"]
        self._settings["order"] = getattr(self, "_saved_order", current)
        if len(expr.args) > ORDERED_TERMS_MAX:
            self._settings["order"] = "none"
        try:
            return super()._print_Add(expr, **kwargs)
        finally:
            self._settings["order"] = current


class _UnicodeStr(_SumsLast, StrPrinter):
    """StrPrinter with x², √x, e^x, ln, |x|, σ; '*' is resolved by ``TextMath.expr``."""

    def _print_Pow(self, expr, rational=False):
        base, exp = expr.args
        if exp.is_Rational and exp < 0:
            return "1/" + self.parenthesize(sp.Pow(base, -exp), PRECEDENCE["Mul"], strict=True)
        if exp is sp.S.Half:
            return "√" + self.parenthesize(base, PRECEDENCE["Atom"], strict=True)
        if exp.is_Integer and isinstance(base, sp.Function) and base.func is not sp.exp:
            head = self._print(base)
            name, _, rest = head.partition("(")
            return f"{name}{str(exp).translate(_SUPER)}({rest}" if rest else head + "^" + str(exp)
        head = self.parenthesize(base, PRECEDENCE["Pow"], strict=True)
        if base.is_Pow or isinstance(base, sp.exp):  # x²² and eˣ² read as one exponent
            head = f"({self._print(base)})"
        if exp.is_Integer:
            return head + str(exp).translate(_SUPER)
        return head + self._exponent(exp)

    def _exponent(self, exp) -> str:
        """Superscript when every character has one (eˣ, e⁻ˣ, uⁿ⁻¹), else ^x or ^(...)."""
        text = _join_product(self._print(exp)).replace(" ", "")
        if all(c in _SUPER_CHARS for c in text):
            return text.translate(_SUPER)
        return "^" + (text if exp.is_Symbol or (exp.is_Integer and exp >= 0) else f"({text})")

    def _print_exp(self, expr):
        return "e" + self._exponent(expr.args[0])

    def _print_Exp1(self, expr):
        return "e"

    def _print_Pi(self, expr):
        return "π"

    def _print_log(self, expr):
        return f"ln({self._print(expr.args[0])})"

    def _print_Abs(self, expr):
        return f"|{self._print(expr.args[0])}|"

    def _print_sigmoid(self, expr):
        return f"σ({self._print(expr.args[0])})"

    def _print_Heaviside(self, expr):
        return f"𝟙({self._print(expr.args[0])} > 0)"

    def _print_Max(self, expr):  # as typed (max), not SymPy's class name
        return f"max({', '.join(self._print(a) for a in expr.args)})"

    def _print_Min(self, expr):
        return f"min({', '.join(self._print(a) for a in expr.args)})"

    def _print_Equality(self, expr):
        return f"{self._print(expr.lhs)} = {self._print(expr.rhs)}"

    def _print_Piecewise(self, expr):
        """(1 if x > 0; 1/100 otherwise): leaky_relu's and elu's derivatives, case by case."""
        cases = [
            f"{self._print(e)} " + ("otherwise" if c == sp.true else f"if {self._print(c)}")
            for e, c in expr.args
        ]
        return "(" + "; ".join(cases) + ")"


def _join_product(text: str) -> str:
    """Write each '*' as juxtaposition where that is unambiguous (6x(x² + 1)², xy), else '·'."""
    pieces = text.split("*")
    out = [pieces[0]]
    for prev, piece in itertools.pairwise(pieces):
        tight = piece.startswith("(") or (
            bool(_NUMBER_END.search(prev)) and bool(re.match(r"[A-Za-zα-ωΑ-Ω√|]", piece))
        )
        tight = tight or (bool(_LETTER_END.search(prev)) and bool(_LETTER_START.match(piece)))
        if (prev.endswith("e") and _LETTER_END.search(prev)) or re.match(r"e(?!\w)", piece):
            tight = piece.startswith("(")
        out += ["" if tight else "·", piece]
    return "".join(out)


def _top_level(text: str, chars: str) -> bool:
    """Whether one of ``chars`` occurs in ``text`` outside all parentheses."""
    depth = 0
    for c in text:
        depth += (c == "(") - (c == ")")
        if depth == 0 and c in chars:
            return True
    return False


class TextMath:
    """One-line Unicode math: ``6x(x² + 1)²``, ``dy/dx``, ``d/dx(x² + 1)``."""

    times_sign = "·"

    def __init__(self):
        self._printer = _UnicodeStr()

    def expr(self, e) -> str:
        return _join_product(self._printer.doprint(sp.sympify(e))).replace("-", "−")

    def deriv(self, f, x, partial: bool) -> str:
        d = "∂" if partial else "d"
        return f"{d}{self.expr(f)}/{d}{self.expr(x)}"

    def d_of(self, f, x, partial: bool) -> str:
        d = "∂" if partial else "d"
        return f"{d}/{d}{self.expr(x)}({self.expr(f)})"

    def paren(self, text: str) -> str:
        return f"({text})"

    def factor(self, e, first: bool) -> str:
        text = self.expr(e)
        needs = sp.sympify(e).is_Add or (not first and text.startswith("−"))
        return self.paren(text) if needs else text

    def times(self, parts: Sequence[str]) -> str:
        return self.times_sign.join(parts)

    def frac(self, num: str, den: str) -> str:
        num = self.paren(num) if _top_level(num, " ") else num
        den = self.paren(den) if _top_level(den, " ·/") else den
        return f"{num}/{den}"

    def text(self, prose: str) -> str:
        return prose

    def bold(self, prose: str) -> str:
        return prose


class _Latex(_SumsLast, LatexPrinter):
    def _print_Heaviside(self, expr, exp=None):
        inner = rf"\mathbb{{1}}\left[{self._print(expr.args[0])} > 0\right]"
        return inner if exp is None else rf"\left({inner}\right)^{{{exp}}}"

    def _print_sign(self, expr, exp=None):
        inner = rf"\operatorname{{sign}}\left({self._print(expr.args[0])}\right)"
        return inner if exp is None else rf"{inner}^{{{exp}}}"

    def _print_Rate(self, expr, exp=None):  # rules.Rate: the symbol du/dx as a fraction
        d, u, x = expr.parts()
        d = r"\partial " if d == "∂" else "d"
        u, x = (self._print(sp.Symbol(n)) for n in (u, x))
        inner = rf"\frac{{{d}{u}}}{{{d}{x}}}"
        return inner if exp is None else rf"\left({inner}\right)^{{{exp}}}"


_LATEX_SPECIALS = str.maketrans({c: "\\" + c for c in "%&#_${}"} | {"\\": r"\backslash "})


class LatexMath(TextMath):
    """LaTeX math: ``6 x \\left(x^{2} + 1\\right)^{2}``, ``\\frac{dy}{dx}``."""

    times_sign = r" \cdot "

    def __init__(self):
        self._printer = _Latex({"ln_notation": True})

    def expr(self, e) -> str:
        return self._printer.doprint(sp.sympify(e))

    def deriv(self, f, x, partial: bool) -> str:
        d = r"\partial " if partial else "d"
        return rf"\frac{{{d}{self.expr(f)}}}{{{d}{self.expr(x)}}}"

    def d_of(self, f, x, partial: bool) -> str:
        d = r"\partial " if partial else "d"
        return rf"\frac{{{d}}}{{{d}{self.expr(x)}}}\left({self.expr(f)}\right)"

    def paren(self, text: str) -> str:
        return rf"\left({text}\right)"

    def factor(self, e, first: bool) -> str:
        text = self.expr(e)
        needs = sp.sympify(e).is_Add or (not first and text.startswith("-"))
        return self.paren(text) if needs else text

    def frac(self, num: str, den: str) -> str:
        return rf"\frac{{{num}}}{{{den}}}"

    def text(self, prose: str) -> str:
        return rf"\text{{{prose.translate(_LATEX_SPECIALS)}}}" if prose else ""

    def bold(self, prose: str) -> str:
        return rf"\textbf{{{prose.translate(_LATEX_SPECIALS)}}}"
