"""Embedding and recurrent layers: RNN, GRU, LSTM and their cells, as PyTorch defines them.

Each cell's update is one function (`_rnn_step`, `_gru_step`, `_lstm_step`) used by the cell
Module and, once per time step, by the sequence Module; backpropagation through time is the
engine's reverse sweep over that unrolled graph. The GRU's gate arithmetic is one fused
primitive (`ops.gru_cell`, for speed); the RNN and LSTM cells are composed. Each step projects
its own input x[t] W_ih^T + b_ih: slicing a precomputed projection of the whole sequence costs
a full-size gradient scatter per step in backward (measured slower on MNIST-1D); for the same
reason stacked layers hand each other lists of steps, not a stacked tensor.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule import composite as C
from chainrule import ops
from chainrule import random as _random
from chainrule.nn import init
from chainrule.nn.module import Module
from chainrule.nn.parameter import Parameter
from chainrule.tensor import Tensor, apply

__all__ = ["GRU", "LSTM", "RNN", "Embedding", "GRUCell", "LSTMCell", "RNNCell", "embedding"]

State = Any  # h, or (h, c) for the LSTM


def embedding(input: Any, weight: Any, padding_idx: int | None = None) -> Tensor:
    """Rows of `weight` picked by integer `input`; the padding row gets no gradient.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule.nn import functional as F
    >>> F.embedding([2, 0], cr.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]])).tolist()
    [[4.0, 5.0], [0.0, 1.0]]
    """
    w = C._t(weight)
    idx = np.asarray(input.data if isinstance(input, Tensor) else input)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"embedding: indices must be integers, got dtype {idx.dtype}")
    n = w.shape[0]
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        bad = idx[(idx < 0) | (idx >= n)].flat[0]
        raise IndexError(f"embedding: index {bad} is out of range for {n} embeddings")
    rows = C.getitem(w, (idx.astype(np.intp),))
    if padding_idx is None:
        return rows
    # the padding row's value passes through as a constant: PyTorch never updates it
    pad = (idx == padding_idx % n)[..., None]
    return C.where(pad, w.data[padding_idx], rows)


class Embedding(Module):
    """A lookup table of `num_embeddings` vectors, initialised N(0, 1) as PyTorch.

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> emb = nn.Embedding(10, 3, padding_idx=0)
    >>> emb([[0, 4, 9]]).shape, emb.weight.data[0].tolist()
    ((1, 3, 3), [0.0, 0.0, 0.0])
    """

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        if padding_idx is not None and not -num_embeddings <= padding_idx < num_embeddings:
            raise ValueError(
                f"Embedding: padding_idx {padding_idx} must be within num_embeddings "
                f"{num_embeddings}"
            )
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = None if padding_idx is None else padding_idx % num_embeddings
        self.weight = Parameter(np.empty((num_embeddings, embedding_dim), dtype=dtype))
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, input: Any) -> Tensor:
        return embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = "" if self.padding_idx is None else f", padding_idx={self.padding_idx}"
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"


# --------------------------------------------------------------------------- the cell updates
# gi = x W_ih^T + b_ih is computed by the caller.


def _gates(gh: Tensor, n: int, h: int) -> list[Tensor]:
    return [gh[..., i * h : (i + 1) * h] for i in range(n)]


def _rnn_step(gi: Tensor, h: Tensor, w_hh: Any, b_hh: Any, nonlinearity: str) -> Tensor:
    """h' = act(gi + h W_hh^T + b_hh), act = tanh or relu."""
    pre = gi + C.linear(h, w_hh, b_hh)
    return C.tanh(pre) if nonlinearity == "tanh" else C.relu(pre)


def _gru_step(gi: Tensor, h: Tensor, w_hh: Any, b_hh: Any, nonlinearity: str) -> Tensor:
    """r, z = s(gi + gh); n = tanh(gi_n + r * gh_n); h' = (1 - z) n + z h (PyTorch's GRU),
    one fused op (`ops.gru_cell`, a primitive for speed)."""
    return apply(ops.gru_cell, gi, C.linear(h, w_hh, b_hh), h)


