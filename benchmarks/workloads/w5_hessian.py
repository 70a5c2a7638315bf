"""W5 hessian: the full Hessian of f(x) = logsumexp(A x) + 0.5 ||x||^2, x in R^200, A 300x200.

The closed form H = A^T (diag(p) - p p^T) A + I with p = softmax(A x) is the NumPy floor and
the check every library's answer must match.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.harness import QUICK_SKIP, Impl, Workload

KEY, NAME = "W5", "hessian"
N, M = 200, 300


def problem(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = (rng.standard_normal((M, N)) / np.sqrt(N)).astype(np.float32)
    return a, rng.standard_normal(N).astype(np.float32)


def numpy_impl(a: np.ndarray, x: np.ndarray) -> Callable[[], Any]:
    def hess() -> np.ndarray:
        z = a @ x
        p = np.exp(z - z.max())
        p /= p.sum()
        pa = p @ a
        return a.T @ (p[:, None] * a) - np.outer(pa, pa) + np.eye(N, dtype=np.float32)

    return hess


def chainrule_impl(a: np.ndarray, x: np.ndarray) -> Callable[[], Any]:
    import chainrule as cr

    at, xt = cr.tensor(a), cr.tensor(x)
    h = cr.hessian(lambda v: cr.logsumexp(at @ v) + 0.5 * cr.sum(v * v))
    return lambda: h(xt).data


def chainrule_compiled_impl(a: np.ndarray, x: np.ndarray) -> Callable[[], Any]:
    """The same hessian under `chainrule.compile`: traced and checked here, then replayed."""
    import chainrule as cr

    at, xt = cr.tensor(a), cr.tensor(x)
    h = cr.compile(cr.hessian(lambda v: cr.logsumexp(at @ v) + 0.5 * cr.sum(v * v)))
    h(xt), h(xt)
    return lambda: h(xt).data


def torch_impl(a: np.ndarray, x: np.ndarray) -> Callable[[], Any]:
    import torch
    from torch.func import hessian

    at, xt = torch.from_numpy(a), torch.from_numpy(x)
    h = hessian(lambda v: torch.logsumexp(at @ v, 0) + 0.5 * torch.sum(v * v))
    return lambda: h(xt).numpy()


def _jax_fn(a: np.ndarray) -> Any:
    import jax.numpy as jnp
    from jax.scipy.special import logsumexp

    aj = jnp.asarray(a)
    return lambda v: logsumexp(aj @ v) + 0.5 * jnp.sum(v * v)


def jax_impl(a: np.ndarray, x: np.ndarray) -> Callable[[], Any]:
    """jax.hessian (jacfwd of jacrev) eager, op by op."""
    import jax

    h, xj = jax.hessian(_jax_fn(a)), jax.numpy.asarray(x)
    return lambda: np.asarray(h(xj))


def jax_jit_impl(a: np.ndarray, x: np.ndarray) -> Callable[[], Any]:
    import jax

    h, xj = jax.jit(jax.hessian(_jax_fn(a))), jax.numpy.asarray(x)
    return lambda: np.asarray(h(xj))


def autograd_impl(a: np.ndarray, x: np.ndarray) -> Callable[[], Any]:
    import autograd
    import autograd.numpy as anp
    from autograd.scipy.special import logsumexp

    return lambda: autograd.hessian(lambda v: logsumexp(a @ v) + 0.5 * anp.sum(v * v))(x)


BUILDERS = [
    ("numpy", "numpy", numpy_impl),
    ("chainrule", "chainrule", chainrule_impl),
    ("chainrule-compiled", "chainrule", chainrule_compiled_impl),
    ("torch", "torch", torch_impl),
    ("jax", "peer", jax_impl),
    ("jax-jit", "peer", jax_jit_impl),
    ("autograd", "peer", autograd_impl),
]


def build(quick: bool) -> Workload:
    from chainrule.compile import CompileError

    a, x = problem()
    want = numpy_impl(a, x)()
    impls, notes = [], []
    for name, kind, builder in BUILDERS:
        if quick and name in QUICK_SKIP:
            continue
        try:
            step = builder(a, x)
        except ImportError as exc:
            notes.append(f"{name}: skipped ({exc})")
            continue
        except CompileError as exc:
            notes.append(f"{name}: n/a: {exc}")
            continue
        got = np.asarray(step())
        if got.shape != (N, N) or not np.allclose(got, want, rtol=1e-3, atol=1e-4):
            raise AssertionError(f"W5 {name}: Hessian differs from the closed form")
        impls.append(Impl(name, step, kind))
    return Workload(KEY, NAME, "ms/call", 1e3, impls, notes)
