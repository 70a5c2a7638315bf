"""Creation functions (issue 11): each row of `DETERMINISTIC` is compared with NumPy's own
function; each row of `SEEDED` is repeatable under `chainrule.manual_seed`, has the shape and
dtype asked for, and its samples have the distribution's moments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
# name -> (ours, NumPy's, the dtype ours has: float32 by default, as the other constructors)
DETERMINISTIC: dict[str, tuple[Callable[[], Any], Callable[[], Any], Any]] = {
    "linspace": (lambda: cr.linspace(0.0, 1.0, 5), lambda: np.linspace(0, 1, 5), F32),
    "linspace(steps)": (lambda: cr.linspace(-2, 3, steps=7), lambda: np.linspace(-2, 3, 7), F32),
    "linspace(endpoint)": (
        lambda: cr.linspace(0, 1, 4, endpoint=False, dtype=np.float64),
        lambda: np.linspace(0, 1, 4, endpoint=False),
        F64,
    ),
    "linspace(int32)": (
        lambda: cr.linspace(5, -5, 20, dtype=np.int32),
        lambda: np.linspace(5, -5, 20).astype(np.int32),  # truncated, as torch.linspace
        np.dtype(np.int32),
    ),
    "logspace": (lambda: cr.logspace(0, 3, 4), lambda: np.logspace(0, 3, 4), F32),
    "logspace(base)": (
        lambda: cr.logspace(0, 4, 5, base=2.0),
        lambda: np.logspace(0, 4, 5, base=2),
        F32,
    ),
    "full": (lambda: cr.full((2, 3), 1.5), lambda: np.full((2, 3), 1.5), F32),
    "full(int)": (lambda: cr.full(4, 2.0, np.float64), lambda: np.full(4, 2.0), F64),
    "full_like": (lambda: cr.full_like(np.zeros((2, 2)), 7.0), lambda: np.full((2, 2), 7.0), F64),
    "eye": (lambda: cr.eye(3), lambda: np.eye(3), F32),
    "eye(n, m, k)": (lambda: cr.eye(2, 4, k=1), lambda: np.eye(2, 4, k=1), F32),
    "eye(n, dtype)": (lambda: cr.eye(2, dtype=np.float64), lambda: np.eye(2), F64),
    "empty": (lambda: cr.empty(2, 0), lambda: np.empty((2, 0)), F32),
}


@pytest.mark.parametrize("name", list(DETERMINISTIC))
def test_creation_matches_numpy(name: str) -> None:
    ours, theirs, dtype = DETERMINISTIC[name]
    got, want = ours(), np.asarray(theirs())
    assert got.shape == want.shape and got.dtype == dtype
    np.testing.assert_allclose(got.data, want, rtol=1e-6)


# name -> (draw(seeded), the shape it has, the dtype, the mean and standard deviation)
SEEDED: dict[str, tuple[Callable[[], cr.Tensor], tuple[int, ...], Any, float, float]] = {
    "randn": (lambda: cr.randn(200, 50), (200, 50), np.float32, 0.0, 1.0),
    "randn(float64)": (
        lambda: cr.randn((10_000,), dtype=np.float64),
        (10_000,),
        np.float64,
        0.0,
        1.0,
    ),
    "rand": (lambda: cr.rand(10_000), (10_000,), np.float32, 0.5, (1 / 12) ** 0.5),
    "randint": (lambda: cr.randint(3, 7, (10_000,)), (10_000,), np.int64, 4.5, (1.25) ** 0.5),
    "randint(high)": (lambda: cr.randint(4, size=(100, 100)), (100, 100), np.int64, 1.5, 1.25**0.5),
    "normal": (lambda: cr.normal(2.0, 3.0, (10_000,)), (10_000,), np.float32, 2.0, 3.0),
    "normal(arrays)": (
        lambda: cr.normal(np.full(10_000, -1.0), np.full(10_000, 0.5)),
        (10_000,),
        np.float64,
        -1.0,
        0.5,
    ),
}


@pytest.mark.parametrize("name", list(SEEDED))
def test_seeded_creation_is_repeatable_and_distributed(name: str) -> None:
    draw, shape, dtype, mean, std = SEEDED[name]
    cr.manual_seed(7)
    a = draw()
    cr.manual_seed(7)
    b = draw()
    c = draw()
    assert a.shape == shape and a.dtype == dtype
    np.testing.assert_array_equal(a.data, b.data)
    assert not np.array_equal(b.data, c.data)  # the generator moves on
    n = a.size
    # 6 standard errors: a wrong distribution fails, a right one essentially never does
    assert abs(a.data.mean() - mean) < 6 * std / n**0.5
    assert abs(a.data.std() - std) < 0.05 * std


def test_randint_stays_in_its_bounds() -> None:
    cr.manual_seed(0)
    x = cr.randint(-2, 3, (5000,)).data
    assert x.min() == -2 and x.max() == 2


@pytest.mark.parametrize("indexing", ["xy", "ij"])
def test_meshgrid_matches_numpy_and_is_differentiable(indexing: str) -> None:
    a, b, c = np.arange(3.0), np.arange(4.0) * 2, np.array([1.0, -1.0])
    ours = cr.meshgrid(a, b, c, indexing=indexing)
    for o, t in zip(ours, np.meshgrid(a, b, c, indexing=indexing)):
        np.testing.assert_array_equal(o.data, t)
    x = cr.tensor(a, requires_grad=True)
    y = cr.tensor(b, requires_grad=True)
    assert cr.gradcheck(
        lambda x, y: (
            cr.meshgrid(x, y, indexing=indexing)[0] * cr.meshgrid(x, y, indexing=indexing)[1]
        ),
        [x, y],
        order=2,
    )


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: cr.randn(2, -1), "randn: sizes must be non-negative integers"),
        (lambda: cr.randn(2, dtype=np.int32), "randn: dtype must be a float dtype"),
        (lambda: cr.randint(3, 3), "randint: need low < high"),
        (lambda: cr.normal(0.0, -1.0), "normal: std must be non-negative"),
        (lambda: cr.linspace(0, 1, -2), "linspace: the number of points must be non-negative"),
        (lambda: cr.linspace(0, 1, 3, dtype=bool), "linspace: dtype must be a float dtype"),
        (
            lambda: cr.linspace(0, 9, 3, dtype=np.int32, requires_grad=True),
            "linspace: an integer tensor cannot require grad",
        ),
        (lambda: cr.eye(-1), "eye: sizes must be non-negative"),
        (lambda: cr.meshgrid(np.ones(2), indexing="xz"), "meshgrid: indexing must be"),
    ],
)
def test_bad_arguments_give_one_line_errors(call: Callable[[], Any], message: str) -> None:
    with pytest.raises((ValueError, TypeError)) as info:
        call()
    assert str(info.value).startswith(message) and "\n" not in str(info.value)


CREATION = ["zeros", "ones", "full", "empty", "eye", "arange", "linspace", "logspace"]
CREATION += ["randn", "rand", "randint", "normal"]


@pytest.mark.parametrize("name", CREATION)
def test_creation_functions_are_table_entries(name: str) -> None:
    """Each is described by the op table (docs/ops.md lists it): no inputs, no derivative, a
    new tensor; requires_grad=True makes the result a leaf to differentiate."""
    from chainrule.ops import OPS

    op = OPS[name]
    assert op.arity == 0 and not op.differentiable and "new tensor" in op.returns
    made = op(**op.cases(np.random.default_rng(0), np.float32, op)[0][1])
    assert isinstance(made, cr.Tensor) and not made.requires_grad
    leaf = cr.zeros(2, requires_grad=True)
    assert leaf.requires_grad and leaf.is_leaf


def test_arange_refuses_too_many_arguments() -> None:
    with pytest.raises(TypeError, match="arange: takes 1 to 3 positional arguments, got 4"):
        cr.arange(0, 1, 2, 3)
