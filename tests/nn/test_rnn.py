"""Embedding and recurrent layers against PyTorch (every option: layers, directions,
batch_first, given initial states, unbatched input), and the cells gradchecked to order 2."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

F64 = {"dtype": np.float64}
# (layer name, constructor arguments, input shape); the same arguments build torch's layer
CASES = [
    ("RNNCell", (3, 4), {}, (2, 3)),
    ("RNNCell", (3, 4), {"nonlinearity": "relu", "bias": False}, (3,)),
    ("GRUCell", (3, 5), {}, (2, 3)),
    ("LSTMCell", (2, 3), {}, (4, 2)),
    ("LSTMCell", (2, 3), {"bias": False}, (2,)),
    ("RNN", (3, 4), {}, (5, 2, 3)),
    ("RNN", (3, 4), {"num_layers": 2, "nonlinearity": "relu", "bidirectional": True}, (4, 2, 3)),
    ("RNN", (2, 3), {"batch_first": True, "bias": False}, (2, 5, 2)),
    ("GRU", (1, 6), {"batch_first": True, "bidirectional": True}, (3, 7, 1)),
    ("GRU", (3, 4), {"num_layers": 3}, (4, 2, 3)),
    ("GRU", (3, 4), {"num_layers": 2, "bidirectional": True}, (6, 3)),  # unbatched
    ("LSTM", (3, 4), {}, (5, 2, 3)),
    ("LSTM", (3, 2), {"num_layers": 2, "bidirectional": True, "batch_first": True}, (2, 4, 3)),
    ("LSTM", (2, 3), {"num_layers": 2}, (4, 2)),  # unbatched
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), CASES, ids=str)
def test_recurrent_layer_matches_torch(name, args, kwargs, shape, rng, same_as_torch) -> None:
    torch = pytest.importorskip("torch")
    layer = getattr(nn, name)(*args, **kwargs, **F64)
    same_as_torch(layer, getattr(torch.nn, name)(*args, **kwargs), rng.standard_normal(shape))


def _with_state(base, kind):
    """A wrapper that feeds the layer an initial state given as separate inputs."""

    class WithState(base):
        def __init__(self, inner):
            super().__init__()
            self.m = inner

        def forward(self, x, h, c=None):
            return self.m(x, h if kind != "LSTM" else (h, c))

    return WithState


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "x_shape", "h_shape"),
    [
        ("GRU", (3, 4), {"num_layers": 2, "bidirectional": True}, (5, 2, 3), (4, 2, 4)),
        ("RNN", (3, 4), {"batch_first": True}, (2, 5, 3), (1, 2, 4)),
        ("LSTM", (3, 4), {"num_layers": 2}, (5, 2, 3), (2, 2, 4)),
        ("LSTM", (3, 4), {"bidirectional": True}, (5, 3), (2, 4)),  # unbatched
        ("GRUCell", (3, 4), {}, (2, 3), (2, 4)),
        ("LSTMCell", (3, 4), {}, (2, 3), (2, 4)),
    ],
)
def test_given_initial_state_matches_torch(
    name, args, kwargs, x_shape, h_shape, rng, same_as_torch
) -> None:
    torch = pytest.importorskip("torch")
    kind = name.removesuffix("Cell")
    layer = _with_state(nn.Module, kind)(getattr(nn, name)(*args, **kwargs, **F64))
    twin = _with_state(torch.nn.Module, kind)(getattr(torch.nn, name)(*args, **kwargs))
    states = [rng.standard_normal(h_shape) for _ in range(2 if kind == "LSTM" else 1)]
    same_as_torch(layer, twin, rng.standard_normal(x_shape), *states)


def test_dropout_between_layers_only_in_training(rng) -> None:
    gru = nn.GRU(3, 4, num_layers=2, dropout=0.5, dtype=np.float64)
    x = cr.tensor(rng.standard_normal((5, 2, 3)))
    cr.manual_seed(1)
    a = gru(x)[0].data
    cr.manual_seed(2)
    b = gru(x)[0].data
    assert not np.allclose(a, b)  # a different mask between the layers
    gru.eval()
    np.testing.assert_array_equal(gru(x)[0].data, gru(x)[0].data)


@pytest.mark.parametrize(
    ("padding_idx", "indices"),
    [(None, [[1, 4, 4], [0, 2, 3]]), (2, [[2, 1], [2, 4]]), (-1, [4, 0])],
)
def test_embedding_matches_torch(padding_idx, indices, rng, same_as_torch) -> None:
    torch = pytest.importorskip("torch")
    layer = nn.Embedding(5, 3, padding_idx=padding_idx, dtype=np.float64)
    same_as_torch(layer, torch.nn.Embedding(5, 3, padding_idx=padding_idx), np.array(indices))


@pytest.mark.parametrize("kind", ["RNNCell", "GRUCell", "LSTMCell"])
def test_cells_gradcheck_order_2(kind, rng) -> None:
    cell = getattr(nn, kind)(2, 3, dtype=np.float64)

    def f(x, h):
        out = cell(x, (h, h * h) if kind == "LSTMCell" else h)
        return out[0] * out[1] if kind == "LSTMCell" else out

    assert cr.gradcheck(f, [rng.standard_normal((2, 2)), rng.standard_normal((2, 3))], order=2)


def test_bptt_gradcheck_through_a_bidirectional_gru(rng) -> None:
    gru = nn.GRU(2, 3, num_layers=2, bidirectional=True, dtype=np.float64)
    assert cr.gradcheck(lambda x: gru(x)[0], [rng.standard_normal((4, 2, 2))])


@pytest.mark.parametrize(
    ("call", "message", "error"),
    [
        (
            lambda: nn.GRU(3, 4)(cr.ones(5, 2, 2)),
            "input \\(L, N, 3\\).*got shape \\(5, 2, 2\\)",
            ValueError,
        ),
        (
            lambda: nn.LSTM(3, 4)(cr.ones(5, 2, 3), (cr.ones(1, 2, 4), cr.ones(2, 2, 4))),
            "expected \\(1, 2, 4\\)",
            ValueError,
        ),
        (lambda: nn.RNN(3, 4, nonlinearity="gelu"), "'tanh' or 'relu'", ValueError),
        (lambda: nn.GRUCell(3, 4)(cr.ones(2, 3), cr.ones(2, 5)), "expected \\(2, 4\\)", ValueError),
        (lambda: nn.Embedding(4, 2)([0, 4]), "index 4 is out of range for 4", IndexError),
        (lambda: nn.Embedding(4, 2)(cr.tensor([0.0])), "must be integers", TypeError),
        (lambda: nn.Embedding(4, 2, padding_idx=4), "padding_idx 4", ValueError),
    ],
)
def test_bad_recurrent_input_is_named(call, message, error) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_stacked_layers_never_slice_a_tensor_that_requires_grad(name, bidirectional) -> None:
    """Backward through a stacked recurrent layer stays linear in the sequence length: no
    step slices x[t] out of a stacked tensor that requires grad (each such slice scatters a
    full-size gradient in backward). Slices of one step's (N, features) gates are fine; the
    only (L, N, features) tensor sliced is the input, which does not require grad here."""
    from chainrule.backward import toposort

    layer = getattr(nn, name)(2, 3, num_layers=3, bidirectional=bidirectional)
    out, _ = layer(cr.tensor(np.ones((6, 2, 2), np.float32)))
    slicing = [
        n
        for n in toposort([out])
        if n._op is not None
        and n._op.name == "getitem"
        and any(isinstance(p, cr.Tensor) and p.requires_grad and p.ndim == 3 for p in n._parents)
    ]
    assert slicing == []
