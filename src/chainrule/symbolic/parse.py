"""The safe parser for typed math: text -> SymPy expression, built node by node.

A tokenizer and a recursive-descent parser; the input is never evaluated as Python (no ``eval``,
no ``sympify``). Errors are ``ParseError`` with the column and a caret under the offending
character. Imports SymPy, ``chainrule.ops`` and ``chainrule.symbolic.functions`` only.

Reading rules (also in docs/explain.md):

- ``^`` and ``**`` are powers (right-associative, ``2^3^2 = 2^9``); ``-x^2`` is ``-(x^2)``.
- Implicit multiplication: ``2x``, ``3(x+1)``, ``x y``, ``(x+1)(x-1)``, ``2 sin x``; it has the
  same precedence as ``*`` and ``/``, so ``1/2x`` is ``(1/2)x`` (as in SymPy).
- A name with a digit or underscore is one symbol (``w1``, ``b_2``). A name of letters only is a
  function or constant name if it is one (``sin``, ``pi``), a declared name if declared (the
  left-hand sides of a program, ``wrt``), else it is split into known words and single letters:
  ``xy`` is ``x*y``, ``xsinx`` is ``x*sin(x)``. Right before ``(`` such a run must be a
  function: ``foo(x)`` is a ParseError naming ``foo`` (with close names), not ``f*o**2*x``.
- The functions and their aliases are the op table's (``ops.OpDef.names``): ``FUNCTIONS``;
  ``log_b(x)`` is the logarithm to base ``b`` (``log_2 x``, ``log_e x``).
- ``d/dx f``, ``d/dx(f)`` and ``diff(f, x)`` are f, with ``Program.wrt`` set to ``x``.
- Functions take parentheses or a bare argument: ``sin x^2`` is ``sin(x^2)``, ``sin 2x`` is
  ``sin(2x)``, ``sin x cos x`` is ``sin(x)cos(x)``; ``sin^2 x`` and ``sin²x`` are ``(sin x)^2``.
- ``e`` and ``π``/``pi`` are the constants; ``log(x)`` and ``ln(x)`` are natural logarithms,
  ``log(x, b)`` is base ``b``; ``√x``, ``x²``, ``|x|``, ``·``, ``×``, ``÷`` and ``−`` work;
  ``σ``/``sigma`` is the sigmoid. ``1e-3`` is scientific notation (write ``e - 3`` for ``e-3``).
- Input is NFKC-normalised first (fullwidth ``ｘ２`` is ``x2``; superscripts stay exponents);
  digits are ASCII only, Greek letters that look like Latin ones (``Χ``, ``ο``) are refused, a
  number has one decimal point (``1..2`` is an error), ``[`` closes with ``]`` and ``(`` with ``)``.
- Sizes are bounded by ``chainrule.limits`` (characters, nesting depth, digits of any exact
  number, statements); a constant that is undefined (``1/0``, ``log(0)``) is an error.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import sympy as sp

from chainrule import ops
from chainrule.limits import LimitError, active, check_time
from chainrule.symbolic.functions import OpTable, sympy_function
from chainrule.symbolic.tree import Tree, UndefinedError, to_sympy

__all__ = ["FUNCTIONS", "ParseError", "Program", "parse", "parse_program"]


class ParseError(ValueError):
    """Malformed typed math: ``message``, the ``text`` and the 0-based ``position``.

    ``str(error)`` shows the message with the column, the text and a caret under the character.
    """

    def __init__(self, message: str, text: str, position: int):
        self.message, self.text, self.position = message, text, position
        line_start = text.rfind("\n", 0, position) + 1
        line_end = text.find("\n", position)
        line = text[line_start : len(text) if line_end < 0 else line_end]
        caret = " " * (position - line_start) + "^"
        super().__init__(f"{message} at column {position + 1}\n  {line}\n  {caret}")


def _function_table() -> dict[str, tuple[Callable[..., sp.Expr], tuple[int, ...]]]:
    return {name: (sympy_function(op), op.nargs or (op.arity,)) for name, op in ops.NAMES.items()}


# name -> (SymPy constructor, allowed argument counts): every name and alias of the op table
# (``ops.OpDef.names``), kept current when a user defines an op with ``chainrule.defop``.
FUNCTIONS: OpTable[tuple[Callable[..., sp.Expr], tuple[int, ...]]] = OpTable(_function_table)
_LOG_BASE = re.compile(r"log_(\d+|[A-Za-z])")  # log_2(x), log_b(x), log_e(x)
_KNOWN = "the names column of docs/ops.md (chainrule.symbolic.FUNCTIONS)"
CONSTANTS = {"e": sp.E, "pi": sp.pi, "π": sp.pi}
_GREEK = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron rho"
GREEK = {*_GREEK.split(), "tau", "upsilon", "phi", "chi", "psi", "omega"}

_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")


def _superscript_alphabet() -> str:
    """Every superscript character that stands for a Latin or Greek letter, a digit, a sign or
    a bracket (``ˣ``, ``ⁿ``, ``ᵝ``, ``⁽``): kept as an exponent, never flattened by NFKC into
    a letter beside its base (``eˣ`` would be read as the product e·x, silently wrong)."""
    blocks = [(0x00AA, 0x00BB), (0x02B0, 0x0300), (0x1D2C, 0x1DC0), (0x2070, 0x209F)]
    plain = re.compile(r"[A-Za-z0-9+\u2212()α-ω]")
    return "".join(
        c
        for lo, hi in blocks
        for c in map(chr, range(lo, hi))
        if unicodedata.decomposition(c).startswith("<super>")
        and plain.fullmatch(unicodedata.normalize("NFKC", c))
    )


_SUP_CHARS = _superscript_alphabet()
_OPERATORS = {"**": "^", "×": "*", "·": "*", "⋅": "*", "÷": "/", "−": "-"}
_TOKEN = re.compile(
    r"(?P<ws>[ \t\r]+)"
    r"|(?P<num>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<ident>[A-Za-z][A-Za-z0-9_]*|[α-ωΑ-Ω][0-9_]*)"
    rf"|(?P<sup>[{_SUP_CHARS}]+)"
    r"|(?P<op>\*\*|[-+*/^()\[\],=;|√×·⋅÷−\n])"
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*|[α-ωΑ-Ω][0-9_]*")
_CLOSING = {"(": ")", "[": "]"}
# Greek letters drawn like Latin ones: beside a Latin x, a Greek Χ would be a second variable
# that prints the same, so they are refused (the spelled-out name, ``chi``, stays available).
_LOOKALIKES = dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΥΧο", "ABEZHIKMNOPTYXo"))


@dataclass(frozen=True)
class Token:
    kind: str  # num, ident, sup, op, end; after resolving: sym, func, const
    text: str
    pos: int


def normalize(text: str) -> str:
    """NFKC, character by character, except the superscripts (``x²`` must stay a power).

    >>> normalize("ｘ２ + x²")
    'x2 + x²'
    """
    if text.isascii():
        return text
    return "".join(c if c in _SUP_CHARS else unicodedata.normalize("NFKC", c) for c in text)


def _unexpected(text: str, pos: int) -> ParseError:
    c = text[pos]
    name = "" if c.isascii() else f" ({unicodedata.name(c, f'U+{ord(c):04X}')})"
    return ParseError(f"unexpected character {c!r}{name}", text, pos)


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raise ParseError at the first character that fits none.

    ``text`` is expected NFKC-normalised (``normalize``); a number is followed by neither a
    digit nor a point (``1..2``, ``1.2.3``), an identifier has no Latin look-alike letter.
    """
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _unexpected(text, pos)
        kind = m.lastgroup
        assert kind is not None  # every alternative in _TOKEN is a named group
        if kind == "num" and m.end() < len(text) and text[m.end()] in ".0123456789":
            end = re.match(r"[0-9.eE]*", text[m.end() :])
            bad = text[pos : m.end() + (end.end() if end else 0)]
            raise ParseError(f"malformed number {bad!r}", text, pos)
        if kind == "ident":
            _refuse_lookalikes(text, m.group(), pos)
        if kind != "ws":
            word = m.group()
            word = ";" if word == "\n" else _OPERATORS.get(word, word)
            tokens.append(Token(kind, word, pos))
        pos = m.end()
    tokens.append(Token("end", "", len(text)))
    return tokens


