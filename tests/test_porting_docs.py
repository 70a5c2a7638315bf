"""The porting pages' tables run: docs/from_pytorch.md and docs/from_numpy_jax.md.

Each table row holds one example per library; the peer's cell runs on the peer's arrays (torch,
NumPy, JAX where installed), chainrule's cell on chainrule tensors holding the same numbers,
and the results must agree in values, dtypes and shapes, or both must raise. A cell is
`statement; statement; expression` (the last part may be a statement: the result is then None).
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn as cr_nn
from chainrule.nn import functional as cr_F

DOCS = Path(__file__).resolve().parents[1] / "docs"
CELL = re.compile(r"^`(.+)`$")


def _rows(page: str) -> list[dict[str, str]]:
    """Each row of the page's table as {column: code}, code cells only (no backticks)."""
    lines = [ln for ln in (DOCS / page).read_text().splitlines() if ln.startswith("|")]
    split = [
        [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", ln)[1:-1]] for ln in lines
    ]
    header, body = split[0], split[2:]
    rows = []
    for cells in body:
        assert len(cells) == len(header), cells
        row = {h: m[1] for h, c in zip(header, cells, strict=True) if (m := CELL.match(c))}
        rows.append({**row, "note": cells[-1]})
    return rows


def _inputs() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    f32 = np.float32
    return {
        "x": rng.normal(size=(3, 4)).astype(f32),
        "y": rng.normal(size=(3, 4)).astype(f32),
        "v": rng.normal(size=4).astype(f32),
        "m": rng.normal(size=(4, 2)).astype(f32),
        "x64": rng.normal(size=(3, 4)),
        "i": rng.integers(1, 9, size=(3, 4)),
        "w": rng.normal(size=(2, 4)).astype(f32),
        "s": np.array(1.5, f32),
    }


def _run(code: str, env: dict[str, Any]) -> Any:
    *statements, last = [part.strip() for part in code.split("; ")]
    for st in statements:
        exec(st, env)
    try:
        compiled = compile(last, "<row>", "eval")
    except SyntaxError:
        exec(last, env)
        return None
    return eval(compiled, env)


class _Opaque:
    """A result that is neither array, number, shape nor dtype (a torch.Generator)."""


def _norm(r: Any) -> Any:
    mod = type(r).__module__.split(".")[0]
    if isinstance(r, cr.Tensor):
        return r.data
    if mod == "torch" and hasattr(r, "detach"):
        return r.detach().numpy()
    if mod in ("jax", "jaxlib") and hasattr(r, "shape"):
        return np.asarray(r)
    if mod == "torch" and type(r).__name__ == "dtype":
        return np.dtype(str(r).removeprefix("torch."))
    if isinstance(r, (tuple, list)):  # named tuples, torch.Size and return_types included
        return [_norm(e) for e in r]
    if isinstance(r, (np.ndarray, np.generic, np.dtype, int, float, bool, type(None))):
        return r
    return _Opaque()


def _assert_same(ours: Any, theirs: Any, where: str) -> None:
    if isinstance(theirs, _Opaque) or isinstance(ours, _Opaque):
        assert isinstance(ours, _Opaque) == isinstance(theirs, _Opaque), where
        return
    if isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), where
        for a, b in zip(ours, theirs, strict=True):
            _assert_same(a, b, where)
        return
    if isinstance(theirs, np.dtype):
        assert ours == theirs, where
        return
    if isinstance(theirs, (np.ndarray, np.generic)):
        a, b = np.asarray(ours), np.asarray(theirs)
        assert (a.shape, a.dtype) == (b.shape, b.dtype), f"{where}: {a.dtype}{a.shape}"
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=where)
        return
    assert ours == pytest.approx(theirs), where


def _outcome(code: str, env: dict[str, Any]) -> tuple[bool, Any]:
    try:
        return True, _norm(_run(code, env))
    except Exception as exc:  # the row says both raise; which exception is the library's own
        return False, exc


def _ours_env() -> dict[str, Any]:
    env: dict[str, Any] = {"cr": cr, "np": np, "nn": cr_nn, "F": cr_F}
    for name, a in _inputs().items():
        env[name] = cr.tensor(a, requires_grad=name == "w")
    return env


def _check_row(row: dict[str, str], peer: str, peer_env: dict[str, Any]) -> None:
    ok_theirs, theirs = _outcome(row[peer], peer_env)
    ok_ours, ours = _outcome(row["chainrule"], _ours_env())
    where = f"{row[peer]!r} vs {row['chainrule']!r}"
    if row["note"].startswith("chainrule raises"):  # a difference the page states
        assert ok_theirs and isinstance(ours, TypeError), f"{where}: {ours!r}"
        return
    assert ok_ours == ok_theirs, f"{where}: ours {ours!r}, theirs {theirs!r}"
    if ok_ours:
        _assert_same(ours, theirs, where)


TORCH_ROWS = _rows("from_pytorch.md")
NUMPY_ROWS = _rows("from_numpy_jax.md")


def test_the_tables_were_read() -> None:
    assert len(TORCH_ROWS) >= 80 and all("chainrule" in r for r in TORCH_ROWS)
    assert len(NUMPY_ROWS) >= 40 and all("chainrule" in r for r in NUMPY_ROWS)


# torch.func's forward mode scripts a helper with torch.jit on first use, which torch deprecates
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("row", TORCH_ROWS, ids=lambda r: r["chainrule"])
def test_pytorch_row(row: dict[str, str]) -> None:
    torch = pytest.importorskip("torch")
    env: dict[str, Any] = {"torch": torch, "np": np, "nn": torch.nn, "F": torch.nn.functional}
    for name, a in _inputs().items():
        env[name] = torch.tensor(a, requires_grad=name == "w")
    _check_row(row, "PyTorch", env)


@pytest.mark.parametrize("row", NUMPY_ROWS, ids=lambda r: r["chainrule"])
def test_numpy_row(row: dict[str, str]) -> None:
    if "NumPy" not in row:  # a JAX-only row (grad, vmap): it must run on chainrule at least
        ok, result = _outcome(row["chainrule"], _ours_env())
        assert ok, result
        return
    _check_row(row, "NumPy", {"np": np, **_inputs()})


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="JAX is not installed")
@pytest.mark.parametrize("row", [r for r in NUMPY_ROWS if "JAX" in r], ids=lambda r: r["JAX"])
def test_jax_row(row: dict[str, str]) -> None:
    import jax
    import jax.numpy as jnp

    before = jax.config.jax_enable_x64
    jax.config.update("jax_enable_x64", True)  # float64 inputs stay float64, as in chainrule
    try:
        env: dict[str, Any] = {"jax": jax, "jnp": jnp, "np": np}
        env.update({k: jnp.asarray(a) for k, a in _inputs().items()})
        _check_row(row, "JAX", env)
    finally:
        jax.config.update("jax_enable_x64", before)
