"""W1 and W2: one SGD step of a ReLU MLP on softmax cross-entropy, in every library.

Owns the shared problem (`Problem`: seeded float32 weights, batch, labels) and one builder per
library. Every builder returns `(step, weights)`: `step()` runs forward, loss, backward and the
update; `weights()` returns the current parameters as NumPy arrays, so `check` can verify that
all implementations compute the same step before any of them is timed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.harness import QUICK_SKIP, Impl
from benchmarks.numpy_ref import NumpyMLP

LR = 0.01
Builder = Callable[["Problem"], tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]]


@dataclass
class Problem:
    sizes: tuple[int, ...]
    batch: int
    params: list[tuple[np.ndarray, np.ndarray]]
    x: np.ndarray
    y: np.ndarray

    @classmethod
    def make(cls, sizes: tuple[int, ...], batch: int, seed: int = 0) -> Problem:
        """PyTorch's default Linear init, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), in float32."""
        rng = np.random.default_rng(seed)
        params = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            bound = 1 / np.sqrt(fan_in)
            w = rng.uniform(-bound, bound, (fan_in, fan_out)).astype(np.float32)
            b = rng.uniform(-bound, bound, fan_out).astype(np.float32)
            params.append((w, b))
        x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
        y = rng.integers(0, sizes[-1], batch)
        return cls(sizes, batch, params, x, y)

    def flops(self) -> float:
        """Multiply-adds x 2 of the step's GEMMs: forward, dW per layer, dX but for layer 1."""
        pairs = list(zip(self.sizes[:-1], self.sizes[1:]))
        fwd = sum(2 * self.batch * i * o for i, o in pairs)
        return 3 * fwd - 2 * self.batch * pairs[0][0] * pairs[0][1]


def numpy_impl(p: Problem) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    net = NumpyMLP(p.params, LR)
    return (lambda: net.step(p.x, p.y)), net.weights


def chainrule_impl(p: Problem) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    """The functional way: leaf tensors, F.cross_entropy, backward, an in-place SGD update."""
    import chainrule as cr
    from chainrule.nn import functional as F

    params = [cr.tensor(a, requires_grad=True) for wb in p.params for a in wb]
    x, y = cr.tensor(p.x), p.y
    last = len(params) // 2 - 1

    def step() -> float:
        h = x
        for i in range(0, len(params), 2):
            h = h @ params[i] + params[i + 1]
            if i // 2 < last:
                h = cr.relu(h)
        loss = F.cross_entropy(h, y)
        loss.backward()
        for q in params:
            q.data -= LR * q.grad.data
            q.grad = None
        return loss.item()

    return step, lambda: [q.data for q in params]


def chainrule_nn_impl(p: Problem) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    """The module way (`nn.Linear`, `optim.SGD`), when chainrule.nn provides them."""
    import chainrule as cr
    from chainrule import nn, optim
    from chainrule.nn import functional as F

    layers: list[Any] = []
    for i, (w, b) in enumerate(p.params):
        lin = nn.Linear(w.shape[0], w.shape[1])
        lin.weight.data[...] = w.T  # PyTorch's layout: (out_features, in_features)
        lin.bias.data[...] = b
        layers += [lin, nn.ReLU()] if i < len(p.params) - 1 else [lin]
    model = nn.Sequential(*layers)
    opt = optim.SGD(model.parameters(), lr=LR)
    x, y = cr.tensor(p.x), p.y

    def step() -> float:
        opt.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step, lambda: _linear_weights([m for m in layers if isinstance(m, nn.Linear)])


def chainrule_compiled_impl(
    p: Problem,
) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    """The module way with forward + backward under `chainrule.compile` (traced once, then
    replayed on plain arrays); zero_grad and the optimizer step stay outside, as they must."""
    import chainrule as cr
    from chainrule import nn, optim
    from chainrule.nn import functional as F

    layers: list[Any] = []
    for i, (w, b) in enumerate(p.params):
        lin = nn.Linear(w.shape[0], w.shape[1])
        lin.weight.data[...] = w.T
        lin.bias.data[...] = b
        layers += [lin, nn.ReLU()] if i < len(p.params) - 1 else [lin]
    model = nn.Sequential(*layers)
    opt = optim.SGD(model.parameters(), lr=LR)
    x, y = cr.tensor(p.x), p.y

    @cr.compile
    def loss_and_grads(x: Any, y: Any) -> Any:
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    def step() -> float:
        opt.zero_grad()
        loss = loss_and_grads(x, y)
        opt.step()
        return loss.item()

    return step, lambda: _linear_weights([m for m in layers if isinstance(m, nn.Linear)])


def _linear_weights(lins: list[Any]) -> list[np.ndarray]:
    return [a for lin in lins for a in (lin.weight.data.T, lin.bias.data)]


