"""SymPy twins of the neural-network activations: ``sigmoid``, ``relu``, ``softplus``.

Each is a ``sympy.Function`` with ``fdiff`` (so ``sympy.diff`` works), a rewrite to elementary
functions, numeric ``evalf`` and LaTeX printing. ``NUMPY_FUNCTIONS`` makes ``lambdify`` work.
Imports SymPy and NumPy only.
"""

from __future__ import annotations

import numpy as np
import sympy as sp
from mpmath.libmp import prec_to_dps

__all__ = ["NUMPY_FUNCTIONS", "lambdify", "relu", "sigmoid", "softplus"]


class _Activation(sp.Function):
    """Shared plumbing: one argument, real for real input, evalf through the rewrite."""

    nargs = 1

    def _eval_is_real(self):
        return self.args[0].is_real

    def _eval_evalf(self, prec):
        return self._elementary().evalf(prec_to_dps(prec))

    def _elementary(self) -> sp.Expr:
        raise NotImplementedError

    def _latex(self, printer, exp=None):
        power = "" if exp is None else f"^{{{exp}}}"
        return rf"{self._latex_name}{power}\left({printer._print(self.args[0])}\right)"


class sigmoid(_Activation):
    """Logistic sigmoid σ(x) = 1/(1 + e^(-x)); σ'(x) = σ(x)(1 - σ(x)).

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(sigmoid(x), x)
    (1 - sigmoid(x))*sigmoid(x)
    >>> sigmoid(0)
    1/2
    """

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sp.S.Half

    def _elementary(self):
        return 1 / (1 + sp.exp(-self.args[0]))

    def _eval_rewrite_as_exp(self, arg, **kwargs):
        return 1 / (1 + sp.exp(-arg))

    def _eval_rewrite_as_tanh(self, arg, **kwargs):
        return (1 + sp.tanh(arg / 2)) / 2

    _latex_name = r"\sigma"


class relu(_Activation):
    """Rectified linear unit relu(x) = max(0, x); relu'(x) = 1 for x > 0, else 0.

    The derivative at the kink is taken as 0 (``Heaviside(x, 0)``), as in PyTorch.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x", real=True)
    >>> sp.diff(relu(x), x)
    Heaviside(x, 0)
    >>> relu(-2), relu(3)
    (0, 3)
    """

    def fdiff(self, argindex=1):
        # relu'(0) := 0, as in PyTorch.
        return sp.Heaviside(self.args[0], 0)

    @classmethod
    def eval(cls, arg):
        if arg.is_nonnegative:
            return arg
        if arg.is_nonpositive:
            return sp.S.Zero

    def _elementary(self):
        return sp.Max(0, self.args[0])

    def _eval_rewrite_as_Max(self, arg, **kwargs):
        return sp.Max(0, arg)

    def _eval_rewrite_as_Piecewise(self, arg, **kwargs):
        return sp.Piecewise((arg, arg > 0), (0, True))

    def _eval_is_nonnegative(self):
        return self.args[0].is_real

    _latex_name = r"\operatorname{relu}"


class softplus(_Activation):
    """Softplus softplus(x) = ln(1 + e^x); softplus'(x) = σ(x).

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> sp.diff(softplus(x), x)
    sigmoid(x)
    >>> softplus(0)
    log(2)
    """

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    @classmethod
    def eval(cls, arg):
        if arg.is_zero:
            return sp.log(2)

    def _elementary(self):
        return sp.log(1 + sp.exp(self.args[0]))

    def _eval_rewrite_as_log(self, arg, **kwargs):
        return sp.log(1 + sp.exp(arg))

    _latex_name = r"\operatorname{softplus}"


def _np_sigmoid(x):
    if np.iscomplexobj(x):
        return 1 / (1 + np.exp(-x))
    x = np.asarray(x, dtype=float)
    # exp of a negative argument only, so neither branch overflows.
    z = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + z), z / (1 + z))


NUMPY_FUNCTIONS = {
    "sigmoid": _np_sigmoid,
    "relu": lambda x: np.maximum(x, 0.0),
    "softplus": lambda x: np.log1p(np.exp(x)) if np.iscomplexobj(x) else np.logaddexp(0.0, x),
}


def lambdify(args, expr):
    """``sympy.lambdify`` to NumPy that also knows ``sigmoid``, ``relu`` and ``softplus``.

    Examples
    --------
    >>> import sympy as sp
    >>> x = sp.Symbol("x")
    >>> f = lambdify([x], sigmoid(x) + relu(x))
    >>> float(f(0.0))
    0.5
    """
    return sp.lambdify(args, expr, modules=[NUMPY_FUNCTIONS, "numpy"])