def _refuse_lookalikes(text: str, word: str, pos: int) -> None:
    for i, c in enumerate(word):
        if c in _LOOKALIKES:
            greek = unicodedata.name(c).lower().replace("greek ", "Greek ")
            raise ParseError(
                f"{c!r} is the {greek}, which looks like the Latin {_LOOKALIKES[c]!r}: "
                f"type {_LOOKALIKES[c]!r}, or spell the Greek name",
                text,
                pos + i,
            )


def check_name(name: str, what: str = "a variable name") -> str:
    """``name`` as the parser reads it (NFKC), if it is one variable name; else ParseError.

    A name is a letter, then letters, digits or ``_`` (``x``, ``w1``, ``b_2``, ``θ``), so
    nothing a renderer prints for it can be markup (``<img ...>``, ``\\input{...}``).

    >>> check_name("w_1")
    'w_1'
    """
    norm = normalize(name)
    m = _NAME.match(norm)
    if m is None or m.end() != len(norm):
        pos = m.end() if m else 0
        found = f"{norm[pos]!r}" if pos < len(norm) else "nothing"
        raise ParseError(
            f"{what} must be a letter followed by letters, digits or '_'; found {found}",
            norm,
            pos,
        )
    _refuse_lookalikes(norm, norm, 0)
    return norm


