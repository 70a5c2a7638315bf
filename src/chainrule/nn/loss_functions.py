"""More losses, as PyTorch defines them: NLL, cross-entropy with class weights, ignore_index,
label smoothing and N-d inputs, binary cross-entropy (with pos_weight on logits), L1, smooth L1,
Huber and KL divergence. All composed from op-table primitives: no derivative code.

`functional.cross_entropy` and `binary_cross_entropy_with_logits` keep their fused fast paths
and come here only for the options those paths lack.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule.errors import OpError
from chainrule.tensor import Tensor

__all__ = [
    "binary_cross_entropy",
    "cross_entropy_general",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "nll_loss",
    "smooth_l1_loss",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, name: str, extra: tuple[str, ...] = ()) -> Tensor:
    if reduction == "mean":
        return C.mean(loss)
    if reduction == "sum":
        return C.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS + extra}, got {reduction!r}")


def _pair(input: Any, target: Any, name: str) -> tuple[Tensor, Any]:
    x = C._t(input)
    t = target if isinstance(target, Tensor) else np.asarray(target, dtype=x.dtype)
    if x.shape != tuple(np.shape(t.data if isinstance(t, Tensor) else t)):
        raise OpError(
            f"{name}: input shape {x.shape} and target shape {np.shape(t)} differ; "
            "broadcasting them is almost always a bug (reshape one of them)"
        )
    return x, t


def _labels(logp: Tensor, target: Any, ignore_index: int, name: str) -> tuple[np.ndarray, Any]:
    """Integer labels checked against the class axis 1 (axis 0 for one sample): (safe, keep)."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    n_classes = logp.shape[1] if logp.ndim > 1 else logp.shape[0]
    want = (logp.shape[0], *logp.shape[2:]) if logp.ndim > 1 else ()
    if t.shape != want:
        raise ValueError(
            f"{name}: target of shape {t.shape} does not match input of shape {logp.shape} "
            f"(expected {want}: the class axis is 1)"
        )
    keep = t != ignore_index
    C._check_labels(name, t, n_classes, keep)
    return np.where(keep, t, 0).astype(np.intp), keep


def _pick(logp: Tensor, labels: np.ndarray) -> Tensor:
    """logp[n, labels[n, ...], ...]: the log-probability of each sample's label."""
    if logp.ndim == 1:
        return logp[labels]
    grids: tuple[Any, ...] = tuple(np.indices(labels.shape, sparse=True))
    index = (grids[0], labels, *grids[1:])
    return C.getitem(logp, index)


def _class_shape(x: Tensor) -> tuple[int, ...]:
    """A per-class weight's shape for broadcasting along the class axis."""
    return (-1,) + (1,) * (x.ndim - 2) if x.ndim > 1 else (-1,)


def nll_loss(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    """-w[y] logp[y] per sample from log-probabilities (class axis 1); 'mean' divides by the
    summed weights of the samples not ignored, as PyTorch.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.nll_loss(cr.tensor([[-1.0, -2.0], [-0.5, -3.0]]), [1, 0]).item()
    1.25
    """
    return _nll(C._t(input), target, weight, ignore_index, reduction, "nll_loss")


def _nll(
    logp: Tensor, target: Any, weight: Any, ignore_index: int, reduction: str, name: str
) -> Tensor:
    """nll_loss, its errors named after the function the user called (`name`)."""
    labels, keep = _labels(logp, target, ignore_index, name)
    w = np.ones(logp.shape[1] if logp.ndim > 1 else logp.shape[0], dtype=logp.dtype)
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=logp.dtype)
    per = w[labels] * keep
    loss = -_pick(logp, labels) * per
    if reduction == "mean":
        return C.sum(loss) / per.sum()
    return _reduce(loss, reduction, name)


