"""The SymPy side of the op table: the function each entry's names stand for.

An entry whose twin is one SymPy function of its arguments (``sin``, ``erf``, ``Abs``, ``Max``)
stands for that function; an ``expand`` entry for its twin written out (``log10(x)`` is
``log(x)/log(10)``); any other entry (``sigmoid``, ``relu``, ``gelu``, a user's op) for a named
``sympy.Function`` made from the entry: its ``fdiff`` is the entry's ``dsym`` (or SymPy's
derivative of the twin), it rewrites to the twin, evaluates numerically through it and prints
as its name. ``OpTable`` keeps tables derived from ``ops.OPS`` current when a user adds an op.
Imports SymPy, NumPy and ``chainrule.ops`` (NumPy only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any, Generic, TypeVar

import numpy as np
import sympy as sp
from mpmath.libmp import prec_to_dps

from chainrule.ops import NAMES, OPS, OpDef

__all__ = [
    "NUMPY_FUNCTIONS",
    "F",
    "OpTable",
    "derivative",
    "lambdify",
    "op_of",
    "relu",
    "sigmoid",
    "softplus",
    "sympy_function",
]

V = TypeVar("V")


class OpTable(Mapping[Any, V], Generic[V]):
    """A table derived from the op table by ``build()``, rebuilt whenever an op is added."""

    def __init__(self, build: Callable[[], dict[Any, V]]):
        self._build, self._size = build, -1
        self._rows: dict[Any, V] = {}

    def _current(self) -> dict[Any, V]:
        if self._size != len(OPS):
            self._rows, self._size = self._build(), len(OPS)
        return self._rows

    def __getitem__(self, key: Any) -> V:
        return self._current()[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())


class _Named(sp.Function):
    """A function of the op table with no SymPy counterpart; ``_op`` is its entry."""

    nargs = 1
    _op: OpDef

    @classmethod
    def eval(cls, arg):
        if arg is sp.nan:  # NaN in, NaN out, as the engine (a piecewise twin cannot compare it)
            return sp.nan
        if arg.is_Number:  # sigmoid(0) = 1/2, relu(-2) = 0, softplus(0) = log 2; not sigmoid(1)
            value = twin(cls._op, arg)
            if sp.count_ops(value) <= 1 and not value.has(sp.Piecewise):
                return value
        return None

    def twin(self) -> sp.Expr:
        """The entry's SymPy twin at this argument (relu(x) -> Max(0, x))."""
        return twin(self._op, self.args[0])

    def fdiff(self, argindex=1):
        return derivative(self._op, self.args[0])

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        try:
            value = self.twin()
        except (TypeError, ValueError):  # it compares (Piecewise, Max): no value off the reals
            return None
        return value if value is sp.nan else value.evalf(prec_to_dps(prec))  # evalf(nan) fails

    def _eval_rewrite(self, rule, args, **hints):
        full = twin(self._op, *args)
        if full.has(rule):  # sigmoid.rewrite(exp), relu.rewrite(Max)
            return full
        other = full.rewrite(rule)
        return other if other.has(rule) else None

    def _numpycode(self, printer):
        # By name, which lambdify's namespace maps to the entry's forward: a SymPy printer's
        # rule for its own function of the same name would otherwise win (SymPy's unnormalized
        # sinc(x) prints as numpy.sinc(x/pi), wrong for the table's NumPy sinc).
        return f"{type(self).__name__}({printer._print(self.args[0])})"

    def _latex(self, printer, exp=None):
        power = "" if exp is None else f"^{{{exp}}}"
        return rf"{self._latex_name}{power}\left({printer._print(self.args[0])}\right)"


_NAMED: dict[str, type[_Named]] = {}


def twin(op: OpDef, *args: Any) -> sp.Expr:
    """The entry's SymPy twin applied to ``args``."""
    if op.sym is None:
        raise ValueError(f"{op.name} has no SymPy twin ({op.nosym})")
    return op.sym(sp, *args)


def as_twins(expr: sp.Expr) -> sp.Expr:
    """``expr`` with every table function SymPy lacks (σ, relu, softplus, ...) replaced by its
    twin, so SymPy can compare it with an expression written without them:
    σ(x)(1 − σ(x)) − e^(−x)/(1 + e^(−x))² simplifies to 0 only in terms of e^(−x)."""
    return expr.replace(lambda e: isinstance(e, _Named), lambda e: e.twin())


def _is_named(f: Any) -> bool:
    return isinstance(f, type) and issubclass(f, _Named)


