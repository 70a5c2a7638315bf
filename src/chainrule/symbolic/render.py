"""Rule tree -> lines -> text (Unicode), Markdown or LaTeX, in English or Simplified Chinese.

``layout`` turns a tree into language-free ``Line``s (a template key, a depth and math pieces);
``TEMPLATES`` holds ALL the prose, one entry per (key, language); ``render`` prints the lines.
So every language and format shows the same steps. Imports rules.py and mathprint.py.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import sympy as sp

from chainrule.limits import active, check_time
from chainrule.symbolic import rules as R
from chainrule.symbolic.forms import keep_coefficient
from chainrule.symbolic.functions import sigmoid
from chainrule.symbolic.mathprint import LatexMath, TextMath

Math = Callable[[TextMath], str]
LANGUAGES = ("en", "zh")
FORMATS = ("text", "markdown", "latex")

# (key, language) -> template. *...* marks the rule's name (bold in Markdown and LaTeX).
TEMPLATES: dict[tuple[str, str], str] = {
    ("given", "en"): "Differentiate {eq} with respect to {x}.",
    ("given", "zh"): "求 {eq} 对 {x} 的导数。",
    ("given_program", "en"): "Differentiate {out} with respect to {x}, where {defs}.",
    ("given_program", "zh"): "已知 {defs}，求 {out} 对 {x} 的导数。",
    ("ConstantRule", "en"): "*Constant rule*: {eq}",
    ("ConstantRule", "zh"): "*常数法则*：{eq}",
    ("IdentityRule", "en"): "*Identity rule*: {eq}",
    ("IdentityRule", "zh"): "*恒等法则*：{eq}",
    ("ConstantMultipleRule", "en"): "*Constant multiple rule*: {eq}",
    ("ConstantMultipleRule", "zh"): "*常数倍法则*：{eq}",
    ("SumRule", "en"): "*Sum rule*: {eq}",
    ("SumRule", "zh"): "*和的求导法则*：{eq}",
    ("DifferenceRule", "en"): "*Sum/difference rule*: {eq}",
    ("DifferenceRule", "zh"): "*和差法则*：{eq}",
    ("PowerRule", "en"): "*Power rule* ({formula}): {eq}",
    ("PowerRule", "zh"): "*幂法则*（{formula}）：{eq}",
    ("ExpRule", "en"): "*Exponential rule* ({formula}): {eq}",
    ("ExpRule", "zh"): "*指数函数求导*（{formula}）：{eq}",
    ("LogRule", "en"): "*Logarithm rule* ({formula}): {eq}",
    ("LogRule", "zh"): "*对数函数求导*（{formula}）：{eq}",
    ("TrigRule", "en"): "*Trigonometric rule*: {eq}",
    ("TrigRule", "zh"): "*三角函数求导*：{eq}",
    ("InverseTrigRule", "en"): "*Inverse trigonometric rule*: {eq}",
    ("InverseTrigRule", "zh"): "*反三角函数求导*：{eq}",
    ("HyperbolicRule", "en"): "*Hyperbolic rule*: {eq}",
    ("HyperbolicRule", "zh"): "*双曲函数求导*：{eq}",
    ("SigmoidRule", "en"): "*Sigmoid rule* ({formula}): {eq}",
    ("SigmoidRule", "zh"): "*Sigmoid 求导*（{formula}）：{eq}",
    ("SoftplusRule", "en"): "*Softplus rule* ({formula}): {eq}",
    ("SoftplusRule", "zh"): "*Softplus 求导*（{formula}）：{eq}",
    ("ReluRule", "en"): "*ReLU rule*: {eq}, that is 1 where {pos} and 0 where {neg}; "
    "at the kink {kink} we take 0, as PyTorch does",
    (
        "ReluRule",
        "zh",
    ): "*ReLU 求导*：{eq}，即 {pos} 时为 1，{neg} 时为 0；在折点 {kink} 处按 PyTorch 的约定取 0",
    ("AbsRule", "en"): "*Absolute value rule*: {eq}; at the kink {kink} we take sign(0) = 0, "
    "as PyTorch does",
    ("AbsRule", "zh"): "*绝对值求导*：{eq}；在折点 {kink} 处取 sign(0) = 0，与 PyTorch 一致",
    ("NamedFunctionRule", "en"): "*{title} rule* ({formula}): {eq}{kink}",
    ("NamedFunctionRule", "zh"): "*{title} 求导*（{formula}）：{eq}{kink}",
    ("ExtremumRule", "en"): "*Max/min rule* (the largest/smallest argument's derivative; "
    "a tie shares it): {eq}",
    ("ExtremumRule", "zh"): "*最大/最小值法则*（取最大/最小的那个自变量的导数，相等时平分）：{eq}",
    ("ChainRule", "en"): "*Chain rule*: let {chain}.",
    ("ChainRule", "zh"): "*链式法则*：令 {chain}。",
    ("ChainProduct", "en"): "Multiply the links: {eq}",
    ("ChainProduct", "zh"): "各环节相乘：{eq}",
    ("ProductRule", "en"): "*Product rule*: {eq}",
    ("ProductRule", "zh"): "*乘积法则*：{eq}",
    ("QuotientRule", "en"): "*Quotient rule*: {eq}",
    ("QuotientRule", "zh"): "*商法则*：{eq}",
    ("LogDiffRule", "en"): "*Logarithmic differentiation* ({x} is in both base and exponent): "
    "take logarithms, {logeq}.",
    ("LogDiffRule", "zh"): "*对数求导法*（底数和指数都含 {x}）：两边取对数，{logeq}。",
    ("LogDiffResult", "en"): "Differentiate both sides and multiply by {y}: {eq}",
    ("LogDiffResult", "zh"): "两边求导，再乘以 {y}：{eq}",
    ("UnknownRule", "en"): "*No named rule* for {expr}; SymPy's derivative: {eq}",
    ("UnknownRule", "zh"): "*没有可用的命名法则*：{expr}；由 SymPy 直接求导：{eq}",
    ("MultivariableChainRule", "en"): "*Multivariable chain rule* (one term per path): {eq}",
    ("MultivariableChainRule", "zh"): "*多元链式法则*（每条路径一项）：{eq}",
    ("DirectTerm", "en"): "Direct dependence on {x}, holding {fixed} fixed:",
    ("DirectTerm", "zh"): "{x} 的直接影响（固定 {fixed}）：",
    ("PathChainRule", "en"): "*Chain rule* through the intermediate {via}: {eq}",
    ("PathChainRule", "zh"): "*链式法则*（经由中间变量 {via}）：{eq}",
    ("PathProduct", "en"): "Multiply: {eq}",
    ("PathProduct", "zh"): "相乘：{eq}",
    ("MultivariableSum", "en"): "Add the paths: {eq}",
    ("MultivariableSum", "zh"): "各路径相加：{eq}",
    ("simplify", "en"): "Simplify: {eq}",
    ("simplify", "zh"): "化简：{eq}",
    ("sigmoid", "en"): "Since {s} = {sdef} and {t} = {tdef}: {eq}",
    ("sigmoid", "zh"): "因为 {s} = {sdef}，且 {t} = {tdef}，所以 {eq}",
    ("substitute", "en"): "Substitute back {subs}: {eq}",
    ("substitute", "zh"): "代回 {subs}：{eq}",
    ("shortened", "en"): "... {omitted} steps left out: the derivation has {total} lines, "
    "more than the limit max_steps = {limit}",
    ("shortened", "zh"): "…… 省略 {omitted} 步：推导共 {total} 行，超过上限 max_steps = {limit}",
    ("by_statement_max_output", "en"): "*Statement by statement*: written out in {x}, {out} "
    "alone would take about {size} characters, more than the limit max_output = {limit}; so each "
    "intermediate's derivative is found once, in order, and the answer is given in terms of them",
    ("by_statement_max_output", "zh"): "*逐条语句求导*：{out} 用 {x} 完全展开约有 {size} 个字符，"
    "超过上限 max_output = {limit}；因此每个中间变量的导数按顺序只求一次，答案用它们表示",
    ("by_statement_max_depth", "en"): "*Statement by statement*: written out in {x}, {out} "
    "would be nested about {size} deep, more than the limit max_depth = {limit}; so each "
    "intermediate's derivative is found once, in order, and the answer is given in terms of them",
    ("by_statement_max_depth", "zh"): "*逐条语句求导*：{out} 用 {x} 完全展开约嵌套 {size} 层，"
    "超过上限 max_depth = {limit}；因此每个中间变量的导数按顺序只求一次，答案用它们表示",
    ("by_statement_max_steps", "en"): "*Statement by statement*: as one tree the derivation "
    "would take about {size} lines, more than the limit max_steps = {limit}, since it derives "
    "an intermediate again on every path to it; so each intermediate's derivative is found "
    "once, in order, and the answer is given in terms of them",
    ("by_statement_max_steps", "zh"): "*逐条语句求导*：写成一棵树的推导约有 {size} 行（每条路径都"
    "要重新求一次中间变量的导数），超过上限 max_steps = {limit}；因此每个中间变量的导数按顺序"
    "只求一次，答案用它们表示",
    ("statement", "en"): "{def}: {eq}",
    ("statement", "zh"): "{def}：{eq}",
    ("elided", "en"): "[{size} characters left out: longer than the limit max_output = {limit}]",
    ("elided", "zh"): "[省略 {size} 个字符：超过上限 max_output = {limit}]",
    ("result", "en"): "*Result*: {eq}",
    ("result", "zh"): "*结果*：{eq}",
}


@dataclass(frozen=True)
class Line:
    """One rendered line before it has a language: template key, depth and math pieces."""

    key: str
    depth: int
    math: Mapping[str, Math] = field(default_factory=dict)
    prose: Mapping[str, str] = field(default_factory=dict)  # words from the op table (a title)
    # the rule whose first line this is, so a reader of the lines can point at a step of the tree
    rule: R.Rule | None = field(default=None, compare=False, repr=False)


# -- math pieces: each takes a printer (TextMath or LatexMath) and returns a string ------------


def expr(e) -> Math:
    return lambda p: p.expr(e)


def eq(*parts: Math) -> Math:
    """a = b = c, dropping a part that prints the same as the one before it."""

    def show(p):
        out: list[str] = []
        for part in parts:
            text = part(p)
            if not out or text != out[-1]:
                out.append(text)
        return " = ".join(out)

    return show


def plus(parts: Sequence[Math]) -> Math:
    def show(p):
        text = " + ".join(part(p) for part in parts)
        return text.replace("+ −", "− ").replace("+ - ", "- ").replace("+ -", "- ")

    return show


def times(parts: Sequence[Math]) -> Math:
    return lambda p: p.times([part(p) for part in parts])


def factor(e, first: bool = False) -> Math:
    return lambda p: p.factor(e, first)


def listing(parts: Sequence[Math]) -> Math:
    return lambda p: ", ".join(part(p) for part in parts)


def _partial(e: sp.Expr, x: sp.Symbol) -> bool:
    """∂ when the function has inputs other than x, d otherwise."""
    return bool(e.free_symbols - {x})


def leaves(e: sp.Expr, definitions: Mapping[sp.Symbol, sp.Expr]) -> set[sp.Symbol]:
    """The symbols e depends on once every definition is substituted (an iterative walk)."""
    leaves, seen, stack = set(), set(), list(e.free_symbols)
    while stack:
        s = stack.pop()
        if s in seen:
            continue
        seen.add(s)
        if s in definitions:
            stack.extend(definitions[s].free_symbols)
        else:
            leaves.add(s)
    return leaves


def lhs(rule: R.Rule, name: sp.Symbol | None) -> Math:
    """dy/dx when the expression has a name, else d/dx(expression)."""
    if isinstance(rule, R.MultivariableChainRule):  # the leaves, without building the inlined
        partial = bool(leaves(rule.expr, rule.definitions) - {rule.wrt})  # expression: linear
    elif isinstance(rule, R.RateRule):
        partial = rule.partial
    else:
        partial = _partial(rule.expr, rule.wrt)
    if name is not None:
        return lambda p: p.deriv(name, rule.wrt, partial)
    return lambda p: p.d_of(rule.expr, rule.wrt, partial)


# -- layout: one function per rule class ------------------------------------------------------


def layout(rule: R.Rule, depth: int = 0, name: sp.Symbol | None = None) -> list[Line]:
    """The lines that explain ``rule`` (its sub-steps indented one level deeper)."""
    lines = _LAYOUT.get(type(rule), _function)(rule, depth, name)
    if not lines:  # a rate derived in an earlier statement prints nothing here
        return lines
    return [replace(lines[0], rule=rule), *lines[1:]]


def _leaf(key: str, rule: R.Rule, depth: int, name, **math: Math) -> list[Line]:
    return [Line(key, depth, {"eq": eq(lhs(rule, name), expr(rule.eval())), **math})]


def _constant(rule, depth, name):
    return _leaf(type(rule).__name__, rule, depth, name)


def _power(rule: R.PowerRule, depth, name):
    n, x = sp.Symbol("n"), rule.wrt
    formula = eq(lambda p: p.d_of(x**n, x, False), expr(n * x ** (n - 1)))
    return _leaf("PowerRule", rule, depth, name, formula=formula)


def _exp(rule: R.ExpRule, depth, name):
    a, x = (rule.base if rule.base is not sp.E else sp.E), rule.wrt
    general = sp.Symbol("a", positive=True) if rule.base is not sp.E else sp.E
    formula = eq(lambda p: p.d_of(general**x, x, False), expr(sp.diff(general**x, x)))
    del a
    return _leaf("ExpRule", rule, depth, name, formula=formula)


def _log(rule: R.LogRule, depth, name):
    x = rule.wrt
    general = sp.Symbol("a", positive=True) if rule.base is not sp.E else sp.E
    form = sp.log(x) if general is sp.E else sp.log(x) / sp.log(general)
    formula = eq(lambda p: p.d_of(form, x, False), expr(sp.diff(form, x)))
    return _leaf("LogRule", rule, depth, name, formula=formula)


def _function(rule: R.Rule, depth, name):
    if not isinstance(rule, R.FunctionRule):
        raise TypeError(f"render: no layout for {type(rule).__name__}")
    u = rule.argument
    kinks = {"pos": expr(sp.Gt(u, 0)), "neg": expr(sp.Lt(u, 0)), "kink": expr(sp.Eq(u, 0))}
    general = {
        R.SigmoidRule: (sigmoid(u), sigmoid(u) * (1 - sigmoid(u))),
        R.SoftplusRule: (rule.expr, sigmoid(u)),
    }.get(type(rule))
    if general:
        formula = eq(lambda p: p.deriv(sp.Symbol("σ"), u, False), expr(general[1]))
        if isinstance(rule, R.SoftplusRule):
            formula = eq(lhs(rule, None), expr(general[1]))
        kinks["formula"] = formula
    if isinstance(rule, R.NamedFunctionRule):  # title, formula and kink from the op table
        f, df = rule.function(u), R.ELEMENTARY[rule.function].derivative(u)
        kinks["formula"] = eq(lambda p: p.d_of(f, u, False), expr(df))
        (line,) = _leaf(type(rule).__name__, rule, depth, name, **kinks)
        kink = f"; {rule.kink}" if rule.kink else ""
        return [replace(line, prose={"title": rule.title, "kink": kink})]
    return _leaf(type(rule).__name__, rule, depth, name, **kinks)


def _unknown(rule: R.UnknownRule, depth, name):
    return _leaf("UnknownRule", rule, depth, name, expr=expr(rule.expr))


def _constant_multiple(rule: R.ConstantMultipleRule, depth, name):
    inner = lhs(rule.substep, None)
    if rule.constant == -1:
        scaled: Math = lambda p: ("-" if isinstance(p, LatexMath) else "−") + inner(p)
    else:
        scaled = times([factor(rule.constant, True), inner])
    head = Line(
        "ConstantMultipleRule", depth, {"eq": eq(lhs(rule, name), scaled, expr(rule.eval()))}
    )
    return [head, *layout(rule.substep, depth + 1)]


def _combined(total: sp.Expr, terms: Sequence[sp.Expr]) -> list[Math]:
    """``= total`` unless it only reorders the terms (nothing cancelled or combined)."""
    same = set(sp.Add.make_args(total)) == {t for t in terms if t != 0}
    return [] if same and len(sp.Add.make_args(total)) == len(terms) else [expr(total)]


def _sum(rule: R.SumRule, depth, name):
    negative = any(t.expr.could_extract_minus_sign() for t in rule.terms)
    values = [t.eval() for t in rule.terms]
    parts = eq(
        lhs(rule, name),
        plus([lhs(t, None) for t in rule.terms]),
        plus([expr(v) for v in values]),
        *_combined(rule.eval(), values),
    )
    key = "DifferenceRule" if negative else "SumRule"
    return [Line(key, depth, {"eq": parts}), *_children(rule.terms, depth)]


def _extremum(rule: R.ExtremumRule, depth, name):
    args = rule.arguments
    shape = eq(
        lhs(rule, name),
        plus([times([factor(rule.weight(i), True), lhs(a, None)]) for i, a in enumerate(args)]),
        expr(rule.eval()),
    )
    return [Line("ExtremumRule", depth, {"eq": shape}), *_children(args, depth)]


def _children(rules: Sequence[R.Rule], depth: int) -> list[Line]:
    return [
        line
        for r in rules
        if not isinstance(r, R.ConstantRule | R.IdentityRule) or len(rules) == 1
        for line in layout(r, depth + 1)
    ]


def _product(rule: R.ProductRule, depth, name):
    fs = rule.factors

    def term(i: int, derived: bool) -> Math:
        parts = [
            (lhs(f, None) if not derived else factor(f.eval(), j == 0))
            if j == i
            else factor(f.expr, j == 0)
            for j, f in enumerate(fs)
        ]
        return times(parts)

    values = [
        sp.Mul(*(f.eval() if j == i else f.expr for j, f in enumerate(fs))) for i in range(len(fs))
    ]
    shape = eq(
        lhs(rule, name),
        plus([term(i, False) for i in range(len(fs))]),
        plus([term(i, True) for i in range(len(fs))]),
        *_combined(rule.eval(), values),
    )
    return [Line("ProductRule", depth, {"eq": shape}), *_children(fs, depth)]


def _quotient(rule: R.QuotientRule, depth, name):
    f, g = rule.numerator, rule.denominator
    den = expr(g.expr**2)

    def over(df: Math, dg: Math) -> Math:
        top = plus(
            [times([df, factor(g.expr)]), lambda p: "−" + times([factor(f.expr, True), dg])(p)]
        )
        return lambda p: p.frac(
            top(p).replace("−", "-") if isinstance(p, LatexMath) else top(p), den(p)
        )

    shape = eq(
        lhs(rule, name),
        over(lhs(f, None), lhs(g, None)),
        over(factor(f.eval(), True), factor(g.eval())),
        expr(rule.eval()),
    )
    return [Line("QuotientRule", depth, {"eq": shape}), *_children((f, g), depth)]


def _chain(rule: R.ChainRule, depth, name):
    links = rule.links
    dependents: list[sp.Symbol | None] = [name, *(ln.variable for ln in links[:-1])]
    last = links[-1].variable
    head = [eq(expr(name) if name else expr(rule.expr), expr(links[0].outer.expr))]
    head += [eq(expr(d), expr(ln.outer.expr)) for d, ln in zip(dependents[1:], links[1:])]
    head += [eq(expr(last), expr(links[-1].definition))]
    lines = [Line("ChainRule", depth, {"chain": listing(head)})]
    for dep, ln in zip(dependents, links):
        lines += layout(ln.outer, depth + 1, dep)
    lines += layout(rule.inner, depth + 1, last)
    derivs = [lhs(ln.outer, dep) for dep, ln in zip(dependents, links)] + [lhs(rule.inner, last)]
    shown = rule.factors(evaluate=False)
    product = times([factor(f, i == 0) for i, f in enumerate(shown)])
    result = keep_coefficient(rule.eval(), rule.expr)  # 2(3x + 2)·3 = 6(3x + 2), not 18x + 12
    total = eq(lhs(rule, name), times(derivs), product, expr(result))
    return [*lines, Line("ChainProduct", depth + 1, {"eq": total})]


def _logdiff(rule: R.LogDiffRule, depth, name):
    y = name if name is not None else rule.expr
    logeq = eq(expr(sp.log(y, evaluate=False)), expr(rule.log_step.expr))
    lines = [Line("LogDiffRule", depth, {"x": expr(rule.wrt), "logeq": logeq})]
    lines += layout(rule.log_step, depth + 1)
    product = times([factor(rule.expr, True), factor(rule.log_step.eval())])
    result = eq(lhs(rule, name), product, expr(rule.eval()))
    return [*lines, Line("LogDiffResult", depth + 1, {"y": expr(y), "eq": result})]


def _multivariable(rule: R.MultivariableChainRule, depth, name):
    z = rule.output if name is None else name
    x, terms = rule.wrt, rule.terms
    paths = [times([lhs(t.partial, z), lhs(t.total, t.via)]) for t in terms]
    direct = [lhs(rule.direct, None)] if rule.direct else []
    one_path = len(terms) == 1 and not rule.direct
    key = "PathChainRule" if one_path else "MultivariableChainRule"
    head = {"eq": eq(lhs(rule, z), plus(paths + direct)), "via": expr(terms[0].via)}
    lines = [Line(key, depth, head)]
    for t in terms:
        lines += layout(t.partial, depth + 1, z) + layout(t.total, depth + 1, t.via)
    if rule.direct:
        fixed = listing([expr(t.via) for t in terms])
        lines.append(Line("DirectTerm", depth + 1, {"x": expr(x), "fixed": fixed}))
        lines += layout(rule.direct, depth + 2)
    total = eq(lhs(rule, z), value(rule), expr(rule.eval()))
    return [
        *lines,
        Line("PathProduct" if one_path else "MultivariableSum", depth + 1, {"eq": total}),
    ]


def value(rule: R.Rule) -> Math:
    """The rule's derivative, a multivariable one as its sum of paths ∂z/∂u·du/dx."""
    if not isinstance(rule, R.MultivariableChainRule):
        return expr(rule.eval())
    partials = [keep_coefficient(t.partial.eval(), t.partial.expr) for t in rule.terms]
    values = [
        times([factor(p, True), factor(t.total.eval())]) for p, t in zip(partials, rule.terms)
    ]
    return plus(values + ([expr(rule.direct.eval())] if rule.direct else []))


