"""Hand-written NumPy backprop (no autodiff): the floor every engine is measured against.

Owns the textbook implementations of W1/W2 (an MLP with ReLU, softmax cross-entropy and SGD)
and of W4 (micrograd's demo loss: hinge loss plus L2 on an MLP 2-16-16-1). They follow the
seeds' formulas, written for a batch stored as rows (x @ W rather than W x):

    delta_L = (softmax(z_L) - onehot(y)) / N          # seed 002: dL/dz of softmax + CE
    delta_l = (delta_{l+1} @ W_{l+1}^T) * f'(z_l)     # delta_l = (W^{l+1})^T delta^{l+1} * f'(z^l)
    dW_l = a_{l-1}^T @ delta_l,  db_l = sum_rows(delta_l)   # dW = delta a^T
"""

from __future__ import annotations

import numpy as np


class NumpyMLP:
    """MLP with ReLU hidden layers trained by SGD on softmax cross-entropy, by hand.

    `params` is a list of (W, b) with W of shape (fan_in, fan_out); arrays are copied.
    """

    def __init__(self, params: list[tuple[np.ndarray, np.ndarray]], lr: float) -> None:
        self.params = [(w.copy(), b.copy()) for w, b in params]
        self.lr = np.float32(lr)

    def step(self, x: np.ndarray, y: np.ndarray) -> float:
        """One SGD step on the batch (x, y); returns the mean loss before the update."""
        acts = [x]
        for i, (w, b) in enumerate(self.params):
            z = acts[-1] @ w + b
            acts.append(np.maximum(z, 0) if i < len(self.params) - 1 else z)
        logits = acts.pop()
        shifted = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(shifted)
        s = e.sum(axis=1, keepdims=True)
        n = x.shape[0]
        rows = np.arange(n)
        loss = float(np.mean(np.log(s[:, 0]) - shifted[rows, y]))
        delta = e / s  # softmax
        delta[rows, y] -= 1
        delta /= n
        for i in range(len(self.params) - 1, -1, -1):
            w, b = self.params[i]
            a = acts[i]
            dw = a.T @ delta
            db = delta.sum(axis=0)
            if i > 0:
                delta = delta @ w.T
                delta *= a > 0  # relu'(z) = [z > 0] = [a > 0]
            w -= self.lr * dw
            b -= self.lr * db
        return loss

    def weights(self) -> list[np.ndarray]:
        return [a for wb in self.params for a in wb]


def scalar_mlp_loss_and_grads(
    params: list[tuple[np.ndarray, np.ndarray]], x: np.ndarray, y: np.ndarray, alpha: float
) -> tuple[float, list[np.ndarray]]:
    """micrograd's demo loss, mean(relu(1 - y * score)) + alpha * sum(p^2), and its gradient.

    `y` holds labels -1/+1; the network is ReLU hidden layers and a linear output of size 1.
    """
    acts = [x]
    for i, (w, b) in enumerate(params):
        z = acts[-1] @ w + b
        acts.append(np.maximum(z, 0) if i < len(params) - 1 else z)
    score = acts.pop()[:, 0]
    margin = 1 - y * score
    n = x.shape[0]
    loss = float(np.maximum(margin, 0).mean()) + alpha * sum(
        float((w * w).sum() + (b * b).sum()) for w, b in params
    )
    delta = (-(y * (margin > 0)) / n)[:, None].astype(x.dtype)  # d mean(relu(m)) / d score
    grads: list[np.ndarray] = []
    for i in range(len(params) - 1, -1, -1):
        w, b = params[i]
        a = acts[i]
        grads[:0] = [a.T @ delta + 2 * alpha * w, delta.sum(axis=0) + 2 * alpha * b]
        if i > 0:
            delta = (delta @ w.T) * (a > 0)
    return loss, grads
