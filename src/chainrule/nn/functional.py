"""`chainrule.nn.functional` (import as F): activations and losses as plain functions.

Losses are composed from the op table's primitives; cross-entropy goes through logsumexp, so
its gradient is exactly softmax(z) - onehot(y) (seed 002) and stays finite for huge logits.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule import ops
from chainrule.composite import (
    gelu,
    leaky_relu,
    linear,
    log_softmax,
    logsumexp,
    relu,
    sigmoid,
    silu,
    softmax,
    softplus,
    tanh,
)
from chainrule.errors import OpError
from chainrule.nn.attention import scaled_dot_product_attention
from chainrule.nn.conv import (
    conv1d,
    conv2d,
    conv3d,
    conv_transpose1d,
    conv_transpose2d,
    conv_transpose3d,
)
from chainrule.nn.loss_functions import (
    bce_with_logits_general,
    binary_cross_entropy,
    cross_entropy_general,
    huber_loss,
    kl_div,
    l1_loss,
    nll_loss,
    smooth_l1_loss,
)
from chainrule.nn.pooling import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    avg_pool1d,
    avg_pool2d,
    avg_pool3d,
    interpolate,
    max_pool1d,
    max_pool2d,
    max_pool3d,
    max_unpool1d,
    max_unpool2d,
)
from chainrule.nn.rnn import embedding
from chainrule.tensor import Tensor, apply

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "avg_pool1d",
    "avg_pool2d",
    "avg_pool3d",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "cross_entropy",
    "embedding",
    "gelu",
    "huber_loss",
    "interpolate",
    "kl_div",
    "l1_loss",
    "leaky_relu",
    "linear",
    "log_softmax",
    "logsumexp",
    "max_pool1d",
    "max_pool2d",
    "max_pool3d",
    "max_unpool1d",
    "max_unpool2d",
    "mse_loss",
    "nll_loss",
    "pad",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str, name: str) -> Tensor:
    if reduction == "mean":
        return C.mean(loss)
    if reduction == "sum":
        return C.sum(loss)
    if reduction == "none":
        return loss
    raise ValueError(f"{name}: reduction must be one of {_REDUCTIONS}, got {reduction!r}")


def _same_shape(x: Tensor, t: Any, name: str) -> None:
    if x.shape != np.shape(t.data if isinstance(t, Tensor) else t):
        raise OpError(
            f"{name}: input shape {x.shape} and target shape {np.shape(t)} differ; "
            "broadcasting them is almost always a bug (reshape one of them)"
        )


def mse_loss(input: Any, target: Any, reduction: str = "mean") -> Tensor:
    """Mean squared error (x - t)^2, reduced by 'mean', 'sum' or 'none'.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.mse_loss(cr.tensor([1.0, 2.0]), cr.tensor([1.0, 4.0])).item()
    2.0
    """
    x = C._t(input)
    _same_shape(x, target, "mse_loss")
    d = x - target
    return _reduce(d * d, reduction, "mse_loss")


def cross_entropy(
    logits: Any,
    target: Any,
    weight: Any = None,
    *,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Softmax cross-entropy from raw logits, stable for any logit size.

    Parameters
    ----------
    logits : Tensor, shape (N, C) or (C,), or (N, C, d1, ...) (the class axis is 1)
    target : integer class labels, shape (N,) or (); or probabilities/one-hot, shape (N, C)
    weight, ignore_index, label_smoothing : PyTorch's options (`loss_functions.py`)
    reduction : 'mean' | 'sum' | 'none'

    Its gradient with respect to the logits is softmax(logits) - onehot(target) (divided by N
    for 'mean').

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> z = cr.tensor([[2.0, 0.0, 0.0]], requires_grad=True)
    >>> loss = F.cross_entropy(z, [0])
    >>> loss.backward()
    >>> bool((abs(z.grad.data - (cr.softmax(z).data - [1, 0, 0])) < 1e-7).all())
    True
    """
    z = C._t(logits)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if (
        reduction == "mean"
        and weight is None
        and not label_smoothing
        and t.dtype.kind in "iu"
        and t.shape == z.shape[:-1]
        and 1 <= z.ndim <= 2
        and _plain_labels(t, z.shape[-1], ignore_index)
    ):  # the common case, validated by one reduction: one fused op, the mean included
        return apply(ops.softmax_cross_entropy, z, labels=t.astype(np.intp, copy=False), mean=True)
    if (
        weight is not None
        or label_smoothing
        or z.ndim > 2
        or (
            t.dtype.kind in "iu"
            and t.size
            and (t.min() < 0 or (ignore_index >= 0 and bool((t == ignore_index).any())))
        )
    ):  # the options the fused op lacks; a negative label is ignored or reported there
        target = target if isinstance(target, Tensor) else t  # a Tensor keeps its gradient
        return cross_entropy_general(z, target, weight, ignore_index, reduction, label_smoothing)
    if z.ndim not in (1, 2):
        raise ValueError(f"cross_entropy: logits must have shape (N, C) or (C,), got {z.shape}")
    if t.dtype.kind in "iub":
        if reduction == "mean" and t.size:  # the mean fused into the same op
            return _ce_labels(z, t, mean=True)
        loss = _ce_labels(z, t)
    elif t.dtype.kind == "f":
        _same_shape(z, t, "cross_entropy")
        # the target itself, not its array: a probability target that requires grad gets one
        probs = target if isinstance(target, Tensor) else t
        loss = -C.sum(probs * log_softmax(z, axis=-1), axis=-1)
    else:
        raise TypeError(
            f"cross_entropy: target dtype {t.dtype} is neither integer labels nor probabilities"
        )
    return _reduce(loss, reduction, "cross_entropy")


