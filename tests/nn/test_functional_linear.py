"""F.linear and nn.Linear go through the fused `linear` op: same values and gradients as the
composed x @ W^T + b, and clear errors for mismatched shapes."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F


def _leaves(rng, *shapes):
    return [cr.tensor(rng.standard_normal(s), requires_grad=True) for s in shapes]


@pytest.mark.parametrize("xshape", [(5, 3), (3,), (2, 4, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_linear_equals_composed(xshape, bias):
    rng = np.random.default_rng(0)
    fused = _leaves(rng, xshape, (4, 3), (4,))
    composed = [cr.tensor(t.data, requires_grad=True) for t in fused]
    if not bias:
        fused, composed = fused[:2], composed[:2]
    y1 = F.linear(*fused)
    y2 = composed[0] @ composed[1].T + (composed[2] if bias else 0.0)
    np.testing.assert_allclose(y1.data, y2.data, rtol=1e-12)
    u = rng.standard_normal(y1.shape)
    (y1 * u).sum().backward()
    (y2 * u).sum().backward()
    for a, b in zip(fused, composed):
        assert a.grad.shape == a.shape
        np.testing.assert_allclose(a.grad.data, b.grad.data, rtol=1e-10, atol=1e-12)


def test_linear_errors_name_the_shapes():
    x, w, b = cr.ones(5, 3), cr.ones(4, 3), cr.ones(4)
    with pytest.raises(ValueError, match=r"input of shape \(5, 2\).*weight of shape \(4, 3\)"):
        F.linear(cr.ones(5, 2), w, b)
    with pytest.raises(ValueError, match=r"weight must have shape.*got \(3,\)"):
        F.linear(x, cr.ones(3), b)
    with pytest.raises(ValueError, match=r"bias must have shape \(4,\).*got \(3,\)"):
        F.linear(x, w, cr.ones(3))


def test_module_uses_the_fused_op_and_float32():
    layer = nn.Linear(3, 2)
    y = layer(cr.ones(4, 3))
    assert y.op.name == "linear" and y.dtype == np.float32
    y.sum().backward()
    assert layer.weight.grad.dtype == np.float32
    np.testing.assert_allclose(layer.bias.grad.data, [4.0, 4.0])
    assert nn.Linear(3, 2, bias=False)(cr.ones(3)).op.name == "linear"
