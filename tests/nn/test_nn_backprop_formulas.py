"""The engine's gradients for an MLP equal seed 002's layer-wise backpropagation formulas.

delta^L = y_hat - y (softmax + cross-entropy), delta^l = (W^{l+1})^T delta^{l+1} * f'(z^l),
dL/dW^l = delta^l (a^{l-1})^T, dL/db^l = delta^l; here in row form (one sample per row).
"""

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.random import manual_seed


def _three_layer_sigmoid_mlp() -> nn.Sequential:
    manual_seed(2)
    model = nn.Sequential(
        nn.Linear(5, 7), nn.Sigmoid(), nn.Linear(7, 6), nn.Sigmoid(), nn.Linear(6, 4)
    )
    for p in model.parameters():  # float64 so the comparison is tight
        p.data = p.data.astype(np.float64)
    return model


def _by_hand(Ws, bs, X, Y):
    a, zs, acts = X, [], [X]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        z = a @ W.T + b
        zs.append(z)
        a = 1 / (1 + np.exp(-z)) if i < len(Ws) - 1 else z
        acts.append(a)
    y_hat = np.exp(a - a.max(1, keepdims=True))
    y_hat /= y_hat.sum(1, keepdims=True)
    delta = (y_hat - Y) / len(X)  # delta^L = y_hat - y, averaged over the batch
    grads = []
    for layer in range(len(Ws) - 1, -1, -1):
        grads.append((delta.T @ acts[layer], delta.sum(0)))  # dL/dW = delta a^T, dL/db = delta
        if layer:
            s = acts[layer]  # f'(z) = s (1 - s) for the sigmoid
            delta = (delta @ Ws[layer]) * s * (1 - s)  # (W^{l+1})^T delta^{l+1} * f'(z^l)
    return grads[::-1]


def test_engine_gradients_equal_layerwise_formulas(rng):
    model = _three_layer_sigmoid_mlp()
    X = rng.normal(size=(9, 5))
    labels = rng.integers(0, 4, size=9)
    loss = nn.CrossEntropyLoss()(model(cr.tensor(X)), labels)
    loss.backward()
    linears = [m for m in model if isinstance(m, nn.Linear)]
    expected = _by_hand(
        [m.weight.data for m in linears], [m.bias.data for m in linears], X, np.eye(4)[labels]
    )
    for layer, (dW, db) in zip(linears, expected):
        np.testing.assert_allclose(layer.weight.grad.data, dW, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(layer.bias.grad.data, db, rtol=1e-10, atol=1e-12)


def test_output_delta_is_softmax_minus_onehot(rng):
    z = cr.tensor(rng.normal(size=(3, 4)), requires_grad=True)
    z.retain_grad()
    labels = np.array([0, 3, 1])
    nn.CrossEntropyLoss(reduction="sum")(z, labels).backward()
    np.testing.assert_allclose(z.grad.data, cr.softmax(z).data - np.eye(4)[labels], atol=1e-12)


def test_seed_003_worked_two_layer_network():
    # x=1, w1=0.5, b1=0.2, w2=0.8, b2=0.1, t=0.9, sigmoid twice, L = 0.5 (a2 - t)^2
    l1, l2 = nn.Linear(1, 1), nn.Linear(1, 1)
    for layer, w, b in [(l1, 0.5, 0.2), (l2, 0.8, 0.1)]:
        layer.weight.data[...] = w
        layer.bias.data[...] = b
    a2 = nn.Sigmoid()(l2(nn.Sigmoid()(l1(cr.tensor([[1.0]])))))
    loss = 0.5 * nn.MSELoss(reduction="sum")(a2, cr.tensor([[0.9]]))
    loss.backward()
    assert round(loss.item(), 3) == 0.030
    assert round(l2.weight.grad.item(), 3) == -0.037
    assert round(l2.bias.grad.item(), 3) == -0.056
    assert round(l1.weight.grad.item(), 3) == -0.010
    assert round(l1.bias.grad.item(), 3) == -0.010
