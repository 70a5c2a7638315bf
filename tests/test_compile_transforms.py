"""chainrule.compile of the transforms: compile(hessian(f)), compile(vmap(grad(f))),
compile(jacrev(f)) and the rest replay bitwise equal to the eager transform, call after call,
on new argument values. One table of transforms, one test body."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr

_rng = np.random.default_rng(0)
W = cr.tensor(_rng.standard_normal((5, 3)))  # a closed-over constant, read fresh on replay


def scalar_f(x):
    """Broadcasting, a reduction, a matmul and a power: a scalar with a full Hessian."""
    return cr.logsumexp(cr.tanh(W @ x) * x.sum()) + (x**3).sum()


def vector_f(x):
    return cr.tanh(W @ x) * cr.exp(-x[0])


def loss(w, x, y):
    """One example's squared error: vmapped over examples for per-example gradients."""
    return ((cr.tanh(x @ w) - y) ** 2).mean()


def _vec(n):
    return lambda rng: (cr.tensor(rng.standard_normal(n)),)


def _batch(rng):
    return (
        cr.tensor(rng.standard_normal(3)),
        cr.tensor(rng.standard_normal((6, 3))),
        cr.tensor(rng.standard_normal(6)),
    )


# name -> (the transformed function, a maker of one call's arguments)
TRANSFORMS = {
    "grad": (cr.grad(scalar_f), _vec(3)),
    "grad_of_grad": (cr.grad(lambda x: cr.grad(scalar_f)(x).sum()), _vec(3)),
    "value_and_grad_argnums": (cr.value_and_grad(loss, argnums=(0, 1)), _batch),
    "hessian": (cr.hessian(scalar_f), _vec(3)),
    "jacrev": (cr.jacrev(vector_f), _vec(3)),
    "jacrev_chunked": (cr.jacrev(vector_f, chunk_size=2), _vec(3)),
    "jacfwd": (cr.jacfwd(vector_f), _vec(3)),
    "vmap_grad": (cr.vmap(cr.grad(loss), in_axes=(None, 0, 0)), _batch),
    "vmap_of_model": (
        cr.vmap(lambda x: vector_f(x).sum()),
        lambda rng: (cr.tensor(rng.random((4, 3))),),
    ),
    "jvp": (lambda x, t: cr.jvp(vector_f, (x,), (t,)), lambda rng: _vec(3)(rng) + _vec(3)(rng)),
    "vjp": (
        lambda x, u: cr.vjp(vector_f, x)[1](u),
        lambda rng: _vec(3)(rng) + _vec(5)(rng),
    ),
}


def _flat(res):
    if isinstance(res, (tuple, list)):
        return [a for r in res for a in _flat(r)]
    return [res.data]


@pytest.mark.parametrize("name", TRANSFORMS)
def test_compiled_transform_equals_eager_bitwise(name):
    fn, make_args = TRANSFORMS[name]
    compiled = cr.compile(fn)
    rng = np.random.default_rng(1)
    for _ in range(4):
        args = make_args(rng)
        eager, replayed = _flat(fn(*args)), _flat(compiled(*args))
        for u, v in zip(eager, replayed, strict=True):
            assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()
    assert all(p.checked for p in compiled.plans.values())  # the last two calls replayed


def test_compiled_hessian_reads_closed_over_tensors_fresh():
    w = cr.tensor(np.array([1.0, 2.0, 3.0]))
    h = cr.compile(cr.hessian(lambda x: (w * x**3).sum()))
    x = cr.tensor(np.array([1.0, -1.0, 2.0]))
    for _ in range(3):
        h(x)
    w.data = w.data * 2.0  # rebinding between calls: the replay reads the new values
    np.testing.assert_array_equal(h(x).data, np.diag(6.0 * w.data * x.data))


def test_compiled_grad_of_a_model_loss_over_its_inputs():
    """grad with respect to an argument (a saliency map) of a frozen model it closes over."""
    from chainrule import nn
    from chainrule.nn import functional as F

    cr.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 3))
    for p in model.parameters():
        # (parameters that require grad would make grad record its backward pass as ops, for
        # an outer derivative; cross_entropy's vjp then builds its onehot from the labels in
        # NumPy, which a trace freezes: the check on the second call refuses it)
        p.requires_grad_(False)
    saliency = cr.grad(lambda x, y: F.cross_entropy(model(x), y))
    compiled = cr.compile(saliency)
    rng = np.random.default_rng(0)
    for _ in range(4):
        x = cr.tensor(rng.standard_normal((5, 4), np.float32))
        y = rng.integers(0, 3, 5)
        assert saliency(x, y).data.tobytes() == compiled(x, y).data.tobytes()