def _split_word(tok: Token, names: set[str]) -> list[Token]:
    """Resolve one identifier into function/constant/symbol tokens (see the module rules)."""
    word = tok.text
    if word in names:
        return [Token("sym", word, tok.pos)]
    if word in FUNCTIONS or _LOG_BASE.fullmatch(word):
        return [Token("func", word, tok.pos)]
    if word in CONSTANTS:
        return [Token("const", word, tok.pos)]
    if word in GREEK or not word.isalpha() or not word.isascii():
        return [Token("sym", word, tok.pos)]
    known = sorted(set(FUNCTIONS) | set(CONSTANTS) | GREEK | names, key=len, reverse=True)
    out, i = [], 0
    while i < len(word):
        piece = next((k for k in known if word.startswith(k, i)), word[i])
        sub = Token("ident", piece, tok.pos + i)
        single = len(piece) == 1 and piece not in CONSTANTS
        out += [Token("sym", piece, sub.pos)] if single else _split_word(sub, names)
        i += len(piece)
    return out


def _resolve(tokens: list[Token], names: set[str], text: str) -> list[Token]:
    out: list[Token] = []
    for tok, after in zip(tokens, [*tokens[1:], None]):
        if tok.kind == "sup" and not _SIGNED_DIGITS.fullmatch(tok.text):
            out += _superscript_expression(tok, names, text)
            continue
        if tok.kind != "ident":
            out.append(tok)
            continue
        pieces = _split_word(tok, names)
        called = after is not None and after.kind == "op" and after.text == "("
        if called and _unknown_call(tok.text, pieces[-1]):
            raise ParseError(_unknown_message(tok.text), text, tok.pos)
        out += pieces
    return out


_SIGNED_DIGITS = re.compile("[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")


def _superscript_expression(tok: Token, names: set[str], text: str) -> list[Token]:
    """A superscript that is not a plain integer (``e⁻ˣ``, ``uⁿ⁻¹``, ``e⁽ˣ⁺¹⁾``, as the
    explainer prints them) is the exponent it spells: ``^(`` its characters read as plain
    text ``)``. Each superscript character is one plain one, so positions map one to one."""
    plain = unicodedata.normalize("NFKC", tok.text)
    inner = _resolve(tokenize(plain)[:-1], names, plain)
    try:
        _parse_tokens(plain, inner, len(plain))
    except ParseError:
        raise ParseError(f"malformed superscript exponent {tok.text!r}", text, tok.pos) from None
    end = tok.pos + len(tok.text)
    return [
        Token("op", "^", tok.pos),
        Token("op", "(", tok.pos),
        *(Token(t.kind, t.text, tok.pos + t.pos) for t in inner),
        Token("op", ")", end),
    ]


