"""Normalisation and channel-dropout layers against PyTorch (train and eval, running
statistics, buffers in state_dict), and their gradients checked to order 2."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn

F64 = {"dtype": np.float64}
# (layer name, constructor arguments, input shape, mode); the same arguments build torch's layer
CASES = [
    ("BatchNorm1d", (3,), {}, (5, 3), "train"),
    ("BatchNorm1d", (3,), {"momentum": 0.3, "affine": False}, (4, 3, 6), "train"),
    ("BatchNorm1d", (2,), {"momentum": None}, (4, 2, 3), "train"),
    ("BatchNorm1d", (3,), {}, (4, 3, 5), "eval"),
    ("BatchNorm1d", (3,), {"track_running_stats": False}, (4, 3, 5), "eval"),
    ("BatchNorm2d", (2,), {"eps": 1e-3}, (3, 2, 4, 5), "train"),
    ("BatchNorm2d", (2,), {}, (3, 2, 4, 5), "eval"),
    ("GroupNorm", (2, 4), {}, (3, 4, 5), "train"),
    ("GroupNorm", (3, 6), {"affine": False, "eps": 1e-3}, (2, 6, 2, 3), "train"),
    ("GroupNorm", (1, 3), {}, (2, 3), "train"),
    ("LayerNorm", ((4, 5),), {}, (3, 4, 5), "train"),
    ("LayerNorm", (5,), {"elementwise_affine": False}, (2, 3, 5), "train"),
]


@pytest.mark.parametrize(("name", "args", "kwargs", "shape", "mode"), CASES, ids=str)
def test_normalization_layer_matches_torch(
    name, args, kwargs, shape, mode, rng, same_as_torch
) -> None:
    torch = pytest.importorskip("torch")
    layer = getattr(nn, name)(*args, **kwargs, **F64)
    twin = getattr(torch.nn, name)(*args, **kwargs).double()
    for p in layer.parameters():  # weights away from 1 and 0, so the affine part is tested
        p.data[...] = rng.standard_normal(p.shape)
    if mode == "eval":  # a few training steps on both, so the running statistics matter
        twin.load_state_dict({k: torch.tensor(v.data) for k, v in layer.state_dict().items()})
        for _ in range(3):
            x = rng.standard_normal(shape) * 2 + 1
            layer(cr.tensor(x))
            twin(torch.tensor(x))
        layer.eval()
        twin.eval()
    same_as_torch(layer, twin, rng.standard_normal(shape) * 3 - 1)


def test_batchnorm_buffers_are_saved_and_restored() -> None:
    bn = nn.BatchNorm2d(2)
    bn(cr.tensor(np.arange(48.0).reshape(3, 2, 2, 4)))
    state = {k: v.data.copy() for k, v in bn.state_dict().items()}
    assert sorted(state) == ["bias", "num_batches_tracked", "running_mean", "running_var", "weight"]
    assert int(state["num_batches_tracked"]) == 1 and state["running_mean"].tolist() != [0, 0]
    fresh = nn.BatchNorm2d(2)
    fresh.load_state_dict(state)
    np.testing.assert_array_equal(fresh.running_var.data, state["running_var"])


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.BatchNorm1d(3, dtype=np.float64),
        lambda: nn.GroupNorm(2, 4, dtype=np.float64),
    ],
)
def test_normalization_gradcheck_order_2(make, rng) -> None:
    layer = make()
    x = rng.standard_normal((4, layer.weight.shape[0], 3))
    assert cr.gradcheck(lambda x: layer(x) * layer(x), [x], order=2)


@pytest.mark.parametrize(
    ("name", "shape"), [("Dropout1d", (50, 40, 6)), ("Dropout2d", (40, 50, 3, 2))]
)
def test_channel_dropout_zeroes_whole_channels(name, shape) -> None:
    cr.manual_seed(0)
    drop = getattr(nn, name)(0.3)
    y = drop(cr.ones(*shape)).data
    per_channel = y.reshape(shape[0], shape[1], -1)
    assert np.all(per_channel.min(-1) == per_channel.max(-1))  # a channel is kept or dropped whole
    np.testing.assert_allclose(np.unique(y), [0.0, 1 / 0.7], rtol=1e-6)
    assert abs((per_channel[..., 0] == 0).mean() - 0.3) < 0.05
    assert np.array_equal(drop.eval()(cr.ones(*shape)).data, np.ones(shape))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: nn.BatchNorm1d(3)(cr.ones(4, 2)),
            "3 channels in dimension 1, got shape \\(4, 2\\)",
        ),
        (lambda: nn.BatchNorm2d(3)(cr.ones(4, 3, 2)), "4-D input"),
        (lambda: nn.BatchNorm1d(3)(cr.ones(1, 3)), "more than 1 value per channel"),
        (lambda: nn.GroupNorm(3, 4), "divisible by num_groups 3"),
        (lambda: nn.Dropout2d(0.5)(cr.ones(4, 3)), "4-D .* or 3-D unbatched"),
    ],
)
def test_bad_normalization_input_is_named(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()