# Integer dtype -> the unsigned dtype of its size, for `_plain_labels`.
_UNSIGNED = {np.dtype(f"i{n}"): np.dtype(f"u{n}") for n in (1, 2, 4, 8)}


def _plain_labels(t: np.ndarray, n_classes: int, ignore_index: int) -> bool:
    """Whether integer labels all lie in 0..n_classes-1 and none is `ignore_index`.

    One pass instead of a min, a max and an ignore_index scan (about 1 us each on W2's 32
    labels): seen as unsigned, a negative label is above any class count. The pass is argmax,
    a plain C method, a quarter of the cost of the ufunc reduction `max` on small arrays.
    False sends the labels to the checks that name the bad one (or to the general op, for
    ignored labels).
    """
    if not t.size:
        return False
    u = t.view(_UNSIGNED.get(t.dtype, t.dtype))
    top = u.item(u.argmax())  # any shape: argmax and item take flat indices
    if top >= n_classes:
        return False
    return not (0 <= ignore_index <= top and bool((t == ignore_index).any()))


def _ce_labels(z: Tensor, t: np.ndarray, mean: bool = False) -> Tensor:
    n_classes = z.shape[-1]
    if t.shape != z.shape[:-1]:
        raise ValueError(
            f"cross_entropy: labels of shape {t.shape} do not match logits of "
            f"shape {z.shape} (expected {z.shape[:-1]})"
        )
    C._check_labels("cross_entropy", t, n_classes)
    # one fused op: logsumexp(z) - z[label], whose vjp is softmax(z) - onehot(label). No copy
    # of intp labels: `chainrule.compile` then sees the caller's own array and reads it fresh.
    return C.softmax_cross_entropy(z, t.astype(np.intp, copy=False), mean=mean)


def binary_cross_entropy_with_logits(
    logits: Any,
    target: Any,
    weight: Any = None,
    *,
    reduction: str = "mean",
    pos_weight: Any = None,
) -> Tensor:
    """-[t log s(x) + (1 - t) log(1 - s(x))] computed as softplus(x) - t x (never overflows).

    Its gradient is sigmoid(x) - t. `weight` scales each element and `pos_weight` the
    positive term, as PyTorch's.
    """
    if weight is not None or pos_weight is not None:
        return bce_with_logits_general(logits, target, weight, pos_weight, reduction)
    x = C._t(logits)
    _same_shape(x, target, "binary_cross_entropy_with_logits")
    return _reduce(softplus(x) - x * target, reduction, "binary_cross_entropy_with_logits")


# torch's mode names -> numpy.pad's, which the op table's pad entry takes
_TORCH_PAD_MODES = {
    "constant": "constant",
    "reflect": "reflect",
    "replicate": "edge",
    "circular": "wrap",
}


def pad(input: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Tensor:
    """torch.nn.functional.pad: `pad` holds (before, after) pairs starting from the last axis;
    `mode` is 'constant' (with `value`), 'reflect', 'replicate' or 'circular'. A negative size
    crops, as in PyTorch. `chainrule.pad` is numpy.pad (pairs from the first axis), on the same
    op table entry.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.pad(cr.tensor([1.0, 2.0, 3.0]), (2, 1), mode="reflect").tolist()
    [3.0, 2.0, 1.0, 2.0, 3.0, 2.0]
    >>> F.pad(cr.tensor([1.0, 2.0, 3.0]), (-1, 2), mode="circular").tolist()
    [2.0, 3.0, 2.0, 3.0]
    """
    x = C._t(input)
    flat = tuple(int(p) for p in pad)
    if mode not in _TORCH_PAD_MODES:
        raise ValueError(f"pad: mode must be one of {', '.join(_TORCH_PAD_MODES)}, got {mode!r}")
    if len(flat) % 2 or len(flat) // 2 > x.ndim:
        raise ValueError(f"pad: {len(flat)} pad sizes for a {x.ndim}-d input (give pairs)")
    pairs = [(0, 0)] * x.ndim
    for k in range(len(flat) // 2):
        pairs[x.ndim - 1 - k] = (flat[2 * k], flat[2 * k + 1])
    _check_torch_pad(x, pairs, mode)
    if mode in ("constant", "circular") and any(p < 0 for p in flat):
        # crop first, as PyTorch (reflect and replicate index the uncropped input, so there a
        # negative size just starts or ends the index range inside it)
        x = x[tuple(slice(max(-b, 0), n - max(-a, 0)) for n, (b, a) in zip(x.shape, pairs))]
        pairs = [(max(b, 0), max(a, 0)) for b, a in pairs]
    return ops.pad(
        x,
        pad_width=tuple(pairs),
        mode=_TORCH_PAD_MODES[mode],
        constant_values=0.0 if value is None else float(value),
    )


def _check_torch_pad(x: Tensor, pairs: list[tuple[int, int]], mode: str) -> None:
    """PyTorch's limits: reflect pads less than the size, circular at most the (cropped) size,
    replicate needs a non-empty dimension; no pair may crop more than the size."""
    for n, (before, after) in zip(x.shape, pairs):
        if (before, after) == (0, 0):
            continue
        kept = n + min(before, 0) + min(after, 0)  # circular wraps the cropped input
        limit = {"reflect": n - 1, "circular": kept, "replicate": None if n else 0}.get(mode)
        if limit is not None and max(before, after) > limit:
            raise ValueError(
                f"pad: {mode} padding {(before, after)} needs a dimension "
                f"larger than the padding, got size {n}"
            )
        if n + before + after < 0:
            raise ValueError(f"pad: padding {(before, after)} crops more than the size {n}")