def _lstm_step(gi: Tensor, hc: State, w_hh: Any, b_hh: Any, nonlinearity: str) -> State:
    """i, f, o = s(.), g = tanh(.); c' = f c + i g; h' = o tanh(c') (gate order i, f, g, o)."""
    h, c = hc
    i, f, g, o = _gates(gi + C.linear(h, w_hh, b_hh), 4, h.shape[-1])
    c = C.sigmoid(f) * c + C.sigmoid(i) * C.tanh(g)
    return C.sigmoid(o) * C.tanh(c), c


_STEPS: dict[str, tuple[int, Callable[..., State]]] = {
    "RNN": (1, _rnn_step),
    "GRU": (3, _gru_step),
    "LSTM": (4, _lstm_step),
}


def _check_nonlinearity(name: str, nonlinearity: str) -> None:
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{name}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")


def _init_uniform(module: Module, hidden_size: int) -> None:
    """Every weight and bias U(-1/sqrt(hidden_size), 1/sqrt(hidden_size)), as PyTorch."""
    bound = 1 / math.sqrt(hidden_size)
    for p in module.parameters():
        init.uniform_(p, -bound, bound)


class _CellBase(Module):
    kind = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_nonlinearity(name, nonlinearity)
        if input_size < 1 or hidden_size < 1:
            raise ValueError(f"{name}: input_size and hidden_size must be positive")
        self.input_size, self.hidden_size, self.nonlinearity = input_size, hidden_size, nonlinearity
        gates = _STEPS[self.kind][0] * hidden_size
        self.weight_ih = Parameter(np.empty((gates, input_size), dtype=dtype))
        self.weight_hh = Parameter(np.empty((gates, hidden_size), dtype=dtype))
        self.bias_ih: Parameter | None
        self.bias_hh: Parameter | None
        if bias:
            self.bias_ih = Parameter(np.empty(gates, dtype=dtype))
            self.bias_hh = Parameter(np.empty(gates, dtype=dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        _init_uniform(self, hidden_size)

    def forward(self, input: Any, hx: State = None) -> State:
        x = C._t(input)
        name = type(self).__name__
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: expected input (N, {self.input_size}) or ({self.input_size},), "
                f"got shape {x.shape}"
            )
        shape = (*x.shape[:-1], self.hidden_size)
        if hx is None:
            zeros = C.zeros(*shape, dtype=x.dtype)
            hx = (zeros, zeros) if self.kind == "LSTM" else zeros
        else:
            hx = tuple(C._t(h) for h in hx) if self.kind == "LSTM" else C._t(hx)
            for h in hx if self.kind == "LSTM" else (hx,):
                if h.shape != shape:
                    raise ValueError(f"{name}: hidden state of shape {h.shape}, expected {shape}")
        gi = C.linear(x, self.weight_ih, self.bias_ih)
        return _STEPS[self.kind][1](gi, hx, self.weight_hh, self.bias_hh, self.nonlinearity)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        s += "" if self.bias_ih is not None else ", bias=False"
        return s + ("" if self.nonlinearity == "tanh" else f", nonlinearity={self.nonlinearity}")


class RNNCell(_CellBase):
    """One step of an Elman RNN: h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> nn.RNNCell(3, 5)(cr.ones(2, 3)).shape
    (2, 5)
    """


class GRUCell(_CellBase):
    """One GRU step (PyTorch's equations and gate order r, z, n); returns h'."""

    kind = "GRU"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float32
    ) -> None:
        super().__init__(input_size, hidden_size, bias, dtype=dtype)


class LSTMCell(_CellBase):
    """One LSTM step (gate order i, f, g, o); takes and returns (h, c)."""

    kind = "LSTM"

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float32
    ) -> None:
        super().__init__(input_size, hidden_size, bias, dtype=dtype)


