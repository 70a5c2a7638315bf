"""Module registration, state dicts, modes, layers, initialisation and losses."""

import math

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F
from chainrule.random import manual_seed


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5))
        self.head = nn.Linear(8, 3)
        self.scale = 2.0  # a plain attribute is not a parameter

    def forward(self, x):
        return self.head(self.body(x)) * self.scale


def test_nested_modules_and_parameters_are_registered():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["body.0.weight", "body.0.bias", "head.weight", "head.bias"]
    assert net.num_parameters() == 4 * 8 + 8 + 8 * 3 + 3
    assert [n for n, _ in net.named_modules()] == ["", "body", "body.0", "body.1", "body.2", "head"]
    assert all(isinstance(p, nn.Parameter) and isinstance(p, cr.Tensor) for p in net.parameters())


def test_shared_parameter_is_listed_once():
    a = nn.Linear(3, 3)
    seq = nn.Sequential(a, a)
    assert len(list(seq.parameters())) == 2


def test_reassigning_an_attribute_unregisters_it():
    net = Net()
    net.head = None
    assert "head.weight" not in dict(net.named_parameters())


def test_assignment_before_init_is_a_clear_error():
    class Bad(nn.Module):
        def __init__(self):
            self.layer = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match="super"):
        Bad()


def test_repr_is_pytorch_like():
    assert repr(Net()) == (
        "Net(\n"
        "  (body): Sequential(\n"
        "    (0): Linear(in_features=4, out_features=8, bias=True)\n"
        "    (1): ReLU()\n"
        "    (2): Dropout(p=0.5)\n"
        "  )\n"
        "  (head): Linear(in_features=8, out_features=3, bias=True)\n"
        ")"
    )


def test_train_eval_propagate_and_dropout_follows_them():
    net = Net().eval()
    assert not any(m.training for m in net.modules())
    x = cr.ones(2, 4)
    np.testing.assert_array_equal(net(x).data, net(x).data)  # deterministic in eval
    net.train()
    assert all(m.training for m in net.modules())


def test_dropout_keeps_the_expectation():
    manual_seed(0)
    y = nn.Dropout(0.25)(cr.ones(200_000)).data
    assert set(np.unique(y).tolist()) == {0.0, np.float32(1 / 0.75)}
    assert abs((y == 0).mean() - 0.25) < 0.01
    assert abs(y.mean() - 1.0) < 0.01


def test_state_dict_round_trip_and_zero_grad():
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (na, pa), (nb, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert na == nb and pa is not pb
        np.testing.assert_array_equal(pa.data, pb.data)
    F.mse_loss(a.eval()(cr.ones(1, 4)), cr.zeros(1, 3)).backward()
    assert all(p.grad is not None for p in a.parameters())
    a.zero_grad()
    assert all(p.grad is None for p in a.parameters())


def test_load_state_dict_names_mismatching_keys_and_shapes():
    small = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    other = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3))
    with pytest.raises(ValueError, match=r"0\.weight: checkpoint \(16, 4\) vs model \(8, 4\)"):
        small.load_state_dict(other.state_dict())
    deeper = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.Linear(3, 3))
    with pytest.raises(ValueError, match=r"unexpected keys \['3\.weight', '3\.bias'\]"):
        small.load_state_dict(deeper.state_dict())
    before = small[0].weight.data.copy()
    with pytest.raises(ValueError, match=r"missing keys \['2\.weight', '2\.bias'\]"):
        small.load_state_dict({"0.weight": np.zeros((8, 4)), "0.bias": np.zeros(8)})
    np.testing.assert_array_equal(small[0].weight.data, before)  # nothing half-loaded


def test_linear_default_init_matches_pytorch_bounds():
    manual_seed(0)
    layer = nn.Linear(100, 50)
    bound = 1 / math.sqrt(100)
    for p in (layer.weight, layer.bias):
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.9 * bound  # really uniform over the whole range
    assert layer.weight.dtype == np.float32


def test_linear_names_expected_and_given_features():
    with pytest.raises(ValueError, match=r"expected input with 3 features.*shape \(2, 5\)"):
        nn.Linear(3, 2)(cr.ones(2, 5))


def test_linear_without_bias():
    layer = nn.Linear(3, 2, bias=False)
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert "bias=False" in repr(layer)


def test_manual_seed_makes_init_identical():
    manual_seed(7)
    a = nn.Linear(5, 5).weight.data.copy()
    manual_seed(7)
    np.testing.assert_array_equal(a, nn.Linear(5, 5).weight.data)


def test_layernorm_normalises_and_passes_gradcheck(rng):
    ln = nn.LayerNorm(6)
    for p in ln.parameters():
        p.data = rng.normal(size=p.shape)
    x = cr.tensor(rng.normal(size=(3, 6)))
    y = nn.LayerNorm(6)(x).data
    np.testing.assert_allclose(y.mean(-1), 0, atol=1e-6)
    np.testing.assert_allclose(y.var(-1), 1, atol=1e-3)
    cr.gradcheck(lambda t: ln(t), [x])
    with pytest.raises(ValueError, match=r"last dimensions are \(6,\)"):
        ln(cr.ones(3, 5))


@pytest.mark.parametrize(
    ("module", "function"),
    [
        (nn.Sigmoid(), cr.sigmoid),
        (nn.Tanh(), cr.tanh),
        (nn.ReLU(), cr.relu),
        (nn.LeakyReLU(0.2), lambda x: cr.leaky_relu(x, 0.2)),
        (nn.GELU(), cr.gelu),
        (nn.Softmax(dim=1), lambda x: cr.softmax(x, axis=1)),
    ],
    ids=lambda m: type(m).__name__,
)
def test_activation_modules_match_functions(module, function, rng):
    x = cr.tensor(rng.normal(size=(4, 5)))
    np.testing.assert_array_equal(module(x).data, function(x).data)


def test_losses_match_functional_and_reject_bad_labels(rng):
    z = cr.tensor(rng.normal(size=(4, 3)))
    y = np.array([0, 2, 1, 2])
    assert nn.CrossEntropyLoss()(z, y).item() == F.cross_entropy(z, y).item()
    assert nn.CrossEntropyLoss(reduction="sum")(z, y).shape == ()
    t = cr.tensor(rng.uniform(size=(4, 3)))
    assert nn.MSELoss()(z, t).item() == pytest.approx(np.mean((z.data - t.data) ** 2))
    bce = nn.BCEWithLogitsLoss()(z, t).item()
    s = 1 / (1 + np.exp(-z.data))
    assert bce == pytest.approx(np.mean(-(t.data * np.log(s) + (1 - t.data) * np.log(1 - s))))
    with pytest.raises(ValueError, match="label 3 is out of range for 3 classes"):
        nn.CrossEntropyLoss()(z, np.array([0, 3, 1, 2]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        nn.MSELoss(reduction="avg")