def sympy_function(op: OpDef) -> Callable[..., sp.Expr]:
    """What the parser builds for the entry's names (see the module docstring).

    >>> from chainrule import ops
    >>> sympy_function(ops.sin), sympy_function(ops.gelu)
    (sin, gelu)
    """
    if op.expand:
        return lambda *args: twin(op, *args)
    head = _head(op)
    if head is not None:
        return head
    if op.name not in _NAMED:
        latex = r"\sigma" if "σ" in op.names else rf"\operatorname{{{op.name}}}".replace("_", r"\_")
        title = op.names[0] if op.names else op.name  # prints as the learner types it
        cls = type(title, (_Named,), {"_op": op, "_latex_name": latex, "__doc__": op.doc})
        _NAMED[op.name] = cls
    return _NAMED[op.name]


def _head(op: OpDef) -> Any:
    """The SymPy function class that is the twin applied to its arguments, if there is one."""
    n = max(op.arity, 1)
    dummies = sp.symbols(f"_a0:{n}", real=True)
    e = twin(op, *dummies)
    if isinstance(e.func, sp.FunctionClass) and set(e.args) == set(dummies) and len(e.args) == n:
        return e.func
    return None


class _Functions:
    """``F.sigmoid`` is the SymPy function of the entry named sigmoid (for ``dsym`` formulas)."""

    def __getattr__(self, name: str) -> Callable[..., sp.Expr]:
        if name not in OPS:
            raise AttributeError(name)
        return sympy_function(OPS[name])


F = _Functions()


def derivative(op: OpDef, u: sp.Expr) -> sp.Expr:
    """f'(u) for a one-argument entry: its ``dsym`` as a textbook writes it, else SymPy's
    derivative of the twin.

    >>> from chainrule import ops
    >>> derivative(ops.sigmoid, sp.Symbol("x"))
    (1 - sigmoid(x))*sigmoid(x)
    """
    if op.dsym is not None:
        return sp.sympify(op.dsym(sp, F, u))
    t = sp.Dummy("t", real=True)
    return sp.diff(twin(op, t), t).xreplace({t: u})


def op_of(function: Any) -> OpDef | None:
    """The entry a SymPy function class stands for (``sp.sin`` -> ops.sin), if any."""
    return _BY_FUNCTION.get(function)


_BY_FUNCTION: OpTable[OpDef] = OpTable(
    lambda: {sympy_function(op): op for op in dict.fromkeys(NAMES.values()) if not op.expand}
)


def _numpy(op: OpDef) -> Callable[[Any], Any]:
    """The entry as a NumPy function for lambdify: the engine's own (stable) forward on real
    arrays, the twin on complex ones (the engine is real-only)."""
    numeric: list[Callable[[Any], Any]] = []

    def f(x: Any) -> Any:
        if np.iscomplexobj(x):
            if not numeric:
                t = sp.Symbol("t")
                numeric.append(sp.lambdify(t, twin(op, t), "numpy"))
            return numeric[0](x)
        x = np.asarray(x, dtype=float)
        return op.forward(x) if op.forward is not None else op(x).data

    return f


NUMPY_FUNCTIONS: OpTable[Callable[[Any], Any]] = OpTable(
    lambda: {sympy_function(op).__name__: _numpy(op) for op in _NAMED_OPS().values()}
)


def _NAMED_OPS() -> dict[str, OpDef]:
    """The entries that get a named SymPy function (their names are unknown to NumPy)."""
    return {op.name: op for op in dict.fromkeys(NAMES.values()) if _is_named(sympy_function(op))}


def lambdify(args, expr):
    """``sympy.lambdify`` to NumPy that also knows the op table's named functions.

    Examples
    --------
    >>> x = sp.Symbol("x")
    >>> f = lambdify([x], sigmoid(x) + relu(x))
    >>> float(f(0.0))
    0.5
    """
    if isinstance(expr, sp.Basic) and expr.has(sp.Heaviside):
        # SymPy prints Heaviside(g) for NumPy as a Piecewise whose conditions it simplifies
        # (simplify_logic): over a minute for max(atanh(|x - e|), x)'s derivative. NumPy's own
        # heaviside needs no printing of conditions; H(0) = 1/2 unless the node says otherwise.
        expr = expr.replace(sp.Heaviside, lambda z, h0=sp.S.Half: _STEP(z, h0))
    return sp.lambdify(args, expr, modules=[dict(NUMPY_FUNCTIONS), _STEP_MODULE, "numpy"])


_STEP = sp.Function("_numpy_heaviside")
_STEP_MODULE = {"_numpy_heaviside": np.heaviside}


sigmoid = sympy_function(OPS["sigmoid"])
relu = sympy_function(OPS["relu"])
softplus = sympy_function(OPS["softplus"])
