"""Attention against PyTorch in float64: scaled_dot_product_attention with each kind of mask,
MultiheadAttention across layouts and masks; gradchecked to order 2."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

CAUSAL_KEEP = np.tril(np.ones((4, 4), dtype=bool))

SDPA = [
    ({}, (2, 4, 3), (2, 4, 3), (2, 4, 5)),
    ({"is_causal": True}, (2, 2, 4, 3), (2, 2, 4, 3), (2, 2, 4, 3)),
    ({"attn_mask": CAUSAL_KEEP.T}, (1, 4, 3), (1, 4, 3), (1, 4, 2)),
    ({"attn_mask": "float"}, (2, 4, 3), (2, 6, 3), (2, 6, 3)),
    ({"scale": 0.3}, (3, 5, 2), (3, 4, 2), (3, 4, 2)),
]


@pytest.mark.parametrize(("kw", "qs", "ks", "vs"), SDPA, ids=str)
def test_sdpa_matches_torch(kw, qs, ks, vs, rng) -> None:
    torch = pytest.importorskip("torch")
    if isinstance(kw.get("attn_mask"), str):
        kw = {"attn_mask": rng.standard_normal((qs[-2], ks[-2]))}
    arrays = [rng.standard_normal(s) for s in (qs, ks, vs)]
    ours = [cr.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kw.items()}
    a = F.scaled_dot_product_attention(*ours, **kw)
    b = torch.nn.functional.scaled_dot_product_attention(*theirs, **tkw)
    np.testing.assert_allclose(a.data, b.detach().numpy(), rtol=1e-10, atol=1e-12)
    g = rng.standard_normal(a.shape)
    cr.sum(a * g).backward()
    (b * torch.tensor(g)).sum().backward()
    for x, t in zip(ours, theirs):
        np.testing.assert_allclose(x.grad.data, t.grad.numpy(), rtol=1e-9, atol=1e-12)


class _Attend:
    """Wraps a MultiheadAttention so that same_as_torch can feed it q, k, v and options."""

    def __init__(self, base):
        class Wrapped(base):
            def __init__(self, inner, kw):
                super().__init__()
                self.m, self.kw = inner, kw

            def forward(self, q, k, v):
                return self.m(q, k, v, **self.kw)

        self.cls = Wrapped


MHA = [
    ({}, {}, (5, 2, 8), (6, 2, 8)),
    ({"batch_first": True}, {"need_weights": False}, (2, 5, 8), (2, 5, 8)),
    (
        {"batch_first": True},
        {"average_attn_weights": False, "is_causal": True, "attn_mask": "causal"},
        (2, 4, 8),
        (2, 4, 8),
    ),
    (
        {},
        {"key_padding_mask": np.array([[False, False, True], [False, True, True]])},
        (4, 2, 8),
        (3, 2, 8),
    ),
    ({"bias": False}, {"attn_mask": "float"}, (3, 2, 8), (4, 2, 8)),
    ({}, {"attn_mask": np.array([[False, True], [True, False], [False, False]])}, (3, 8), (2, 8)),
]


@pytest.mark.parametrize(("ckw", "fkw", "qs", "ks"), MHA, ids=str)
def test_multihead_attention_matches_torch(ckw, fkw, qs, ks, rng, same_as_torch) -> None:
    torch = pytest.importorskip("torch")
    fkw = dict(fkw)
    if (
        isinstance(fkw.get("attn_mask"), str) and fkw["attn_mask"] == "causal"
    ):  # torch needs the mask too when is_causal is given
        fkw["attn_mask"] = ~np.tril(np.ones((qs[1], ks[1]), dtype=bool))
    if isinstance(fkw.get("attn_mask"), str) and fkw["attn_mask"] == "float":
        fkw["attn_mask"] = rng.standard_normal((qs[0], ks[0]))
    tkw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in fkw.items()}
    ours = _Attend(nn.Module).cls(nn.MultiheadAttention(8, 2, **ckw, dtype=np.float64), fkw)
    theirs = _Attend(torch.nn.Module).cls(torch.nn.MultiheadAttention(8, 2, **ckw), tkw)
    q, kv = rng.standard_normal(qs), rng.standard_normal(ks)
    same_as_torch(ours, theirs, q, kv, kv * 0.5 + 1)


def test_mha_initialisation_is_pytorchs() -> None:
    mha = nn.MultiheadAttention(6, 3)
    bound = np.sqrt(6 / (6 + 18))  # xavier_uniform_ on (3E, E)
    assert np.abs(mha.in_proj_weight.data).max() <= bound
    assert not mha.in_proj_bias.data.any() and not mha.out_proj.bias.data.any()
    names = sorted(mha.state_dict())
    assert names == ["in_proj_bias", "in_proj_weight", "out_proj.bias", "out_proj.weight"]


def test_sdpa_gradcheck_order_2(rng) -> None:
    mask = CAUSAL_KEEP[:3, :3]
    f = lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    arrays = [rng.standard_normal((2, 3, 2)) for _ in range(3)]
    assert cr.gradcheck(f, arrays, order=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: nn.MultiheadAttention(6, 4), "divisible by num_heads 4"),
        (
            lambda: F.scaled_dot_product_attention(cr.ones(2, 3), cr.ones(2, 4), cr.ones(2, 4)),
            "do not fit",
        ),
        (
            lambda: nn.MultiheadAttention(4, 2)(
                cr.ones(3, 1, 5), cr.ones(3, 1, 4), cr.ones(3, 1, 4)
            ),
            "embed_dim 4",
        ),
    ],
)
def test_bad_attention_input_is_named(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


@pytest.mark.parametrize(
    ("kw", "shape", "mask"),
    [
        ({"dropout": 0.0}, (5, 2, 8), None),
        (
            {"dropout": 0.0, "norm_first": True, "activation": "gelu", "batch_first": True},
            (2, 5, 8),
            None,
        ),
        ({"dropout": 0.0, "batch_first": True}, (2, 4, 8), "padding"),
        ({"dropout": 0.3, "mode": "eval"}, (4, 2, 8), None),
    ],
    ids=str,
)
def test_transformer_encoder_layer_matches_torch(kw, shape, mask, rng, same_as_torch) -> None:
    torch = pytest.importorskip("torch")
    kw = dict(kw)
    mode = kw.pop("mode", "train")
    ours = nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, **kw, dtype=np.float64)
    theirs = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, **kw)
    if mode == "eval":
        ours.eval()
        theirs.eval()
    if mask == "padding":
        pad = np.array([[False, False, False, True], [False, True, True, True]])
        ours = _Attend(nn.Module).cls(ours, {})
        theirs = _Attend(torch.nn.Module).cls(theirs, {})
        ours.forward = lambda x, m=ours.m: m(x, src_key_padding_mask=pad)
        theirs.forward = lambda x, m=theirs.m: m(x, src_key_padding_mask=torch.tensor(pad))
    same_as_torch(ours, theirs, rng.standard_normal(shape))