def statement(rule: R.Rule, name: sp.Symbol) -> Line:
    """One line for a statement derived on its own: ``b = a² + a: db/dx = (2a + 1)·da/dx``."""
    return Line(
        "statement",
        0,
        {"def": eq(expr(name), expr(rule.expr)), "eq": eq(lhs(rule, name), value(rule))},
    )


# Each layout takes its own Rule subclass, so the common type can only say "...": dispatch on
# type(rule) guarantees the match.
_LAYOUT: dict[type[R.Rule], Callable[..., list[Line]]] = {
    R.ConstantRule: _constant,
    R.IdentityRule: _constant,
    R.PowerRule: _power,
    R.ExpRule: _exp,
    R.LogRule: _log,
    R.UnknownRule: _unknown,
    R.ConstantMultipleRule: _constant_multiple,
    R.SumRule: _sum,
    R.ProductRule: _product,
    R.QuotientRule: _quotient,
    R.ChainRule: _chain,
    R.LogDiffRule: _logdiff,
    R.ExtremumRule: _extremum,
    R.MultivariableChainRule: _multivariable,
    R.RateRule: lambda rule, depth, name: [],  # derived in its own statement, before
}

# -- printing lines ----------------------------------------------------------------------------


def _fill(template: str, math: Mapping[str, Math], printer: TextMath, fmt: str, lang: str) -> str:
    out = []
    most = active().max_output
    for literal, field_name, _, _ in string.Formatter().parse(template):
        for i, chunk in enumerate(literal.split("*")):
            if chunk:
                out.append(_prose(chunk, bold=i % 2 == 1, printer=printer, fmt=fmt))
        if field_name is not None:
            piece = math[field_name](printer)
            # said in words: half a formula would not be math. A program's listing is exempt:
            # it is the typed input, already bounded by max_chars.
            if len(piece) > most and field_name != "defs":
                elided = TEMPLATES["elided", lang].format(size=f"{len(piece):,}", limit=most)
                out.append(_prose(elided, bold=False, printer=printer, fmt=fmt))
                continue
            if fmt == "markdown":  # HTML sees Markdown math too: no raw <, > or & reach it
                piece = piece.translate(_MARKDOWN_MATH)
            out.append({"markdown": f"${piece}$", "latex": f" {piece} "}.get(fmt, piece))
    return "".join(out).strip()


