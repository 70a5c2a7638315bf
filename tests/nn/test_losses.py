"""Losses against PyTorch in float64 (values and input gradients) across their options, and
gradchecked to order 2 (all composed from op-table primitives)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

W3 = np.array([0.2, 1.0, 3.0])


def _labels(rng, shape, n=3):
    return rng.integers(0, n, size=shape)


def _probs(rng, shape):
    p = rng.uniform(0.05, 1.0, size=shape)
    return p / p.sum(axis=1, keepdims=True)


# (loss name, constructor kwargs, input maker, target maker); torch gets the same kwargs,
# with arrays turned into tensors
CASES = [
    ("CrossEntropyLoss", {}, (4, 3), lambda r: _labels(r, 4)),
    ("CrossEntropyLoss", {"weight": W3}, (4, 3), lambda r: _labels(r, 4)),
    ("CrossEntropyLoss", {"ignore_index": 1}, (6, 3), lambda r: np.array([0, 1, 2, 1, 2, 0])),
    ("CrossEntropyLoss", {"ignore_index": -100}, (3, 3), lambda r: np.array([0, -100, 2])),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, (4, 3), lambda r: _labels(r, 4)),
    (
        "CrossEntropyLoss",
        {"label_smoothing": 0.1, "weight": W3, "ignore_index": 0, "reduction": "sum"},
        (5, 3),
        lambda r: np.array([0, 1, 2, 2, 1]),
    ),
    (
        "CrossEntropyLoss",
        {"weight": W3, "label_smoothing": 0.3},
        (2, 3, 4),
        lambda r: _labels(r, (2, 4)),
    ),
    ("CrossEntropyLoss", {"reduction": "none"}, (2, 3, 2, 2), lambda r: _labels(r, (2, 2, 2))),
    (
        "CrossEntropyLoss",
        {"label_smoothing": 0.2, "weight": W3},
        (4, 3),
        lambda r: _probs(r, (4, 3)),
    ),
    ("NLLLoss", {}, (4, 3), lambda r: _labels(r, 4)),
    ("NLLLoss", {"weight": W3, "ignore_index": 2}, (5, 3), lambda r: np.array([0, 1, 2, 2, 1])),
    ("NLLLoss", {"reduction": "sum"}, (2, 3, 4), lambda r: _labels(r, (2, 4))),
    ("BCELoss", {}, "probs", lambda r: r.uniform(0, 1, (3, 4))),
    (
        "BCELoss",
        {"weight": np.array([1.0, 2.0, 0.5, 1.5]), "reduction": "sum"},
        "probs",
        lambda r: r.uniform(0, 1, (3, 4)),
    ),
    (
        "BCEWithLogitsLoss",
        {"pos_weight": np.array([0.5, 2.0, 1.0, 3.0])},
        (3, 4),
        lambda r: r.uniform(0, 1, (3, 4)),
    ),
    (
        "BCEWithLogitsLoss",
        {"weight": np.array([1.0, 2.0, 0.5, 1.5])},
        (3, 4),
        lambda r: r.uniform(0, 1, (3, 4)),
    ),
    ("L1Loss", {}, (3, 4), lambda r: r.standard_normal((3, 4))),
    ("L1Loss", {"reduction": "sum"}, (5,), lambda r: r.standard_normal(5)),
    ("SmoothL1Loss", {}, (3, 4), lambda r: r.standard_normal((3, 4)) * 2),
    (
        "SmoothL1Loss",
        {"beta": 0.3, "reduction": "none"},
        (3, 4),
        lambda r: r.standard_normal((3, 4)),
    ),
    ("SmoothL1Loss", {"beta": 0.0}, (3, 4), lambda r: r.standard_normal((3, 4))),
    ("HuberLoss", {"delta": 0.5}, (3, 4), lambda r: r.standard_normal((3, 4)) * 2),
    ("KLDivLoss", {"reduction": "batchmean"}, "logprobs", lambda r: _probs(r, (4, 3))),
    (
        "KLDivLoss",
        {"reduction": "sum", "log_target": True},
        "logprobs",
        lambda r: np.log(_probs(r, (4, 3))),
    ),
    ("KLDivLoss", {}, "logprobs", lambda r: np.array([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0]])),
]


def _input(rng, spec, target):
    if spec == "probs":
        return rng.uniform(0.02, 0.98, target.shape)
    if spec == "logprobs":
        return np.log(_probs(rng, target.shape))
    return rng.standard_normal(spec)


# torch warns that KLDivLoss's 'mean' is not the KL divergence (chainrule computes the same)
@pytest.mark.filterwarnings("ignore:reduction. 'mean' divides the total loss")
@pytest.mark.parametrize(("name", "kwargs", "spec", "make_target"), CASES, ids=str)
def test_loss_matches_torch(name, kwargs, spec, make_target, rng) -> None:
    torch = pytest.importorskip("torch")
    target = make_target(rng)
    x = _input(rng, spec, target)
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    ours = getattr(nn, name)(**kwargs)
    theirs = getattr(torch.nn, name)(**tkw)
    xc, xt = cr.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    a, b = ours(xc, target), theirs(xt, torch.tensor(target))
    np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(np.shape(a.data))
    cr.sum(a * g).backward()
    (b * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(xc.grad.data, xt.grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("f", "spec", "target"),
    [
        (
            lambda x: nn.functional.cross_entropy(x, np.array([0, 2, 1]), W3, label_smoothing=0.1),
            (3, 3),
            None,
        ),
        (lambda x: nn.functional.nll_loss(x, np.array([[0, 2], [1, 1]])), (2, 3, 2), None),
        (lambda x: nn.functional.smooth_l1_loss(x, np.zeros((2, 3)) + 0.3, beta=0.5), (2, 3), None),
        (
            lambda x: nn.functional.kl_div(x, np.full((2, 3), 1 / 3), reduction="batchmean"),
            (2, 3),
            None,
        ),
        (
            lambda x: nn.functional.binary_cross_entropy_with_logits(
                x, np.full((2, 3), 0.3), pos_weight=np.array([1.0, 2.0, 3.0])
            ),
            (2, 3),
            None,
        ),
    ],
)
def test_losses_gradcheck_order_2(f, spec, target, rng) -> None:
    assert cr.gradcheck(f, [rng.standard_normal(spec)], order=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nn.NLLLoss()(cr.ones(2, 3), [0, 3]), "label 3 is out of range for 3 classes"),
        (
            lambda: nn.CrossEntropyLoss(weight=np.ones(2))(cr.ones(2, 3), [0, 1]),
            "weight must have shape \\(3,\\)",
        ),
        (
            lambda: nn.CrossEntropyLoss()(cr.ones(2, 3, 4), np.zeros((2, 3), int)),
            "expected \\(2, 4\\)",
        ),
        (lambda: nn.BCELoss()(cr.tensor([1.5]), cr.tensor([1.0])), "probabilities in \\[0, 1\\]"),
        (lambda: nn.L1Loss()(cr.ones(3), cr.ones(2)), "shape \\(3,\\) and target shape \\(2,\\)"),
        (lambda: nn.KLDivLoss(reduction="avg"), "batchmean"),
    ],
)
def test_bad_loss_input_is_named(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@settings(max_examples=60, deadline=None)
@given(
    labels=st.lists(st.integers(-3, 6), min_size=1, max_size=6),
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32]),
    ignore_index=st.sampled_from([-100, -1, 0, 2, 4, 5]),
)
def test_cross_entropy_label_checks_agree_with_the_labels(labels, dtype, ignore_index) -> None:
    """The one-reduction check of the fused path (labels seen as unsigned) accepts exactly the
    labels that are all in 0..C-1 and not ignored; every other batch gets the full checks: the
    value over the rows kept, or the error naming the bad label."""
    from chainrule.nn.functional import _plain_labels

    n_classes = 4
    t = np.array(labels).astype(dtype)  # uint8 wraps -1 to 255: out of range either way
    ignored = t == ignore_index
    bad = (t < 0) | (t >= n_classes)
    assert _plain_labels(t, n_classes, ignore_index) == (not bad.any() and not ignored.any())
    z0 = np.random.default_rng(len(labels)).standard_normal((len(t), n_classes))
    z = cr.tensor(z0, requires_grad=True)
    keep = ~ignored
    if (bad & keep).any():
        label = t[bad & keep][0]
        message = f"^cross_entropy: target label {label} is out of range for 4 classes"
        with pytest.raises(ValueError, match=message):  # named after the function called
            F.cross_entropy(z, t, ignore_index=ignore_index)
        return
    assume(keep.any())  # all rows ignored: the mean is 0/0, NaN as in PyTorch
    loss = F.cross_entropy(z, t, ignore_index=ignore_index)
    rows = np.flatnonzero(keep)
    lse = np.log(np.exp(z0).sum(axis=1))
    np.testing.assert_allclose(loss.item(), np.mean(lse[rows] - z0[rows, t[rows]]), rtol=1e-12)
    loss.backward()
    want = np.exp(z0) / np.exp(z0).sum(axis=1, keepdims=True)
    want[rows, t[rows]] -= 1
    want[~keep] = 0
    np.testing.assert_allclose(z.grad.data, want / len(rows), rtol=1e-10, atol=1e-15)