def _unknown_call(word: str, last: Token) -> bool:
    """``foo(x)``: a name of several letters before '(' that is not a function, nor declared,
    nor ends in a function name (``xsin(x)`` is x·sin(x)) is a mistake, not a product of
    letters; ``x(x + 1)`` and ``w1(x + 1)`` stay products."""
    return last.kind != "func" and len(word) > 1 and word.isalpha() and last.text != word


def _unknown_message(word: str) -> str:
    known: dict[str, str] = {}
    for n in FUNCTIONS:  # the first name of an entry wins (gelu, not GELU)
        known.setdefault(n.lower(), n)
    close = difflib.get_close_matches(word.lower(), list(known), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(known[c] for c in close)}? " if close else ""
    return f"unknown function {word!r}: {hint}the known ones are in {_KNOWN}"


def _log_base(name: str) -> tuple[Callable[..., sp.Expr], tuple[int, ...]]:
    """``log_2``, ``log_b``: the logarithm to that base (a number, ``e`` or a symbol)."""
    b = name[4:]
    base = sp.Integer(b) if b.isdigit() else sp.E if b == "e" else sp.Symbol(b, real=True)
    return (lambda x: sp.log(x, base)), (1,)


@dataclass
class _Parser:
    """Recursive descent over resolved tokens; one method per precedence level."""

    text: str
    tokens: list[Token]
    i: int = 0
    abs_depth: int = 0
    depth: int = 0  # nesting of primaries and signs, bounded by Limits.max_depth
    max_depth: int = field(default_factory=lambda: active().max_depth)

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def error(self, message: str, tok: Token | None = None) -> ParseError:
        tok = tok or self.tok
        what = "end of input" if tok.kind == "end" else repr(tok.text)
        return ParseError(message.format(what=what), self.text, tok.pos)

    def take(self, text: str | None = None) -> Token:
        tok = self.tok
        if text is not None and tok.text != text:
            raise self.error(f"expected {text!r}, found {{what}}")
        self.i += 1
        return tok

    def at(self, *texts: str) -> bool:
        return self.tok.kind in ("op", "end") and self.tok.text in texts

    def nest(self) -> None:
        """One level deeper; the parser recurses, so depth is bounded before Python's stack."""
        self.depth += 1
        if self.depth > self.max_depth:
            raise self.error(f"nested more than {self.max_depth} deep (limit max_depth)")

    def expr(self) -> Tree:
        value = self.term()
        while self.at("+", "-"):
            tok = self.take()
            value = Tree("add" if tok.text == "+" else "sub", (value, self.term()), pos=tok.pos)
        return value

    def starts_factor(self) -> bool:
        tok = self.tok
        if tok.kind in ("num", "sym", "const", "func"):
            return True
        return tok.kind == "op" and (tok.text in "([√" or (tok.text == "|" and not self.abs_depth))

    def term(self) -> Tree:
        value = self.signed()
        while True:
            if self.at("*", "/"):
                tok = self.take()
                op = "mul" if tok.text == "*" else "div"
                value = Tree(op, (value, self.signed()), pos=tok.pos)
            elif self.starts_factor():
                value = Tree("mul", (value, self.power()), pos=self.tok.pos)
            else:
                return value

    def signed(self) -> Tree:
        if not self.at("-", "+"):
            return self.power()
        tok = self.take()
        self.nest()
        value = self.signed()
        self.depth -= 1
        return Tree("neg", (value,), pos=tok.pos) if tok.text == "-" else value

    def power(self) -> Tree:
        base = self.primary()
        if self.at("^"):
            tok = self.take()
            return Tree("call", (base, self.signed()), sp.Pow, pos=tok.pos)
        if self.tok.kind == "sup":
            pos = self.tok.pos
            return Tree("call", (base, self.superscript()), sp.Pow, pos=pos)
        return base

    def superscript(self) -> Tree:
        tok = self.take()
        digits = tok.text.translate(_SUPERSCRIPTS)
        if not re.fullmatch(r"[-+]?\d+", digits):
            raise self.error("malformed superscript exponent {what}", tok)
        if len(digits) > 12:
            raise self.error("superscript exponent {what} is too long", tok)
        return Tree("num", value=sp.Integer(int(digits)), pos=tok.pos)

    def primary(self) -> Tree:
        self.nest()
        value = self.primary_inner()
        self.depth -= 1
        return value

    def primary_inner(self) -> Tree:
        check_time("parsing")
        tok = self.tok
        handler = {
            "num": self.number,
            "sym": lambda: Tree("sym", value=self.take().text, pos=tok.pos),
            "const": lambda: Tree("num", value=CONSTANTS[self.take().text], pos=tok.pos),
            "func": self.call,
        }.get(tok.kind)
        if handler is not None:
            return handler()
        if self.at("(", "["):
            return self.group()
        if self.at("√"):
            self.take()
            return Tree("call", (self.power(),), sp.sqrt, pos=tok.pos)
        if self.at("|") and not self.abs_depth:
            return self.absolute()
        raise self.error("expected a number, a name or '(', found {what}")

    def number(self) -> Tree:
        tok = self.take()
        try:
            value = exact_number(tok.text, active().max_digits)
        except LimitError as exc:
            raise self.error(str(exc), tok) from None
        return Tree("num", value=value, pos=tok.pos)

    def group(self) -> Tree:
        opening = self.take()
        closing = _CLOSING[opening.text]
        inner = self.expr()
        if not self.at(closing):
            col = opening.pos + 1
            opened = f"{closing!r} to close the {opening.text!r} at column {col}"
            raise self.error(f"expected {opened}, found {{what}}")
        self.take()
        return inner

    def absolute(self) -> Tree:
        tok = self.take("|")
        self.abs_depth += 1
        inner = self.expr()
        self.abs_depth -= 1
        self.take("|")
        return Tree("call", (inner,), sp.Abs, pos=tok.pos)

    def call(self) -> Tree:
        tok = self.take()
        fn, arities = FUNCTIONS.get(tok.text) or _log_base(tok.text)
        exponent = None
        if self.at("^"):  # sin^2 x
            self.take()
            exponent = self.primary()
        elif self.tok.kind == "sup":
            exponent = self.superscript()
        args = self.arguments() if self.at("(") else [self.bare_argument()]
        if len(args) not in arities:
            n = " or ".join(map(str, arities))
            raise self.error(f"{tok.text} takes {n} argument(s), got {len(args)}", tok)
        value = Tree("call", tuple(args), fn, pos=tok.pos)
        return value if exponent is None else Tree("call", (value, exponent), sp.Pow, pos=tok.pos)

    def arguments(self) -> list[Tree]:
        self.take("(")
        args = [self.expr()]
        while self.at(","):
            self.take()
            args.append(self.expr())
        self.take(")")
        return args

    def bare_argument(self) -> Tree:
        """``sin 2x`` -> sin(2x): implicit products up to the next operator or function name."""
        value = self.signed()
        while self.starts_factor() and self.tok.kind != "func":
            value = Tree("mul", (value, self.power()), pos=self.tok.pos)
        return value


