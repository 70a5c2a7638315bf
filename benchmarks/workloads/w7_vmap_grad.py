"""W7 per-example gradients: vmap(grad(loss)) of an MLP 40-100-10 (tanh, softmax cross-entropy)
over 100 examples, every parameter's gradient for every example.

The NumPy floor writes the per-example backward by hand with einsum (dW_b = delta_b a_b^T for
every b); `chainrule-loop` is the Python loop of `grad` that vmap replaces.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.harness import QUICK_SKIP, Impl, Workload

KEY, NAME = "W7", "vmap-grad"
SIZES, BATCH = (40, 100, 10), 100

Problem = tuple[list[np.ndarray], np.ndarray, np.ndarray]


def problem(seed: int = 0) -> Problem:
    rng = np.random.default_rng(seed)
    (i, h, o) = SIZES
    params = [
        (rng.standard_normal((i, h)) / np.sqrt(i)).astype(np.float32),
        np.zeros(h, np.float32),
        (rng.standard_normal((h, o)) / np.sqrt(h)).astype(np.float32),
        np.zeros(o, np.float32),
    ]
    x = rng.standard_normal((BATCH, i)).astype(np.float32)
    return params, x, rng.integers(0, o, BATCH)


def numpy_impl(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    w1, b1, w2, b2 = params

    def per_example() -> list[np.ndarray]:
        a = np.tanh(x @ w1 + b1)
        z = a @ w2 + b2
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1  # d loss_b / d z_b
        d1 = (p @ w2.T) * (1 - a * a)
        return [np.einsum("bi,bh->bih", x, d1), d1, np.einsum("bh,bo->bho", a, p), p]

    return per_example


def _loss(cr: Any) -> Callable[..., Any]:
    from chainrule.composite import softmax_cross_entropy

    def loss(w1: Any, b1: Any, w2: Any, b2: Any, x: Any, y: Any) -> Any:
        return softmax_cross_entropy(cr.tanh(x @ w1 + b1) @ w2 + b2, y)

    return loss


def chainrule_impl(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    import chainrule as cr

    g = cr.vmap(cr.grad(_loss(cr), argnums=(0, 1, 2, 3)), in_axes=(None,) * 4 + (0, 0))
    ps, xt = [cr.tensor(p) for p in params], cr.tensor(x)
    return lambda: [t.data for t in g(*ps, xt, y)]


def chainrule_compiled_impl(
    params: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> Callable[[], Any]:
    """`chainrule.compile(vmap(grad(loss)))`: raises CompileError while compile cannot."""
    import chainrule as cr

    g = cr.compile(cr.vmap(cr.grad(_loss(cr), argnums=(0, 1, 2, 3)), in_axes=(None,) * 4 + (0, 0)))
    ps, xt = [cr.tensor(p) for p in params], cr.tensor(x)
    for _ in range(3):  # trace, check the trace, replay
        g(*ps, xt, y)
    return lambda: [t.data for t in g(*ps, xt, y)]


def chainrule_loop_impl(
    params: list[np.ndarray], x: np.ndarray, y: np.ndarray
) -> Callable[[], Any]:
    import chainrule as cr

    g = cr.grad(_loss(cr), argnums=(0, 1, 2, 3))
    ps = [cr.tensor(p) for p in params]
    rows = [(cr.tensor(x[b]), y[b]) for b in range(len(y))]

    def loop() -> list[np.ndarray]:
        grads = [g(*ps, xb, yb) for xb, yb in rows]
        return [np.stack([gb[k].data for gb in grads]) for k in range(4)]

    return loop


def torch_impl(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    import torch
    from torch.func import grad, vmap

    def loss(w1: Any, b1: Any, w2: Any, b2: Any, x: Any, y: Any) -> Any:
        z = torch.tanh(x @ w1 + b1) @ w2 + b2
        return torch.nn.functional.cross_entropy(z[None], y[None])

    g = vmap(grad(loss, argnums=(0, 1, 2, 3)), in_dims=(None,) * 4 + (0, 0))
    ps, xt, yt = [torch.from_numpy(p) for p in params], torch.from_numpy(x), torch.from_numpy(y)
    return lambda: [t.numpy() for t in g(*ps, xt, yt)]


def jax_jit_impl(params: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp

    def loss(w1: Any, b1: Any, w2: Any, b2: Any, x: Any, y: Any) -> Any:
        z = jnp.tanh(x @ w1 + b1) @ w2 + b2
        return jax.nn.logsumexp(z) - z[y]

    g = jax.jit(jax.vmap(jax.grad(loss, argnums=(0, 1, 2, 3)), in_axes=(None,) * 4 + (0, 0)))
    args = [jnp.asarray(a) for a in (*params, x, y)]
    return lambda: [np.asarray(t) for t in g(*args)]


BUILDERS = [
    ("numpy", "numpy", numpy_impl),
    ("chainrule", "chainrule", chainrule_impl),
    ("chainrule-compiled", "chainrule", chainrule_compiled_impl),
    ("chainrule-loop", "chainrule", chainrule_loop_impl),
    ("torch", "torch", torch_impl),
    ("jax-jit", "peer", jax_jit_impl),
]


def build(quick: bool) -> Workload:
    from chainrule.compile import CompileError

    params, x, y = problem()
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
        except CompileError as exc:
            notes.append(f"{name}: n/a: {exc}")
            continue
        got = step()
        for g, w in zip(got, want):
            if np.shape(g) != w.shape or not np.allclose(g, w, rtol=1e-3, atol=1e-5):
                raise AssertionError(f"W7 {name}: per-example gradients differ from NumPy's")
        impls.append(Impl(name, step, kind))
    return Workload(KEY, NAME, "ms/call", 1e3, impls, notes)