class _RNNBase(Module):
    kind = "RNN"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__()
        name = type(self).__name__
        _check_nonlinearity(name, nonlinearity)
        if input_size < 1 or hidden_size < 1 or num_layers < 1:
            raise ValueError(f"{name}: input_size, hidden_size and num_layers must be positive")
        if not 0.0 <= dropout <= 1.0:
            raise ValueError(f"{name}: dropout must be in [0, 1], got {dropout}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nonlinearity, self.bias, self.batch_first = nonlinearity, bias, batch_first
        self.dropout, self.bidirectional = float(dropout), bidirectional
        gates = _STEPS[self.kind][0] * hidden_size
        dirs = 2 if bidirectional else 1
        for layer in range(num_layers):
            for suffix in ("", "_reverse")[:dirs]:
                n_in = input_size if layer == 0 else hidden_size * dirs
                shapes: dict[str, tuple[int, ...]] = {
                    "weight_ih": (gates, n_in),
                    "weight_hh": (gates, hidden_size),
                }
                if bias:
                    shapes.update(bias_ih=(gates,), bias_hh=(gates,))
                for kind, shape in shapes.items():
                    p = Parameter(np.empty(shape, dtype=dtype))
                    self.register_parameter(f"{kind}_l{layer}{suffix}", p)
        _init_uniform(self, hidden_size)

    def _weights(self, layer: int, suffix: str) -> tuple[Any, ...]:
        get = self._parameters.get
        return tuple(
            get(f"{k}_l{layer}{suffix}") for k in ("weight_ih", "bias_ih", "weight_hh", "bias_hh")
        )

    def _run(
        self, xs: list[Tensor], h0: State, layer: int, suffix: str
    ) -> tuple[list[Tensor], State]:
        """One direction of one layer over a sequence of (N, in) steps: (N, H) outputs, state."""
        w_ih, b_ih, w_hh, b_hh = self._weights(layer, suffix)
        step = _STEPS[self.kind][1]
        times = range(len(xs) - 1, -1, -1) if suffix else range(len(xs))
        h, outs = h0, {}
        for t in times:  # the loop over time is the recurrence itself
            h = step(C.linear(xs[t], w_ih, b_ih), h, w_hh, b_hh, self.nonlinearity)
            outs[t] = h[0] if self.kind == "LSTM" else h
        return [outs[t] for t in range(len(xs))], h

    def forward(self, input: Any, hx: State = None) -> tuple[Tensor, State]:
        x = C._t(input)
        name = type(self).__name__
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: expected input (L, N, {self.input_size}) (batch_first: (N, L, "
                f"{self.input_size})) or unbatched (L, {self.input_size}), got shape {x.shape}"
            )
        unbatched = x.ndim == 2
        x = C.expand_dims(x, 1) if unbatched else (C.swapaxes(x, 0, 1) if self.batch_first else x)
        dirs = 2 if self.bidirectional else 1
        shape = (self.num_layers * dirs, x.shape[1], self.hidden_size)
        states = self._initial(hx, shape, unbatched, x.dtype)
        finals: list[State] = []
        # Layers pass their outputs on as a list of steps, never as one stacked tensor: a
        # layer that sliced x[t] out of a stacked input would scatter a full-size gradient
        # per step in backward, growing with the square of the sequence length.
        xs = [x[t] for t in range(x.shape[0])]
        for layer in range(self.num_layers):
            if layer and self.dropout and self.training:  # between layers, not after the last
                xs = [x_t * self._dropout_mask(x_t) for x_t in xs]
            outs = []
            for d, suffix in enumerate(("", "_reverse")[:dirs]):
                ys, h = self._run(xs, states[layer * dirs + d], layer, suffix)
                outs.append(ys)
                finals.append(h)
            if layer + 1 < self.num_layers:
                xs = outs[0] if dirs == 1 else [C.concatenate(ab, axis=-1) for ab in zip(*outs)]
        # the last layer's steps joined once: (L, N, H) per direction, directions side by side
        stacked = [C.stack(ys, axis=0) for ys in outs]
        x = stacked[0] if dirs == 1 else C.concatenate(stacked, axis=-1)
        out = C.squeeze(x, 1) if unbatched else (C.swapaxes(x, 0, 1) if self.batch_first else x)
        return out, self._final(finals, unbatched)

    def _dropout_mask(self, x_t: Tensor) -> np.ndarray:
        """One step's mask, drawn on its own (the same stream as one draw for all steps): a
        compiled step replays each draw, and an index into a shared draw would not be recorded."""
        keep = _random.generator().random(x_t.shape) >= self.dropout
        return (keep / (1 - self.dropout) if self.dropout < 1 else keep * 0).astype(x_t.dtype)

    def _initial(
        self, hx: State, shape: tuple[int, ...], unbatched: bool, dtype: Any
    ) -> list[State]:
        """Per layer and direction, the initial state: zeros, or slices of the given hx."""
        name = type(self).__name__
        lstm = self.kind == "LSTM"
        if hx is None:
            zeros = C.zeros(*shape[1:], dtype=dtype)
            return [(zeros, zeros) if lstm else zeros for _ in range(shape[0])]
        parts = [C._t(h) for h in hx] if lstm else [C._t(hx)]
        want = (shape[0], shape[2]) if unbatched else shape
        for h in parts:
            if h.shape != want:
                raise ValueError(
                    f"{name}: initial hidden state of shape {h.shape}, expected {want}"
                )
        if unbatched:
            parts = [C.expand_dims(h, 1) for h in parts]
        if lstm:
            return [(parts[0][i], parts[1][i]) for i in range(shape[0])]
        return [parts[0][i] for i in range(shape[0])]

    def _final(self, finals: list[State], unbatched: bool) -> State:
        """h_n (num_layers * directions, N, H), and c_n for the LSTM."""

        def pack(hs: list[Tensor]) -> Tensor:
            s = C.stack(hs, axis=0)
            return C.squeeze(s, 1) if unbatched else s

        if self.kind == "LSTM":
            return pack([h for h, _ in finals]), pack([c for _, c in finals])
        return pack(finals)

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        for field, default in [
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ]:
            if getattr(self, field) != default:
                s += f", {field}={getattr(self, field)}"
        return s


class RNN(_RNNBase):
    """Multi-layer Elman RNN (tanh or relu), PyTorch's arguments; returns (output, h_n).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> out, h = nn.RNN(3, 4, num_layers=2, bidirectional=True)(cr.ones(5, 2, 3))
    >>> out.shape, h.shape
    ((5, 2, 8), (4, 2, 4))
    """


class GRU(_RNNBase):
    """Multi-layer GRU, PyTorch's arguments and equations; returns (output, h_n).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> out, h = nn.GRU(1, 6, batch_first=True, bidirectional=True)(cr.ones(8, 40, 1))
    >>> out.shape, h.shape
    ((8, 40, 12), (2, 8, 6))
    """

    kind = "GRU"

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = np.float32,
    ) -> None:
        super().__init__(
            input_size,
            hidden_size,
            num_layers,
            "tanh",
            bias,
            batch_first,
            dropout,
            bidirectional,
            dtype,
        )


class LSTM(GRU):
    """Multi-layer LSTM, PyTorch's arguments; returns (output, (h_n, c_n)).

    Examples
    --------
    >>> import chainrule as cr
    >>> from chainrule import nn
    >>> out, (h, c) = nn.LSTM(3, 4)(cr.ones(5, 2, 3))
    >>> out.shape, h.shape, c.shape
    ((5, 2, 4), (1, 2, 4), (1, 2, 4))
    """

    kind = "LSTM"
