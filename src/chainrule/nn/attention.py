"""Attention: `scaled_dot_product_attention`, `MultiheadAttention` and a transformer encoder
layer, as PyTorch defines them.

Composed from op-table primitives (matmul, softmax, where): masked scores are set to -inf
before the softmax, so their weights are exactly 0 and they get no gradient.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule import random as _random
from chainrule.errors import OpError
from chainrule.nn import init
from chainrule.nn.layers import Dropout, LayerNorm, Linear
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.tensor import Tensor

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "scaled_dot_product_attention"]


def _dropout(p: Tensor, rate: float) -> Tensor:
    if not rate:
        return p
    keep = _random.generator().random(p.shape) >= rate
    return p * (keep / (1 - rate) if rate < 1 else keep * 0).astype(p.dtype)


def _scores(q: Tensor, k: Tensor, scale: float | None) -> Tensor:
    s = 1 / math.sqrt(q.shape[-1]) if scale is None else scale
    return C.matmul(q, C.swapaxes(k, -1, -2)) * q.dtype.type(s)


def scaled_dot_product_attention(
    query: Any,
    key: Any,
    value: Any,
    attn_mask: Any = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(q k^T / sqrt(d) + mask) v over the last two axes, as PyTorch.

    `attn_mask` is boolean (True: may attend) or added to the scores (a float Tensor mask gets
    a gradient too); `is_causal` lets query i attend to keys 0..i only. Dropout applies to the
    weights (pass 0 in evaluation). `enable_gqa` shares each key/value head among a group of
    query heads (axis -3), as PyTorch's grouped-query attention.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> q = k = v = cr.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> F.scaled_dot_product_attention(q, k, v, is_causal=True).data[0].tolist()
    [1.0, 0.0]
    """
    q, k, v = C._t(query), C._t(key), C._t(value)
    if q.ndim < 2 or q.shape[-1] != k.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"scaled_dot_product_attention: query {q.shape}, key {k.shape} and value "
            f"{v.shape} do not fit (need q (..., L, E), k (..., S, E), v (..., S, Ev))"
        )
    if enable_gqa and q.ndim >= 3 and k.ndim >= 3 and q.shape[-3] != k.shape[-3]:
        hq, hk = q.shape[-3], k.shape[-3]
        if hk == 0 or hq % hk or k.shape[-3] != v.shape[-3]:
            raise ValueError(
                f"scaled_dot_product_attention: {hq} query heads cannot share {hk} key and "
                f"{v.shape[-3]} value heads (enable_gqa needs a multiple)"
            )
        k, v = (C.repeat_interleave(t, hq // hk, axis=-3) for t in (k, v))
    scores = _scores(q, k, scale)
    allowed = None
    if is_causal:
        if attn_mask is not None:
            raise OpError("scaled_dot_product_attention: give attn_mask or is_causal, not both")
        allowed = np.tril(np.ones(scores.shape[-2:], dtype=bool))
    elif attn_mask is not None:
        m = np.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
        if m.dtype == bool:
            allowed = m
        elif isinstance(attn_mask, Tensor):
            scores = scores + C.astype(attn_mask, scores.dtype)
        else:
            scores = scores + m.astype(scores.dtype)
    if allowed is not None:
        scores = C.where(allowed, scores, -np.inf)
    weights = _dropout(C.softmax(scores, axis=-1), dropout_p)
    return C.matmul(weights, v)


def _per_head(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A (L, S) mask as is (it broadcasts); an (N * heads, L, S) one as (N, heads, L, S)."""
    return mask if mask.ndim == 2 else mask.reshape(shape)


class MultiheadAttention(Module):
    """PyTorch's MultiheadAttention: projections in_proj_weight (3E, E) and out_proj, heads of
    size E / num_heads; returns (output, weights averaged over heads or None).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> mha = nn.MultiheadAttention(8, 2, batch_first=True)
    >>> out, w = mha(cr.ones(3, 5, 8), cr.ones(3, 5, 8), cr.ones(3, 5, 8))
    >>> out.shape, w.shape
    ((3, 5, 8), (3, 5, 5))
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if num_heads < 1 or embed_dim % num_heads:
            raise ValueError(
                f"MultiheadAttention: embed_dim {embed_dim} must be divisible by num_heads "
                f"{num_heads}"
            )
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, float(dropout)
        self.batch_first = batch_first
        self.in_proj_weight = Parameter(np.empty((3 * embed_dim, embed_dim), dtype=dtype))
        init.xavier_uniform_(self.in_proj_weight)
        self.in_proj_bias: Parameter | None
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype=dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if bias:  # PyTorch zeroes the output bias and keeps Linear's weight init
            assert self.out_proj.bias is not None  # set by Linear(bias=True)
            self.out_proj.bias.data[...] = 0

    def forward(
        self,
        query: Any,
        key: Any,
        value: Any,
        key_padding_mask: Any = None,
        need_weights: bool = True,
        attn_mask: Any = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        q, k, v = C._t(query), C._t(key), C._t(value)
        e, h = self.embed_dim, self.num_heads
        if q.ndim not in (2, 3) or q.shape[-1] != e or k.shape != v.shape or k.shape[-1] != e:
            raise ValueError(
                f"MultiheadAttention: query {q.shape}, key {k.shape} and value {v.shape} must "
                f"end in embed_dim {e} (key and value alike)"
            )
        unbatched = q.ndim == 2
        if unbatched:
            q, k, v = (C.expand_dims(t, 0) for t in (q, k, v))
        elif not self.batch_first:  # (L, N, E) -> (N, L, E)
            q, k, v = (C.swapaxes(t, 0, 1) for t in (q, k, v))
        w, b = self.in_proj_weight, self.in_proj_bias
        parts = [
            C.linear(t, w[i * e : (i + 1) * e], None if b is None else b[i * e : (i + 1) * e])
            for i, t in enumerate((q, k, v))
        ]
        n = q.shape[0]
        # (N, L, E) -> (N, heads, L, E / heads)
        qh, kh, vh = (C.swapaxes(C.reshape(t, (n, t.shape[1], h, e // h)), 1, 2) for t in parts)
        scores = _scores(qh, kh, None)
        if attn_mask is not None:
            m = np.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
            if m.dtype != bool:  # a float mask is added to the scores
                scores = scores + _per_head(m, scores.shape).astype(scores.dtype)
        allowed = self._allowed(attn_mask, key_padding_mask, is_causal, scores.shape, unbatched)
        if allowed is not None:
            scores = C.where(allowed, scores, -np.inf)
        weights = C.softmax(scores, axis=-1)
        out = C.matmul(_dropout(weights, self.dropout if self.training else 0.0), vh)
        out = self.out_proj(C.reshape(C.swapaxes(out, 1, 2), (n, q.shape[1], e)))
        if unbatched:
            out = C.squeeze(out, 0)
        elif not self.batch_first:
            out = C.swapaxes(out, 0, 1)
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = C.mean(weights, axis=1)
        return out, (C.squeeze(weights, 0) if unbatched else weights)

    def _allowed(
        self,
        attn_mask: Any,
        key_padding_mask: Any,
        is_causal: bool,
        shape: tuple[int, ...],
        unbatched: bool,
    ) -> np.ndarray | None:
        """Where a query may attend (broadcast to (N, heads, L, S)); None: no boolean mask.

        PyTorch's masks here mean the opposite of SDPA's: True marks a key to leave out.
        """
        n, _, length, source = shape
        allowed = np.ones(shape, dtype=bool)
        used = False
        if is_causal and attn_mask is None:
            allowed &= np.tril(np.ones((length, source), dtype=bool))
            used = True
        if attn_mask is not None:
            m = np.asarray(attn_mask.data if isinstance(attn_mask, Tensor) else attn_mask)
            if m.dtype == bool:
                allowed &= ~_per_head(m, shape)
                used = True
        if key_padding_mask is not None:
            kp = np.asarray(
                key_padding_mask.data if isinstance(key_padding_mask, Tensor) else key_padding_mask
            )
            allowed &= ~kp.astype(bool).reshape(n if not unbatched else 1, 1, 1, source)
            used = True
        return allowed if used else None

    def extra_repr(self) -> str:
        e, h = self.embed_dim, self.num_heads
        return f"embed_dim={e}, num_heads={h}, batch_first={self.batch_first}"


class TransformerEncoderLayer(Module):
    """Self-attention then a feed-forward block, each with a residual and a LayerNorm (after
    the residual, or before the block with norm_first), PyTorch's layer and parameter names.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True)
    >>> layer(cr.ones(3, 5, 8)).shape
    (3, 5, 8)
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Any = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        acts = {"relu": C.relu, "gelu": C.gelu}
        if isinstance(activation, str) and activation not in acts:
            raise ValueError(
                f"TransformerEncoderLayer: activation must be 'relu' or 'gelu' or a "
                f"callable, got {activation!r}"
            )
        self.activation = acts[activation] if isinstance(activation, str) else activation
        self.norm_first = norm_first
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype
        )
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias, dtype=dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias, dtype=dtype)
        self.norm1 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.norm2 = LayerNorm(d_model, eps=layer_norm_eps, dtype=dtype)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(
        self,
        src: Any,
        src_mask: Any = None,
        src_key_padding_mask: Any = None,
        is_causal: bool = False,
    ) -> Tensor:
        x = C._t(src)

        def attend(h: Tensor) -> Tensor:
            out = self.self_attn(
                h,
                h,
                h,
                key_padding_mask=src_key_padding_mask,
                need_weights=False,
                attn_mask=src_mask,
                is_causal=is_causal,
            )[0]
            return self.dropout1(out)

        def feed_forward(h: Tensor) -> Tensor:
            return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(h)))))

        if self.norm_first:
            x = x + attend(self.norm1(x))
            return x + feed_forward(self.norm2(x))
        x = self.norm1(x + attend(x))
        return self.norm2(x + feed_forward(x))
