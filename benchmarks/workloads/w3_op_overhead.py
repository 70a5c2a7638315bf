"""W3 op-overhead: `y = y * 1.0001` 1000 times on 16 elements, forward and backward.

The arithmetic is negligible, so the time per op is the library's own bookkeeping: recording
the node, dispatching the forward and the vjp. Reported in microseconds per op (fwd + bwd).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.harness import QUICK_SKIP, Impl, Workload

KEY, NAME = "W3", "op-overhead"
N_OPS, SIZE, C = 1000, 16, 1.0001


def numpy_impl() -> Callable[[], Any]:
    """The floor: the forward multiplies, then the backward multiplies the gradient back."""
    x = np.ones(SIZE, np.float32)
    c = np.float32(C)

    def step() -> np.ndarray:
        y = x
        for _ in range(N_OPS):
            y = y * c
        g = np.ones_like(y)
        for _ in range(N_OPS):
            g = g * c
        return g

    return step


def chainrule_impl() -> Callable[[], Any]:
    import chainrule as cr

    x = cr.tensor(np.ones(SIZE, np.float32), requires_grad=True)
    seed = np.ones(SIZE, np.float32)

    def step() -> Any:
        y = x
        for _ in range(N_OPS):
            y = y * C
        y.backward(seed)
        g, x.grad = x.grad, None
        return g

    return step


def torch_impl() -> Callable[[], Any]:
    import torch

    x = torch.ones(SIZE, requires_grad=True)
    seed = torch.ones(SIZE)

    def step() -> Any:
        y = x
        for _ in range(N_OPS):
            y = y * C
        y.backward(seed)
        g, x.grad = x.grad, None
        return g

    return step


def autograd_impl() -> Callable[[], Any]:
    import autograd

    def chain(x: Any) -> Any:
        y = x
        for _ in range(N_OPS):
            y = y * C
        return y

    vjp = autograd.make_vjp(chain)
    x, seed = np.ones(SIZE, np.float32), np.ones(SIZE, np.float32)
    return lambda: vjp(x)[0](seed)


def jax_impl() -> Callable[[], Any]:
    """JAX eager (not jitted): jax.vjp traces the Python loop op by op on every call."""
    import jax
    import jax.numpy as jnp

    def chain(x: Any) -> Any:
        y = x
        for _ in range(N_OPS):
            y = y * C
        return y

    x, seed = jnp.ones(SIZE, jnp.float32), jnp.ones(SIZE, jnp.float32)
    return lambda: jax.vjp(chain, x)[1](seed)[0].block_until_ready()


def _to_numpy(g: Any) -> np.ndarray:
    if hasattr(g, "detach"):  # torch
        g = g.detach().numpy()
    elif hasattr(g, "requires_grad"):  # a chainrule Tensor
        g = g.data
    return np.asarray(g, dtype=np.float64)


BUILDERS = [
    ("numpy", "numpy", numpy_impl),
    ("chainrule", "chainrule", chainrule_impl),
    ("torch", "torch", torch_impl),
    ("autograd", "peer", autograd_impl),
    ("jax-eager", "peer", jax_impl),
]


def build(quick: bool) -> Workload:
    impls, notes = [], []
    want = C**N_OPS
    for name, kind, builder in BUILDERS:
        if quick and name in QUICK_SKIP:
            continue
        try:
            step = builder()
        except ImportError as exc:
            notes.append(f"{name}: skipped ({exc})")
            continue
        g = _to_numpy(step())
        if not np.allclose(g, want, rtol=1e-3):
            raise AssertionError(f"W3 {name}: gradient {g[0]} != {want}")
        impls.append(Impl(name, step, kind))
    return Workload(KEY, NAME, "us/op", 1e6 / N_OPS, impls, notes)