def cross_entropy_general(
    input: Any,
    target: Any,
    weight: Any = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross-entropy with PyTorch's options: class weights, ignore_index, label smoothing and
    (N, C, d1, ...) inputs; targets are integer labels or class probabilities."""
    x = C._t(input)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"cross_entropy: label_smoothing must be in [0, 1], got {label_smoothing}")
    axis = 1 if x.ndim > 1 else 0
    logp = C.log_softmax(x, axis=axis)
    n_classes = x.shape[axis]
    w = None
    if weight is not None:
        w = np.asarray(weight.data if isinstance(weight, Tensor) else weight, dtype=x.dtype)
        if w.shape != (n_classes,):
            raise ValueError(f"cross_entropy: weight must have shape ({n_classes},), got {w.shape}")
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind == "f":  # class probabilities: -sum_c w_c t'_c logp_c, t' smoothed
        if t.shape != x.shape:
            raise ValueError(f"cross_entropy: probabilities {t.shape} must match input {x.shape}")
        # a Tensor target stays one, so the loss is differentiable in it too (as PyTorch)
        tt = target if isinstance(target, Tensor) else t.astype(x.dtype)
        tt = tt * (1 - label_smoothing) + label_smoothing / n_classes
        wt = tt if w is None else tt * w.reshape(_class_shape(x))
        return _reduce(-C.sum(logp * wt, axis=axis), reduction, "cross_entropy")
    nll = _nll(logp, t, w, ignore_index, reduction, "cross_entropy")
    if not label_smoothing:
        return nll
    # PyTorch: (1 - e) nll + e / C * smooth, smooth = -sum_c w_c logp_c, ignored samples 0
    labels, keep = _labels(logp, t, ignore_index, "cross_entropy")
    wc = np.ones(n_classes, dtype=x.dtype) if w is None else w
    smooth = -C.sum(logp * wc.reshape(_class_shape(x)), axis=axis) * keep
    if reduction == "mean":
        # the count in x's dtype: an int64 count would promote a float32 loss to float64
        count = keep.sum() if w is None else (w[labels] * keep).sum()
        smooth = C.sum(smooth) / np.asarray(count, dtype=x.dtype)
    else:
        smooth = _reduce(smooth, reduction, "cross_entropy")
    return nll * (1 - label_smoothing) + smooth * (label_smoothing / n_classes)


def binary_cross_entropy(
    input: Any, target: Any, weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """-w [t log p + (1 - t) log(1 - p)] on probabilities p; each log is clamped at -100, as
    PyTorch does, so p = 0 or 1 gives a finite loss.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> round(F.binary_cross_entropy(cr.tensor([0.5, 0.5]), cr.tensor([1.0, 0.0])).item(), 4)
    0.6931
    """
    p, t = _pair(input, target, "binary_cross_entropy")
    pa = p.data
    if pa.size and (pa.min() < 0 or pa.max() > 1):
        raise ValueError("binary_cross_entropy: input must be probabilities in [0, 1]")
    # log of a safe argument, replaced by -100 where it would be below (never log(0))
    floor = np.exp(np.float64(-100)).astype(p.dtype)
    log_p = C.where(pa > floor, C.log(C.where(pa > floor, p, 1)), -100.0)
    log_q = C.where(1 - pa > floor, C.log(C.where(1 - pa > floor, 1 - p, 1)), -100.0)
    loss = -(t * log_p + (1 - t) * log_q)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy")


def bce_with_logits_general(
    input: Any, target: Any, weight: Any = None, pos_weight: Any = None, reduction: str = "mean"
) -> Tensor:
    """(1 - t) x + (1 + (pos_weight - 1) t) softplus(-x), times weight: PyTorch's form."""
    x, t = _pair(input, target, "binary_cross_entropy_with_logits")
    lw = 1 if pos_weight is None else (C._t(pos_weight) - 1) * t + 1
    loss = (1 - t) * x + lw * C.softplus(-x)
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction, "binary_cross_entropy_with_logits")


def l1_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """|x - t|, reduced; its gradient is sign(x - t) (0 where they are equal).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.l1_loss(cr.tensor([1.0, 3.0]), cr.tensor([2.0, 1.0])).item()
    1.5
    """
    x, t = _pair(input, target, "l1_loss")
    return _reduce(C.abs(x - t), reduction, "l1_loss")


def smooth_l1_loss(input: Any, target: Any, reduction: str = "mean", beta: float = 1.0) -> Tensor:
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (beta = 0 is the L1 loss)."""
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be >= 0, got {beta}")
    x, t = _pair(input, target, "smooth_l1_loss")
    d = x - t
    if beta == 0:
        return _reduce(C.abs(d), reduction, "smooth_l1_loss")
    quadratic = C._from_values(_inside, d.data, beta, False)
    loss = C.where(quadratic, 0.5 * d * d / beta, C.abs(d) - 0.5 * beta)
    return _reduce(loss, reduction, "smooth_l1_loss")


def huber_loss(input: Any, target: Any, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """0.5 d^2 where |d| <= delta, else delta (|d| - 0.5 delta): smooth L1 times delta."""
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be > 0, got {delta}")
    x, t = _pair(input, target, "huber_loss")
    d = x - t
    quadratic = C._from_values(_inside, d.data, delta, True)
    loss = C.where(quadratic, 0.5 * d * d, delta * (C.abs(d) - 0.5 * delta))
    return _reduce(loss, reduction, "huber_loss")


def _inside(d: np.ndarray, bound: float, closed: bool) -> np.ndarray:
    """|d| < bound (<= if closed): where the loss is quadratic (a mask compile recomputes)."""
    return np.abs(d) <= bound if closed else np.abs(d) < bound


def kl_div(input: Any, target: Any, reduction: str = "mean", log_target: bool = False) -> Tensor:
    """KL(target || exp(input)) pointwise: t (log t - x), 0 where t = 0; input holds
    log-probabilities. 'batchmean' divides the sum by the batch size (the true KL)."""
    x, t = _pair(input, target, "kl_div")
    if log_target:
        loss = C.exp(t) * (t - x)
    else:
        ta = t.data if isinstance(t, Tensor) else t
        log_t = C.log(C.where(ta > 0, t, 1))  # x log x -> 0 at x = 0
        loss = C.where(ta > 0, t * (log_t - x), 0.0)
    if reduction == "batchmean":
        return C.sum(loss) / (x.shape[0] if x.ndim else 1)
    return _reduce(loss, reduction, "kl_div", ("batchmean",))
