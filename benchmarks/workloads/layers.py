"""W8-W10: one training step (forward, cross-entropy, backward, Adam) of a model built from
the nn layers, in PyTorch, chainrule eager and chainrule compiled.

Owns `LayerProblem` (the model in both libraries, the batch, the FLOP count) and `build`:
every implementation starts from the same weights (chainrule's initialisation, copied into
torch by parameter name) and must produce the same loss and gradients on the first step before
anything is timed. A model `chainrule.compile` cannot replay yet gets an "n/a" note naming why.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.harness import Impl, Workload

LR = 1e-3
Step = Callable[[], Any]
Grads = Callable[[], dict[str, np.ndarray]]


@dataclass
class LayerProblem:
    key: str
    name: str
    chainrule_model: Callable[[], Any]  # () -> chainrule.nn.Module
    torch_model: Callable[[], Any]  # () -> torch.nn.Module with the same parameter names
    x: np.ndarray
    y: np.ndarray
    flops: float
    about: str


def _chainrule_step(p: LayerProblem, compiled: bool) -> tuple[Step, Grads, Any]:
    import chainrule as cr
    from chainrule import optim
    from chainrule.nn import functional as F

    cr.manual_seed(0)
    model = p.chainrule_model()
    opt = optim.Adam(model.parameters(), lr=LR)
    xt = cr.tensor(p.x)

    def loss_and_grads(x: Any, y: Any) -> Any:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    fwd_bwd = cr.compile(loss_and_grads) if compiled else loss_and_grads

    def step() -> None:
        opt.zero_grad()
        fwd_bwd(xt, p.y)
        opt.step()

    def grads() -> dict[str, np.ndarray]:
        return {n: q.grad.data for n, q in model.named_parameters()}

    return step, grads, model


def _torch_step(p: LayerProblem, weights: dict[str, np.ndarray]) -> tuple[Step, Grads]:
    import torch

    model = p.torch_model()
    named = dict(model.named_parameters())
    if set(named) != set(weights):
        raise AssertionError(f"{p.key}: parameter names differ: {sorted(named)} {sorted(weights)}")
    with torch.no_grad():
        for n, q in named.items():
            q.copy_(torch.from_numpy(weights[n]))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    xt, yt = torch.from_numpy(p.x), torch.from_numpy(p.y)

    def step() -> None:
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(xt), yt).backward()
        opt.step()

    def grads() -> dict[str, np.ndarray]:
        return {n: q.grad.numpy() for n, q in named.items() if q.grad is not None}

    return step, grads


def _first_step(step: Step, grads: Grads) -> dict[str, np.ndarray]:
    step()
    return {n: g.copy() for n, g in grads().items()}


def _same(key: str, name: str, got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    for n, w in want.items():
        g = got.get(n)
        scale = float(np.abs(w).max()) or 1.0
        if g is None or g.shape != w.shape or not np.allclose(g, w, rtol=1e-3, atol=1e-4 * scale):
            raise AssertionError(f"{key} {name}: the gradient of {n} differs from PyTorch's")


def build(p: LayerProblem, quick: bool) -> Workload:
    """The three implementations, checked against each other on the first step."""
    from chainrule.compile import CompileError

    impls, notes = [], [p.about]
    eager, grads, model = _chainrule_step(p, compiled=False)
    weights = {n: q.data.copy() for n, q in model.named_parameters()}
    want = _first_step(eager, grads)
    impls.append(Impl("chainrule", eager, "chainrule"))
    try:
        compiled, cgrads, _ = _chainrule_step(p, compiled=True)
        _same(p.key, "chainrule-compiled", _first_step(compiled, cgrads), want)
        for _ in range(2):  # the second call checks the trace, the third replays it
            compiled()
        impls.append(Impl("chainrule-compiled", compiled, "chainrule"))
    except CompileError as exc:
        notes.append(f"chainrule-compiled: n/a: {exc}")
    try:
        tstep, tgrads = _torch_step(p, weights)
    except ImportError as exc:
        notes.append(f"torch: skipped ({exc})")
    else:
        _same(p.key, "chainrule", want, _first_step(tstep, tgrads))
        impls.append(Impl("torch", tstep, "torch"))
    return Workload(p.key, p.name, "ms/step", 1e3, impls, notes, flops=p.flops)


def conv_flops(n: int, c_in: int, c_out: int, k: int, out: tuple[int, ...], first: bool) -> float:
    """Multiply-adds x 2 of a conv layer's forward, weight gradient and (unless it is the
    first layer) input gradient: three products of the same size."""
    fwd = 2 * n * c_out * math.prod(out) * c_in * k ** len(out)
    return fwd * (2 if first else 3)


def linear_flops(n: int, i: int, o: int, first: bool = False) -> float:
    return 2 * n * i * o * (2 if first else 3)