_NUMBER = re.compile(r"([0-9]*)\.?([0-9]*)(?:[eE]([+-]?[0-9]+))?")


def exact_number(text: str, max_digits: int) -> sp.Rational:
    """A typed decimal as an exact Rational; LimitError, before computing it, when its numerator
    or denominator would have more than ``max_digits`` digits (``1e999999999``).

    >>> exact_number("1.5e3", 1000), exact_number("0.25", 1000)
    (1500, 1/4)
    """
    m = _NUMBER.fullmatch(text)
    if m is None:
        raise ValueError(f"not a decimal number: {text!r}")
    whole, frac, exp = m.groups()
    mantissa = (whole + frac).lstrip("0")
    if not mantissa:
        return sp.Integer(0)
    shift = (int(exp) if exp and len(exp) <= 12 else 0) - len(frac)
    if (exp and len(exp) > 12) or len(mantissa) + abs(shift) > max_digits:
        shown = text if len(text) <= 24 else text[:20] + "..."
        raise LimitError("max_digits", f"the number {shown} has more than {max_digits} digits")
    n = int(mantissa)
    return sp.Integer(n * 10**shift) if shift >= 0 else sp.Rational(n, 10**-shift)


def _parse_tokens(text: str, tokens: list[Token], end: int) -> Tree:
    parser = _Parser(text, [*tokens, Token("end", "", end)])
    if parser.at(""):
        raise parser.error("expected an expression, found {what}")
    value = parser.expr()
    if not parser.at(""):
        raise parser.error("unexpected {what}")
    return value


