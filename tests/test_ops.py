"""The op table drives these tests: every primitive is gradchecked (orders 1 and 2) on its own
cases, checked against SymPy's derivative, and checked for completeness."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.ops import NUMPY_NS, OPS, OpDef

ALL = list(OPS.values())
SYM = [op for op in ALL if op.sym is not None]


def _cases(op: OpDef, rng: np.random.Generator, dtype=np.float64):
    assert op.cases is not None, f"{op.name} has no test cases"
    return op.cases(rng, dtype, op)


def _applied(op: OpDef, params: dict):
    return lambda *xs: op(*xs, **params)


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_vjp_matches_central_differences(op: OpDef, rng: np.random.Generator) -> None:
    for inputs, params in _cases(op, rng):
        assert cr.gradcheck(_applied(op, params), list(inputs), order=1)


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_vjp_of_vjp_matches_central_differences(op: OpDef, rng: np.random.Generator) -> None:
    """Second order: the vjps, run on Tensors, are themselves differentiated correctly."""
    for inputs, params in _cases(op, rng)[:2]:
        assert cr.gradcheck(_applied(op, params), list(inputs), order=2)


@pytest.mark.parametrize("op", SYM, ids=lambda op: op.name)
def test_vjp_matches_sympy(op: OpDef, rng: np.random.Generator) -> None:
    """With g = 1, input i's vjp is the partial derivative SymPy computes from the twin."""
    sp = pytest.importorskip("sympy")
    symbols = sp.symbols(f"s0:{op.arity}", real=True)
    expr = op.sym(sp, *symbols)
    for i, s in enumerate(symbols):
        deriv = sp.lambdify(symbols, sp.diff(expr, s), "numpy")
        for _ in range(5):
            xs = [op.domain.sample(rng, (), np.float64) for _ in symbols]
            out = op.forward(*xs)
            g = op.vjps[i](np.ones_like(out), out, *xs, NUMPY_NS)
            np.testing.assert_allclose(
                g, deriv(*xs), rtol=1e-10, atol=1e-12, err_msg=f"{op.name}: d/d input {i} at {xs}"
            )


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_table_entry_is_complete(op: OpDef) -> None:
    assert op.doc, f"{op.name} needs a one-line doc"
    assert op.sym is not None or op.nosym, f"{op.name} needs a SymPy twin or a reason"
    assert op.cases is not None
    assert op.variadic or len(op.vjps) == op.arity


@pytest.mark.parametrize("op", ALL, ids=lambda op: op.name)
def test_float32_in_float32_out(op: OpDef, rng: np.random.Generator) -> None:
    """No silent upcast: float32 inputs give float32 values and float32 gradients."""
    inputs, params = _cases(op, rng, np.float32)[0]
    xs = [
        cr.tensor(x, requires_grad=x.dtype.kind == "f") if isinstance(x, np.ndarray) else x
        for x in inputs
    ]
    out = op(*xs, **params)
    assert out.dtype == np.float32 or op.name == "astype"
    cr.sum(out * out).backward()
    for x in xs:
        if isinstance(x, cr.Tensor) and x.requires_grad:
            assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


def test_defop_rejects_duplicates_and_wrong_arity() -> None:
    from chainrule.ops import defop

    with pytest.raises(ValueError, match="already defined"):
        defop("sin", np.sin, lambda g, out, x, xp: g, sym=lambda sp, x: x)
    with pytest.raises(ValueError, match="2 vjps for 1 inputs"):
        defop("bad_arity_op", np.sin, None, None, arity=1, sym=lambda sp, x: x)
    with pytest.raises(ValueError, match="SymPy twin"):
        defop("no_sym_op", np.sin, None)
    assert "bad_arity_op" not in OPS and "no_sym_op" not in OPS


def test_ops_doc_is_generated_from_table() -> None:
    from pathlib import Path

    from chainrule.docs import ops_markdown

    path = Path(__file__).resolve().parents[1] / "docs" / "ops.md"
    if not path.exists():
        pytest.skip("docs/ops.md is not part of an installed package")
    assert path.read_text(encoding="utf-8") == ops_markdown(), (
        "docs/ops.md is stale: run `python -m chainrule.docs > docs/ops.md`"
    )
