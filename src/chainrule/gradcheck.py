"""gradcheck: analytic gradients against central differences, in float64.

For a random cotangent u, the analytic J^T u (one backward pass) is compared with the numeric
d<u, f(x)>/dx_j = (<u, f(x + eps e_j)> - <u, f(x - eps e_j)>) / (2 eps), element by element for
small inputs and along random directions v (<J^T u, v> vs <u, J v>) for large ones.
Seed 003 section 7's advice ("verify numerically"), made a function. Imports the engine only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from chainrule import autodiff
from chainrule.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree; the message names input, index and values."""


def gradcheck(
    f: Callable[..., Any],
    inputs: Any,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    *,
    order: int = 1,
    max_elements: int = 512,
    seed: int = 0,
) -> bool:
    """Check f's reverse-mode derivatives against central differences in float64.

    Parameters
    ----------
    f : callable
        Takes the inputs as Tensors and returns a Tensor.
    inputs : array_like or sequence of array_like
        Floating inputs are differentiated (cast to float64); others are passed as constants.
    eps, atol, rtol : float
        Step and tolerance: |analytic - numeric| <= atol + rtol * |numeric|.
    order : int
        2 also checks the derivative of the gradient (a gradgradcheck).
    max_elements : int
        Inputs with more elements are checked along 8 random directions instead.

    Returns
    -------
    bool
        True; a failure raises.

    Raises
    ------
    GradcheckError
        Naming the input, the element index, the analytic and numeric values and the errors.

    Examples
    --------
    >>> import chainrule as cr
    >>> cr.gradcheck(lambda x: cr.sigmoid(x) * x, [cr.tensor([0.5, -1.0])])
    True
    """
    args = _float64_inputs(inputs)
    diff = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype.kind == "f"]
    rng = np.random.default_rng(seed)
    out = np.asarray(_eval(f, args))
    u = rng.standard_normal(out.shape)
    analytic = _analytic(f, args, diff, u)
    for k, i in enumerate(diff):
        _compare_input(f, args, i, u, analytic[k], eps, atol, rtol, max_elements, rng)
    if order >= 2:
        gradcheck(
            _gradient_fn(f, args, diff, u),
            [args[i] for i in diff],
            eps,
            atol,
            rtol,
            order=order - 1,
            max_elements=max_elements,
            seed=seed + 1,
        )
    return True


def _float64_inputs(inputs: Any) -> list[Any]:
    if isinstance(inputs, (Tensor, np.ndarray, float, int)):
        inputs = [inputs]
    args = []
    for a in inputs:
        arr = np.array(a.data if isinstance(a, Tensor) else a)
        args.append(arr.astype(np.float64) if arr.dtype.kind == "f" else arr)
    return args


def _eval(f: Callable[..., Any], args: Sequence[Any]) -> np.ndarray:
    out = f(*[Tensor(a) if isinstance(a, np.ndarray) and a.dtype.kind == "f" else a for a in args])
    return np.asarray(out.data if isinstance(out, Tensor) else out, dtype=np.float64)


def _analytic(f: Callable[..., Any], args: list[Any], diff: list[int], u: np.ndarray) -> list[Any]:
    def g(*xs: Any) -> Any:
        full = list(args)
        for i, x in zip(diff, xs):
            full[i] = x
        return f(*full)

    out, vjp_fn = autodiff.vjp(g, *[Tensor(args[i]) for i in diff])
    grads = vjp_fn(Tensor(u.astype(out.dtype)))
    res = []
    for i, gr in zip(diff, grads):
        if gr.shape != args[i].shape:
            raise GradcheckError(
                f"input {i}: gradient has shape {gr.shape}, input has {args[i].shape}"
            )
        res.append(np.asarray(gr.data, dtype=np.float64))
    return res


def _phi(f: Callable[..., Any], args: list[Any], i: int, x: np.ndarray, u: np.ndarray) -> float:
    full = list(args)
    full[i] = x
    return float(np.sum(_eval(f, full) * u))


def _compare_input(
    f: Callable[..., Any],
    args: list[Any],
    i: int,
    u: np.ndarray,
    a: np.ndarray,
    eps: float,
    atol: float,
    rtol: float,
    max_elements: int,
    rng: np.random.Generator,
) -> None:
    x = args[i]
    if x.size <= max_elements:
        for j in np.ndindex(x.shape):
            e = np.zeros_like(x)
            e[j] = eps
            n = (_phi(f, args, i, x + e, u) - _phi(f, args, i, x - e, u)) / (2 * eps)
            _judge(i, f"index {j}", float(a[j]), n, atol, rtol)
        return
    for k in range(8):
        v = rng.standard_normal(x.shape)
        n = (_phi(f, args, i, x + eps * v, u) - _phi(f, args, i, x - eps * v, u)) / (2 * eps)
        _judge(i, f"random direction {k}", float(np.sum(a * v)), n, atol, rtol)


def _judge(i: int, where: str, a: float, n: float, atol: float, rtol: float) -> None:
    err = abs(a - n)
    if not (np.isfinite(a) and err <= atol + rtol * abs(n)):
        rel = err / abs(n) if n else float("inf")
        raise GradcheckError(
            f"gradcheck failed for input {i} at {where}: analytic {a:.10g}, numeric {n:.10g}, "
            f"abs error {err:.3g}, rel error {rel:.3g} (atol {atol:g}, rtol {rtol:g})"
        )


def _gradient_fn(
    f: Callable[..., Any], args: list[Any], diff: list[int], u: np.ndarray
) -> Callable[..., Any]:
    """x -> J(x)^T u flattened and joined, differentiable (for the second-order check)."""
    from chainrule import composite as C

    def h(*xs: Any) -> Any:
        def g(*ys: Any) -> Any:
            full = list(args)
            for i, y in zip(diff, ys):
                full[i] = y
            return C.sum(f(*full) * Tensor(u))

        grads = autodiff.grad(g, argnums=tuple(range(len(diff))))(*xs)
        return C.concatenate([C.reshape(gr, -1) for gr in grads])

    return h
