"""The differential check every layer test uses: the same float64 weights and inputs through a
chainrule Module and its PyTorch twin; outputs, input gradients and parameter gradients must
agree. Skipped where torch is absent."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import chainrule as cr


def _flat(out: Any) -> list[Any]:
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in _flat(o)]
    return [] if out is None else [out]


def _check(
    module: Any,
    twin: Any,
    inputs: list[np.ndarray],
    rng: np.random.Generator,
    grad_inputs: bool = True,
    rtol: float = 1e-9,
    atol: float = 1e-10,
) -> None:
    torch = pytest.importorskip("torch")
    twin = twin.double()
    own = {k: v.data for k, v in module.state_dict().items()}
    theirs = twin.state_dict()
    assert sorted(own) == sorted(theirs), (
        f"state_dict names differ: {sorted(own)} vs {sorted(theirs)}"
    )
    twin.load_state_dict({k: torch.tensor(np.asarray(v, dtype=np.float64)) for k, v in own.items()})
    floats = [x.dtype.kind == "f" and grad_inputs for x in inputs]
    xs = [cr.tensor(x, requires_grad=f) for x, f in zip(inputs, floats)]
    ts = [torch.tensor(x, requires_grad=f) for x, f in zip(inputs, floats)]
    outs, touts = _flat(module(*xs)), _flat(twin(*ts))
    assert len(outs) == len(touts)
    loss, tloss = 0, 0
    for o, t in zip(outs, touts):
        np.testing.assert_allclose(o.data, t.detach().numpy(), rtol=rtol, atol=atol)
        g = rng.standard_normal(o.shape)
        loss, tloss = loss + cr.sum(o * g), tloss + (t * torch.tensor(g)).sum()
    loss.backward()
    tloss.backward()
    for x, t, f in zip(xs, ts, floats):
        if f:
            np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=rtol, atol=atol)
    tparams = dict(twin.named_parameters())
    for name, p in module.named_parameters():
        tg = tparams[name].grad
        got = None if p.grad is None else p.grad.data
        if tg is None:
            assert got is None or not np.any(got), name
        else:
            np.testing.assert_allclose(got, tg.numpy(), rtol=rtol, atol=atol, err_msg=name)
    for k, v in module.state_dict().items():  # running statistics and other buffers
        np.testing.assert_allclose(v.data, twin.state_dict()[k].numpy(), rtol=rtol, atol=atol)


@pytest.fixture
def same_as_torch(rng: np.random.Generator) -> Callable[..., None]:
    """same_as_torch(module, twin, *inputs, **tolerances): a float64 differential check."""
    return lambda module, twin, *inputs, **kw: _check(module, twin, list(inputs), rng, **kw)