def torch_impl(p: Problem) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    """Idiomatic PyTorch eager: nn.Sequential, F.cross_entropy, optim.SGD, zero_grad."""
    import torch

    layers: list[Any] = []
    for i, (w, b) in enumerate(p.params):
        lin = torch.nn.Linear(*w.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        layers += [lin, torch.nn.ReLU()] if i < len(p.params) - 1 else [lin]
    model = torch.nn.Sequential(*layers)
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    x, y = torch.from_numpy(p.x), torch.from_numpy(p.y)

    def step() -> float:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    def weights() -> list[np.ndarray]:
        lins = [m for m in layers if isinstance(m, torch.nn.Linear)]
        return [a for m in lins for a in (m.weight.detach().numpy().T, m.bias.detach().numpy())]

    return step, weights


def torch_functional_impl(p: Problem) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    """PyTorch eager without modules or optimizer: the same code as `chainrule_impl`."""
    import torch

    params = [torch.tensor(a, requires_grad=True) for wb in p.params for a in wb]
    x, y = torch.from_numpy(p.x), torch.from_numpy(p.y)
    last = len(params) // 2 - 1

    def step() -> float:
        h = x
        for i in range(0, len(params), 2):
            h = torch.addmm(params[i + 1], h, params[i])
            if i // 2 < last:
                h = torch.relu(h)
        loss = torch.nn.functional.cross_entropy(h, y)
        loss.backward()
        with torch.no_grad():
            for q in params:
                q -= LR * q.grad
                q.grad = None
        return loss.item()

    return step, lambda: [q.detach().numpy() for q in params]


def _mlp_loss(xp: Any, params: list[Any], x: Any, y: Any, logsumexp: Any) -> Any:
    h = x
    for i in range(0, len(params), 2):
        h = h @ params[i] + params[i + 1]
        if i + 2 < len(params):
            h = xp.maximum(h, 0)
    picked = h[np.arange(y.shape[0]), y]
    return xp.mean(logsumexp(h, axis=1) - picked)


def jax_impl(p: Problem) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    """JAX with the whole step under jax.jit (compiled once, during warm-up)."""
    import jax
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    def sgd(params: list[Any], x: Any, y: Any) -> tuple[Any, list[Any]]:
        loss, g = jax.value_and_grad(lambda q: _mlp_loss(jnp, q, x, y, logsumexp))(params)
        return loss, [q - LR * gq for q, gq in zip(params, g)]

    jitted = jax.jit(sgd)
    state = {"params": [jnp.asarray(a) for wb in p.params for a in wb]}
    x, y = jnp.asarray(p.x), jnp.asarray(p.y)

    def step() -> float:
        loss, state["params"] = jitted(state["params"], x, y)
        return float(loss)

    return step, lambda: [np.asarray(q) for q in state["params"]]


def autograd_impl(p: Problem) -> tuple[Callable[[], Any], Callable[[], list[np.ndarray]]]:
    """HIPS autograd: NumPy traced through its wrappers, gradient by `value_and_grad`."""
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    vg = autograd.value_and_grad(lambda q: _mlp_loss(anp, q, p.x, p.y, logsumexp))
    params = [a.copy() for wb in p.params for a in wb]
    lr = np.float32(LR)

    def step() -> float:
        loss, g = vg(params)
        for q, gq in zip(params, g):
            q -= lr * gq.astype(np.float32)
        return float(loss)

    return step, lambda: params


BUILDERS: list[tuple[str, str, Builder]] = [
    ("numpy", "numpy", numpy_impl),
    ("chainrule", "chainrule", chainrule_impl),
    ("chainrule-nn", "chainrule", chainrule_nn_impl),
    ("chainrule-compiled", "chainrule", chainrule_compiled_impl),
    ("torch", "torch", torch_impl),
    ("torch-functional", "torch", torch_functional_impl),
    ("jax-jit", "peer", jax_impl),
    ("autograd", "peer", autograd_impl),
]


def build_impls(p: Problem, quick: bool) -> tuple[list[Impl], list[str]]:
    """Every implementation that can be built here, checked against NumPy after one step."""
    skip = QUICK_SKIP if quick else ()
    impls, notes = [], []
    ref_step, ref_weights = numpy_impl(p)
    ref_loss = ref_step()
    for name, kind, builder in BUILDERS:
        if name in skip:
            continue
        try:
            step, weights = builder(p)
        except (ImportError, AttributeError) as exc:
            notes.append(f"{name}: skipped ({type(exc).__name__}: {exc})")
            continue
        loss = step()
        _check(name, loss, ref_loss, weights(), ref_weights())
        impls.append(Impl(name, step, kind))
    return impls, notes


def _check(name: str, loss: float, ref_loss: float, got: list[Any], want: list[Any]) -> None:
    if not np.isclose(loss, ref_loss, rtol=1e-4, atol=1e-5):
        raise AssertionError(f"{name}: loss {loss} != NumPy's {ref_loss}")
    for i, (a, b) in enumerate(zip(got, want)):
        if not np.allclose(np.asarray(a), b, rtol=1e-3, atol=1e-5):
            raise AssertionError(f"{name}: parameter {i} after one step differs from NumPy's")
