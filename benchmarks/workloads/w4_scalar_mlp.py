"""W4 scalar-mlp: micrograd's demo task, forward + backward of its training loss.

The demo trains MLP(2, [16, 16, 1]) on make_moons with an SVM hinge loss plus L2:
mean(relu(1 - y * score)) + 1e-4 * sum(p^2). Here: 50 points, the same float32 weights in
every library; micrograd works one scalar `Value` at a time, the others on whole arrays (the
natural way to write it in chainrule).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.harness import QUICK_SKIP, Impl, Workload
from benchmarks.numpy_ref import scalar_mlp_loss_and_grads

KEY, NAME = "W4", "scalar-mlp"
SIZES, N_POINTS, ALPHA = (2, 16, 16, 1), 50, 1e-4


def moons(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved half circles with noise 0.1 (sklearn's make_moons), labels -1/+1."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, np.pi, n)
    upper = rng.integers(0, 2, n).astype(bool)
    x = np.where(upper, np.cos(t), 1 - np.cos(t))
    y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
    pts = np.stack([x, y], 1) + rng.normal(0, 0.1, (n, 2))
    return pts.astype(np.float32), np.where(upper, -1.0, 1.0).astype(np.float32)


def init_params(seed: int = 1) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)  # micrograd's init: U(-1, 1), biases 0
    return [
        (rng.uniform(-1, 1, (i, o)).astype(np.float32), np.zeros(o, np.float32))
        for i, o in itertools.pairwise(SIZES)
    ]


def numpy_impl(params: list[Any], x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    return lambda: scalar_mlp_loss_and_grads(params, x, y, ALPHA)[0]


def chainrule_impl(params: list[Any], x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    import chainrule as cr

    ps = [cr.tensor(a, requires_grad=True) for wb in params for a in wb]
    xt, yt = cr.tensor(x), cr.tensor(y[:, None])

    def step() -> float:
        h = xt
        for i in range(0, len(ps), 2):
            h = h @ ps[i] + ps[i + 1]
            h = cr.relu(h) if i + 2 < len(ps) else h
        loss = cr.relu(1 - yt * h).mean() + ALPHA * sum((p * p).sum() for p in ps)
        for p in ps:
            p.grad = None
        loss.backward()
        return loss.item()

    step.grads = lambda: [p.grad.data for p in ps]  # type: ignore[attr-defined]
    return step


def torch_impl(params: list[Any], x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    import torch

    ps = [torch.tensor(a, requires_grad=True) for wb in params for a in wb]
    xt, yt = torch.from_numpy(x), torch.from_numpy(y[:, None])

    def step() -> float:
        h = xt
        for i in range(0, len(ps), 2):
            h = h @ ps[i] + ps[i + 1]
            h = torch.relu(h) if i + 2 < len(ps) else h
        loss = torch.relu(1 - yt * h).mean() + ALPHA * sum((p * p).sum() for p in ps)
        for p in ps:
            p.grad = None
        loss.backward()
        return loss.item()

    return step


def micrograd_impl(params: list[Any], x: np.ndarray, y: np.ndarray) -> Callable[[], float]:
    """micrograd's demo loss, as written in its demo.ipynb (per-scalar Values)."""
    from micrograd.engine import Value
    from micrograd.nn import MLP

    model = MLP(SIZES[0], list(SIZES[1:]))
    for layer, (w, b) in zip(model.layers, params):
        for j, neuron in enumerate(layer.neurons):
            neuron.w = [Value(float(v)) for v in w[:, j]]
            neuron.b = Value(float(b[j]))
    xs, ys = x.astype(float).tolist(), y.astype(float).tolist()

    def step() -> float:
        scores = [model([Value(a) for a in row]) for row in xs]
        losses = [(1 + -yi * si).relu() for yi, si in zip(ys, scores)]
        data_loss = sum(losses) * (1.0 / len(losses))
        loss = data_loss + ALPHA * sum(p * p for p in model.parameters())
        model.zero_grad()
        loss.backward()
        return loss.data

    return step


BUILDERS = [
    ("numpy", "numpy", numpy_impl),
    ("chainrule", "chainrule", chainrule_impl),
    ("torch", "torch", torch_impl),
    ("micrograd", "peer", micrograd_impl),
]


def build(quick: bool) -> Workload:
    x, y = moons(N_POINTS)
    params = init_params()
    want = numpy_impl(params, x, y)()
    impls, notes = [], []
    for name, kind, builder in BUILDERS:
        if quick and name in QUICK_SKIP:
            continue
        try:
            step = builder(params, x, y)
        except ImportError as exc:
            notes.append(f"{name}: skipped ({exc})")
            continue
        if not np.isclose(step(), want, rtol=1e-4):
            raise AssertionError(f"W4 {name}: loss {step()} != NumPy's {want}")
        if hasattr(step, "grads"):
            _check_grads(name, step.grads(), scalar_mlp_loss_and_grads(params, x, y, ALPHA)[1])
        impls.append(Impl(name, step, kind))

    def extras(medians: dict[str, float]) -> list[str]:
        if "micrograd" not in medians:
            return []
        return [
            f"{n} is {medians['micrograd'] / t:.0f}x faster than micrograd"
            for n, t in medians.items()
            if n != "micrograd"
        ]

    return Workload(KEY, NAME, "ms/step", 1e3, impls, notes, extras)


def _check_grads(name: str, got: list[np.ndarray], want: list[np.ndarray]) -> None:
    for i, (a, b) in enumerate(zip(got, want)):
        if not np.allclose(a, b, rtol=1e-3, atol=1e-6):
            raise AssertionError(f"W4 {name}: gradient of parameter {i} differs from NumPy's")
