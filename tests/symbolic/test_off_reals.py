"""Functions of the op table at numbers off the reals (atanh(2), NaN): the SymPy side agrees
with the engine (NaN in, NaN out), never raises from SymPy's assumptions or evalf, and typed or
SymPy input holding such a number is refused in one line that names it."""

from __future__ import annotations

import numpy as np
import pytest

sp = pytest.importorskip("sympy")

import chainrule as cr  # noqa: E402
from chainrule.ops import OPS  # noqa: E402
from chainrule.symbolic import ParseError, explain, parse  # noqa: E402
from chainrule.symbolic.functions import _is_named, sympy_function  # noqa: E402

x = sp.Symbol("x", real=True)
# every one-argument entry that the parser reads as a function of its own (relu, elu, celu, ...)
NAMED = [
    op
    for op in OPS.values()
    if op.sym is not None and op.arity == 1 and op.names and _is_named(sympy_function(op))
]
# twins that compare their argument (x > 0, max(0, x)) give NaN themselves off the reals, where
# SymPy cannot compare; the others stay unevaluated there
NAN_TWINS = [
    op.names[0] for op in NAMED if op.sym(sp, x).has(sp.Piecewise, sp.Max, sp.Min, sp.Heaviside)
]


def test_every_comparing_twin_is_guarded() -> None:
    assert {"relu", "elu", "celu", "selu", "leaky_relu", "hardtanh", "relu6"} <= set(NAN_TWINS)


@pytest.mark.parametrize("op", NAMED, ids=lambda op: op.name)
def test_nan_in_nan_out_as_the_engine(op) -> None:
    with np.errstate(all="ignore"):
        engine = getattr(cr, op.name)(cr.tensor(np.nan)).item()
    assert np.isnan(engine) and sympy_function(op)(sp.nan) is sp.nan


@pytest.mark.parametrize("op", NAMED, ids=lambda op: op.name)
def test_a_complex_argument_never_raises_in_sympy(op) -> None:
    e = sympy_function(op)(sp.atanh(2))  # hypothesis found celu(arctanh(2)) raising here
    assert e.is_extended_real is not True
    value = sp.N(e)
    if op.names[0] in NAN_TWINS:
        assert value is sp.nan and op.sym(sp, sp.atanh(2)) is sp.nan


@pytest.mark.parametrize("name", NAN_TWINS)
def test_typed_and_sympy_input_off_the_reals_is_one_line(name) -> None:
    with pytest.raises(ParseError, match=r"atanh\(2\) is not a real number"):
        parse(f"{name}(arctanh(2))")
    f = sympy_function(next(op for op in NAMED if op.names[0] == name))
    for given in (f(sp.atanh(2) * x), f(x) + sp.asin(3), sp.sqrt(-1) * x):
        with pytest.raises(ValueError, match=r"^explain: \S+ is not a real number") as err:
            explain(given)
        assert "\n" not in str(err.value)
        assert (
            "atanh(2)" in str(err.value) or "asin(3)" in str(err.value) or " I " in str(err.value)
        )
