"""einsum's '...' and repeated indices (rewritten into the explicit subscripts the primitive
takes): each row against NumPy's einsum, torch's (values and gradients) and gradcheck."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

# (subscripts, operand shapes)
CASES = [
    ("...id,...jd->...ij", [(3, 4, 2), (3, 5, 2)]),
    ("...id,...jd", [(3, 4, 2), (3, 5, 2)]),  # implicit output: '...' first
    ("i...j,ji...->...", [(2, 3, 4, 5), (5, 2, 4)]),  # right-aligned '...' of different rank
    ("ij...,ij...->ij", [(2, 3, 2, 2), (2, 3, 2, 2)]),  # '...' summed away, as PyTorch
    ("...,...", [(2, 3), (3,)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),  # implicit: the trace
    ("...ii->...i", [(3, 4, 4)]),
    ("...ii->...", [(3, 4, 4)]),
    ("iij->j", [(3, 3, 2)]),
    ("iijj->ij", [(2, 2, 3, 3)]),
]


NUMPY_REFUSES = {"ij...,ij...->ij"}  # NumPy keeps every '...' axis; PyTorch sums the missing


@pytest.mark.parametrize(("spec", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_einsum_matches_numpy_and_gradchecks(spec, shapes, rng) -> None:
    xs = [rng.standard_normal(s) for s in shapes]
    if spec in NUMPY_REFUSES:
        with pytest.raises(ValueError):
            np.einsum(spec, *xs)
    else:
        np.testing.assert_allclose(cr.einsum(spec, *xs).data, np.einsum(spec, *xs), rtol=1e-12)
    assert cr.gradcheck(lambda *a: cr.einsum(spec, *a), xs, order=2)


@pytest.mark.parametrize(("spec", "shapes"), CASES, ids=[c[0] for c in CASES])
def test_einsum_matches_torch(spec, shapes, rng) -> None:
    torch = pytest.importorskip("torch")
    xs = [rng.standard_normal(s) for s in shapes]
    ours = [cr.tensor(x, requires_grad=True) for x in xs]
    theirs = [torch.tensor(x, requires_grad=True) for x in xs]
    y, ty = cr.einsum(spec, *ours), torch.einsum(spec, *theirs)
    g = rng.standard_normal(tuple(ty.shape))
    y.backward(cr.tensor(g))
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    ("spec", "shapes", "message"),
    [
        ("ij,jk", [(2, 3)], "names 2 operands, got 1"),
        ("...ijk", [(2, 3)], "names 3 axes for an operand of shape"),
    ],
)
def test_einsum_errors_name_the_problem(spec, shapes, message) -> None:
    with pytest.raises(ValueError, match=message):
        cr.einsum(spec, *[np.ones(s) for s in shapes])