def parse(text: str, *, names: Iterable[str] = ()) -> sp.Expr:
    """Parse one typed math expression into a SymPy expression.

    Parameters
    ----------
    text : str
        The expression, e.g. ``"(x^2+1)^3"``, ``"√(1+x²)"``, ``"σ(w1 x + b1)"``.
    names : iterable of str
        Extra names to read as single symbols (otherwise ``xy`` is ``x*y``).

    Returns
    -------
    sympy.Expr
        Symbols are real (``Symbol(name, real=True)``).

    Raises
    ------
    ParseError
        With the column and a caret under the offending character.

    Examples
    --------
    >>> parse("(x^2+1)^3")
    (x**2 + 1)**3
    >>> parse("2x sin x")
    2*x*sin(x)
    >>> parse("e^(x²) + log(x, 2)")
    exp(x**2) + log(x)/log(2)
    >>> parse("x + )")
    Traceback (most recent call last):
    ...
    chainrule.symbolic.parse.ParseError: expected a number, a name or '(', found ')' at column 5
      x + )
          ^
    """
    program = parse_program(text, names=names)
    text = normalize(text)
    if program.definitions:
        name = next(iter(program.definitions))
        raise ParseError(
            "expected one expression, found a program (use parse_program)",
            text,
            text.find(str(name)),
        )
    return program.expr


@dataclass(frozen=True)
class Program:
    """Statements ``name = expr`` (or one bare expression) in typed order.

    ``output`` is the defined name that no other definition uses; ``expr`` is its definition,
    ``definitions`` maps every defined symbol to its right-hand side (SymPy's canonical form,
    for the derivations). ``trees`` and ``tree`` are the same as typed (operands in typed order,
    for the engine and the backprop trace); empty for a program built from SymPy expressions.
    """

    definitions: dict[sp.Symbol, sp.Expr] = field(default_factory=dict)
    output: sp.Symbol | None = None
    expr: sp.Expr = sp.S.Zero
    trees: dict[sp.Symbol, Tree] = field(default_factory=dict, compare=False, repr=False)
    tree: Tree | None = field(default=None, compare=False, repr=False)
    wrt: str | None = field(default=None, compare=False)  # from ``d/dx f`` or ``diff(f, x)``

    def inline(self, expr: sp.Expr | None = None) -> sp.Expr:
        """Substitute the definitions into ``expr`` (default: the output) until only leaves remain.

        >>> parse_program("z = (u+v)^2; u = x*y; v = x + y").inline()
        (x*y + x + y)**2
        """
        expr = self.expr if expr is None else expr
        return expr.xreplace(inline_definitions(self.definitions))


def dependency_order(defs: Mapping[sp.Symbol, sp.Expr]) -> list[sp.Symbol]:
    """The defined names, each after the names its definition uses (an iterative post-order,
    linear in the size of the definitions). Raises ValueError on a cycle (which parse_program
    excludes).

    >>> u, v, x = sp.symbols("u v x")
    >>> dependency_order({u: v + 1, v: 2 * x})
    [v, u]
    """
    done: dict[sp.Symbol, None] = {}  # insertion-ordered set
    for name in defs:
        stack: list[tuple[sp.Symbol, frozenset[sp.Symbol]]] = [(name, frozenset())]
        while stack:
            top, path = stack[-1]
            if top in done:
                stack.pop()
                continue
            pending = [s for s in defs[top].free_symbols if s in defs and s not in done]
            if not pending:
                done[top] = None
                stack.pop()
                continue
            if top in path:
                raise ValueError("definitions are cyclic")
            stack += [(s, path | {top}) for s in pending]
    return list(done)