# What Markdown (and the HTML it becomes) would read as markup, escaped in prose and in math.
_MARKDOWN_PROSE = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|"})
_MARKDOWN_MATH = str.maketrans({"<": r"\lt ", ">": r"\gt ", "&": r"\&"})


def _prose(chunk: str, *, bold: bool, printer: TextMath, fmt: str) -> str:
    if fmt == "markdown":
        chunk = chunk.translate(_MARKDOWN_PROSE)
        return f"**{chunk}**" if bold else chunk
    if fmt == "latex":
        return printer.bold(chunk) if bold else printer.text(chunk)
    return chunk


def _words(line: Line, lang: str) -> str:
    """The line's template with its prose fields filled in (braces in them kept literal)."""
    template = TEMPLATES[line.key, lang]
    for k, v in line.prose.items():
        template = template.replace("{" + k + "}", v.replace("{", "{{").replace("}", "}}"))
    return template


def render(lines: Sequence[Line], *, lang: str = "en", fmt: str = "text") -> str:
    """Print language-free lines in ``lang`` ("en"/"zh") and ``fmt`` ("text"/"markdown"/"latex")."""
    if lang not in LANGUAGES:
        raise ValueError(f"render: lang must be one of {LANGUAGES}, got {lang!r}")
    if fmt not in FORMATS:
        raise ValueError(f"render: fmt must be one of {FORMATS}, got {fmt!r}")
    printer = TextMath() if fmt == "text" else LatexMath()
    filled = []
    for ln in lines:
        check_time("rendering the derivation")
        filled.append((ln.depth, _fill(_words(ln, lang), ln.math, printer, fmt, lang)))
    if fmt == "text":
        return "\n".join("  " * d + s for d, s in filled)
    if fmt == "markdown":
        return "\n".join("  " * d + "- " + s for d, s in filled)
    body = " \\\\\n".join(r"\quad " * d + s for d, s in filled)
    return "\\begin{array}{l}\n" + body + "\n\\end{array}"