def inline_definitions(defs: Mapping[sp.Symbol, sp.Expr]) -> dict[sp.Symbol, sp.Expr]:
    """Each definition in the leaves only: substituted once each, in dependency order.

    Substituting all definitions into everything until nothing changes costs one pass per
    level of the program (a chain of n statements: n passes over ever larger expressions, each
    rebuilding every σ); in dependency order each definition is rebuilt once. Raises
    ValueError on a cycle (which parse_program excludes).

    >>> u, v, x = sp.symbols("u v x")
    >>> inline_definitions({u: v + 1, v: 2 * x})
    {u: 2*x + 1, v: 2*x}
    """
    done: dict[sp.Symbol, sp.Expr] = {}
    for name in dependency_order(defs):
        try:
            done[name] = defs[name].xreplace(done)
        except (TypeError, ValueError, ArithmeticError, AttributeError):  # SymPy cannot build it:
            shown = f"{name} = {defs[name]}"  # a0 = |-2 - e|; max(atanh(a0), x) compares a complex
            raise UndefinedError(
                f"{shown} cannot be evaluated once the names it uses are substituted", -1
            ) from None
    return {name: done[name] for name in defs}  # in the definitions' order


def parse_program(text: str, *, names: Iterable[str] = ()) -> Program:
    """Parse ``"z = (u+v)^2; u = x*y; v = x + y"`` (``;`` or newlines) or a bare expression.

    Examples
    --------
    >>> p = parse_program("z = (u+v)^2; u = x*y; v = x + y")
    >>> p.output, p.expr
    (z, (u + v)**2)
    >>> parse_program("L = 0.5*(sigmoid(w2*sigmoid(w1*x+b1)+b2) - t)^2").expr
    (-t + sigmoid(b2 + w2*sigmoid(b1 + w1*x)))**2/2
    """
    limits = active()
    if len(text) > limits.max_chars:
        raise LimitError("max_chars", f"the input has {len(text):,} characters")
    text = normalize(text)
    tokens, wrt = _derivative_request(text, tokenize(text))
    if wrt is not None:
        check_name(wrt, "the variable of d/dx or diff()")
    statements = _split_statements(text, tokens)
    if len(statements) > limits.max_statements:
        raise ParseError(
            f"more than {limits.max_statements} statements (limit max_statements)",
            text,
            statements[limits.max_statements][0][0].pos,
        )
    lhs = [s[0] for s, _ in statements if len(s) > 1 and s[1].text == "=" and s[1].kind == "op"]
    declared = {check_name(n) for n in names} | {t.text for t in lhs} | ({wrt} if wrt else set())
    for tok in lhs:
        if tok.kind != "ident" or tok.text in FUNCTIONS or tok.text in CONSTANTS:
            raise ParseError(f"cannot assign to {tok.text!r}", text, tok.pos)
    if not lhs:
        if len(statements) != 1:
            raise ParseError("expected one expression", text, statements[1][0][0].pos)
        stmt, end = statements[0]
        tree = _parse_tokens(text, _resolve(stmt, declared, text), end)
        return Program(expr=_to_sympy(tree, text), tree=tree, wrt=wrt)
    trees: dict[sp.Symbol, Tree] = {}
    for stmt, end in statements:
        if len(stmt) < 2 or stmt[1].text != "=":
            raise ParseError("expected 'name = expression' in a program", text, stmt[0].pos)
        symbol = sp.Symbol(stmt[0].text, real=True)
        if symbol in trees:
            raise ParseError(f"{symbol} is defined twice", text, stmt[0].pos)
        trees[symbol] = _parse_tokens(text, _resolve(stmt[2:], declared, text), end)
    definitions = {k: _to_sympy(t, text) for k, t in trees.items()}
    output = _find_output(definitions, text, lhs)
    return Program(definitions, output, definitions[output], trees, trees[output], wrt)


def _derivative_request(text: str, tokens: list[Token]) -> tuple[list[Token], str | None]:
    """``d/dx f``, ``d/dx(f)`` and ``diff(f, x)``: the tokens of f and the variable x (None when
    the text is not such a request).

    >>> parse_program("d/dx x^2").wrt, parse_program("diff(sin(t), t)").expr
    ('x', sin(t))
    """
    t = tokens
    d_over = len(t) > 3 and [(k.kind, k.text) for k in t[:2]] == [("ident", "d"), ("op", "/")]
    if d_over and t[2].kind == "ident" and t[2].text.startswith("d") and len(t[2].text) > 1:
        return t[3:], t[2].text[1:]
    call = len(t) > 6 and (t[0].kind, t[0].text, t[1].text) == ("ident", "diff", "(")
    if call and (t[-4].text, t[-3].kind, t[-2].text) == (",", "ident", ")") and _closes(t[1:-1]):
        return [*t[2:-4], t[-1]], t[-3].text
    return tokens, None


def _closes(tokens: list[Token]) -> bool:
    """Whether the first token's '(' is closed by the last token and not before."""
    depth = 0
    for k, tok in enumerate(tokens):
        depth += {"(": 1, ")": -1}.get(tok.text, 0) if tok.kind == "op" else 0
        if depth == 0:
            return k == len(tokens) - 1
    return False


def _to_sympy(tree: Tree, text: str) -> sp.Expr:
    try:
        return to_sympy(tree)
    except UndefinedError as exc:
        raise ParseError(exc.message, text, max(exc.position, 0)) from None


def _split_statements(text: str, tokens: list[Token]) -> list[tuple[list[Token], int]]:
    """Statements separated by ';' or newlines, each with the position where it ends."""
    statements: list[tuple[list[Token], int]] = []
    current: list[Token] = []
    for tok in tokens:
        if tok.kind == "end" or (tok.kind == "op" and tok.text == ";"):
            if current:
                statements.append((current, tok.pos))
            current = []
        else:
            current.append(tok)
    if not statements:
        raise ParseError("expected an expression, found end of input", text, len(text))
    return statements


def _find_output(defs: dict[sp.Symbol, sp.Expr], text: str, lhs: list[Token]) -> sp.Symbol:
    """The one defined name no other definition uses; definitions must not be cyclic."""
    used = {s for rhs in defs.values() for s in rhs.free_symbols}
    sinks = [s for s in defs if s not in used]
    position = dict(zip(defs, (t.pos for t in lhs)))
    if len(sinks) != 1:
        which = ", ".join(map(str, sinks)) or "none (the definitions are cyclic)"
        pos = position[sinks[1]] if len(sinks) > 1 else 0
        raise ParseError(f"a program needs exactly one output; candidates: {which}", text, pos)
    # Iterative depth-first walk, each name entered once (following every path instead took
    # exponential time on a program whose statements each use the two before); a name reached
    # again while still on the current path is a cycle.
    seen: set[sp.Symbol] = set()
    path: set[sp.Symbol] = {sinks[0]}
    stack = [(sinks[0], iter([s for s in defs[sinks[0]].free_symbols if s in defs]))]
    while stack:
        name, uses = stack[-1]
        used_name = next(uses, None)
        if used_name is None:
            stack.pop()
            path.discard(name)
            seen.add(name)
        elif used_name in path:
            raise ParseError(
                f"{used_name} is defined in terms of itself", text, position[used_name]
            )
        elif used_name not in seen:
            path.add(used_name)
            stack.append((used_name, iter([s for s in defs[used_name].free_symbols if s in defs])))
    if unused := [s for s in defs if s not in seen]:
        raise ParseError(f"{unused[0]} is defined but never used", text, position[unused[0]])
    return sinks[0]
