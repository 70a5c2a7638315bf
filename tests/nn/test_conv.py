"""Convolution layers against PyTorch, one case per option combination, and the functional
forms (conv_transpose is composed from the `conv` primitive) gradchecked to order 2."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F

# (name, constructor arguments, input shape); the same arguments build torch's layer
CASES = [
    ("Conv1d", (2, 3, 3), {}, (2, 2, 9)),
    ("Conv1d", (2, 4, 3), {"stride": 2, "padding": 1, "bias": False}, (3, 2, 10)),
    ("Conv1d", (4, 6, 3), {"groups": 2, "dilation": 2, "padding": "same"}, (2, 4, 11)),
    ("Conv1d", (3, 3, 4), {"padding": "same", "groups": 3}, (1, 3, 7)),
    ("Conv1d", (1, 25, 5), {"stride": 2, "padding": 1}, (4, 1, 40)),
    ("Conv1d", (2, 2, 2), {"padding": "valid", "stride": 3}, (2, 8)),  # unbatched
    ("Conv2d", (2, 3, 3), {}, (2, 2, 6, 5)),
    ("Conv2d", (2, 4, (2, 3)), {"stride": (2, 1), "padding": (1, 2)}, (2, 2, 7, 6)),
    ("Conv2d", (4, 4, 3), {"groups": 4, "dilation": (2, 1), "padding": "same"}, (1, 4, 7, 7)),
    ("Conv2d", (3, 2, 2), {"stride": 2, "bias": False}, (3, 5, 5)),  # unbatched
    ("Conv1d", (2, 3, 3), {"padding": 2, "padding_mode": "reflect"}, (2, 2, 6)),
    ("Conv1d", (2, 3, 4), {"padding": "same", "padding_mode": "circular"}, (1, 2, 7)),
    ("Conv2d", (2, 3, 3), {"padding": (1, 2), "padding_mode": "replicate"}, (2, 2, 5, 4)),
    ("Conv2d", (2, 2, 2), {"padding": 1, "padding_mode": "circular", "stride": 2}, (2, 4, 4)),
    ("ConvTranspose1d", (2, 3, 4), {"stride": 2, "padding": 1}, (2, 2, 5)),
    ("ConvTranspose1d", (4, 2, 3), {"stride": 3, "output_padding": 2, "groups": 2}, (1, 4, 4)),
    ("ConvTranspose1d", (2, 2, 3), {"dilation": 2, "padding": 2, "bias": False}, (2, 2, 6)),
    ("ConvTranspose2d", (2, 3, 3), {"stride": 2, "padding": 1, "output_padding": 1}, (2, 2, 4, 3)),
    ("ConvTranspose2d", (4, 2, (2, 3)), {"groups": 2, "stride": (1, 2)}, (1, 4, 3, 3)),
]


# torch warns that it copies the input for an even kernel with padding='same'
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), CASES, ids=lambda v: str(v))
def test_conv_layer_matches_torch(name, args, kwargs, shape, rng, same_as_torch) -> None:
    torch = pytest.importorskip("torch")
    layer = getattr(nn, name)(*args, **kwargs, dtype=np.float64)
    same_as_torch(layer, getattr(torch.nn, name)(*args, **kwargs), rng.standard_normal(shape))


def test_conv_initialisation_matches_torch_bounds() -> None:
    """kaiming_uniform_(a=sqrt(5)): |w| <= 1/sqrt(fan_in), and the bias the same bound."""
    layer = nn.Conv2d(6, 8, (3, 2), groups=2)
    bound = 1 / np.sqrt(3 * 3 * 2)
    assert np.abs(layer.weight.data).max() <= bound and np.abs(layer.bias.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.8 * bound  # drawn from the whole range


FUNCTIONAL = [
    (F.conv1d, (2, 2, 7), (3, 2, 3), {"stride": 2, "padding": "valid"}),
    (F.conv2d, (1, 2, 5, 4), (2, 1, 2, 2), {"groups": 2, "padding": "same", "dilation": 2}),
    (F.conv_transpose1d, (2, 2, 4), (2, 3, 3), {"stride": 2, "output_padding": 1}),
    (F.conv_transpose2d, (1, 2, 3, 3), (2, 1, 2, 2), {"stride": 2, "padding": 1}),
    (F.conv3d, (1, 2, 3, 2, 3), (3, 2, 2, 1, 2), {"padding": 1}),
    (F.conv_transpose3d, (1, 2, 2, 2, 2), (2, 3, 2, 1, 2), {"stride": 2}),
]


@pytest.mark.parametrize(
    ("f", "xs", "ws", "kw"),
    [
        (F.conv3d, (2, 4, 5, 6, 4), (6, 2, 2, 3, 2), {"stride": (1, 2, 1), "groups": 2}),
        (F.conv3d, (1, 2, 4, 4, 4), (3, 2, 3, 3, 3), {"padding": 1, "dilation": (1, 2, 1)}),
        (F.conv_transpose3d, (2, 2, 3, 2, 3), (2, 4, 2, 2, 3), {"stride": 2, "output_padding": 1}),
    ],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_functional_conv3d_matches_torch(f, xs, ws, kw, rng) -> None:
    torch = pytest.importorskip("torch")
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    ours = [cr.tensor(a, requires_grad=True) for a in (x, w)]
    theirs = [torch.tensor(a, requires_grad=True) for a in (x, w)]
    y, ty = f(*ours, **kw), getattr(torch.nn.functional, f.__name__)(*theirs, **kw)
    y.sum().backward()
    ty.sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=1e-10, atol=1e-10)
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.data, b.grad.numpy(), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("f", "xs", "ws", "kw"), FUNCTIONAL, ids=lambda v: getattr(v, "__name__", "")
)
def test_functional_conv_gradcheck_order_2(f, xs, ws, kw, rng) -> None:
    x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(3)
    bias = b[: (ws[1] * kw.get("groups", 1) if "transpose" in f.__name__ else ws[0])]
    assert cr.gradcheck(lambda x, w, b: f(x, w, b, **kw), [x, w, bias], order=2)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: F.conv1d(cr.ones(2, 3, 5), cr.ones(4, 2, 3)), "3 channels .* groups=1"),
        (lambda: F.conv1d(cr.ones(2, 2, 2), cr.ones(4, 2, 3)), "smaller than the kernel"),
        (lambda: F.conv2d(cr.ones(2, 5), cr.ones(4, 2, 3, 3)), "4-D .* got shape \\(2, 5\\)"),
        (
            lambda: F.conv1d(cr.ones(1, 1, 5), cr.ones(1, 1, 3), stride=2, padding="same"),
            "stride 1",
        ),
        (lambda: F.conv1d(cr.ones(1, 1, 5), cr.ones(1, 1, 3), padding="full"), "'valid', 'same'"),
        (lambda: nn.Conv1d(3, 4, 3, groups=2), "divisible by groups 2"),
        (lambda: nn.Conv2d(1, 1, 0), "kernel_size must be an int >= 1"),
        (lambda: nn.Conv1d(1, 1, 3, padding_mode="edge"), "padding_mode must be one of"),
        (lambda: nn.ConvTranspose1d(1, 1, 3, padding_mode="reflect"), "padding_mode='zeros'"),
    ],
)
def test_bad_conv_arguments_are_named(call, message) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def _conv_cases() -> list:
    from chainrule import ops

    return ops.conv.cases(np.random.default_rng(5), np.float64, ops.conv)


@pytest.mark.parametrize("case", _conv_cases(), ids=lambda c: str(c[0][0].shape))
def test_conv_input_gradient_forms_agree(case) -> None:
    """conv's input gradient has two forms: col2im on arrays (the fast path of backward) and
    the convolution form on Tensors (differentiable again); both are the adjoint of conv."""
    from chainrule import ops

    (x, w, *_), p = case
    groups = p["groups"]
    g = np.random.default_rng(6).standard_normal(ops._conv(x, w, **p).shape)
    args = (x.shape[2:], p["stride"], p["padding"], p["dilation"], groups)
    fast = ops.NUMPY_NS.conv_transpose(g, w, *args)
    graph = ops.TENSOR_NS.conv_transpose(cr.tensor(g), cr.tensor(w), *args)
    assert fast.shape == x.shape
    np.testing.assert_allclose(fast, graph.data, rtol=1e-12, atol=1e-12)
    # the adjoint identity <conv(x), g> = <x, conv^T(g)>
    np.testing.assert_allclose(np.vdot(ops._conv(x, w, **p), g), np.vdot(x, fast), rtol=1e-10)


@pytest.mark.parametrize("case", _conv_cases(), ids=lambda c: str(c[0][0].shape))
@pytest.mark.parametrize("saved", [False, True], ids=["gathered", "saved"])
def test_conv_weight_gradient_forms_agree(case, saved) -> None:
    """conv's weight gradient on arrays multiplies g by the forward's im2col matrix (saved by
    a forward under grad mode, or gathered again: the same floats); on Tensors it is a
    convolution of x with g as the kernel, differentiable again. Both are the adjoint of
    w -> conv(x, w)."""
    from chainrule import ops

    (x, w, *_), p = case
    groups = p["groups"]
    args = (p["stride"], p["padding"], p["dilation"], groups)
    with cr.no_grad():
        y = ops._conv(x, w, **p)  # saves nothing
    g = np.random.default_rng(7).standard_normal(y.shape)
    gathered = ops.NUMPY_NS.conv_grad_w(g, x, w, *args)
    if saved:
        ops._conv(x, w, **p)  # grad mode on: the forward keeps its matrix for the vjp
        fast = ops.NUMPY_NS.conv_grad_w(g, x, w, *args)
        np.testing.assert_array_equal(fast, gathered)
    graph = ops.TENSOR_NS.conv_grad_w(cr.tensor(g), cr.tensor(x), cr.tensor(w), *args)
    assert gathered.shape == w.shape
    np.testing.assert_allclose(gathered, graph.data, rtol=1e-12, atol=1e-12)
    # the adjoint identity <conv(x, w), g> = <w, dL/dw>: conv is linear in w
    np.testing.assert_allclose(np.vdot(y, g), np.vdot(w, gathered), rtol=1e-10)


def test_conv_keeps_a_bounded_number_of_saved_matrices(rng) -> None:
    """Forwards under grad mode without a backward (inference, a deep stack) keep at most
    _CONV_KEEP im2col matrices alive; a vjp takes its matrix out of the slot."""
    from chainrule import ops

    w = rng.standard_normal((2, 1, 3))
    p = {"stride": (1,), "padding": ((0, 0),), "dilation": (1,), "groups": 1}
    xs = [rng.standard_normal((1, 1, 6)) for _ in range(ops._CONV_KEEP + 3)]
    for x in xs:
        ops._conv(x, w, **p)
    saved = ops._CONV_SAVED.cols
    assert len(saved) == ops._CONV_KEEP and xs[-1] is saved[id(xs[-1])][0]
    g = np.ones((1, 2, 4))
    ops.NUMPY_NS.conv_grad_w(g, xs[-1], w, *p.values())
    assert id(xs[-1]) not in saved and len(saved) == ops._CONV_KEEP - 1


def test_conv_forward_never_reuses_a_saved_matrix(rng) -> None:
    """The saved matrix serves only the weight gradient: a second forward of the same array,
    changed in place in between, sees the new values."""
    from chainrule import ops

    w = rng.standard_normal((2, 1, 3))
    p = {"stride": (1,), "padding": ((1, 1),), "dilation": (1,), "groups": 1}
    x = rng.standard_normal((1, 1, 6))
    ops._conv(x, w, **p)
    x *= 2
    np.testing.assert_allclose(ops._conv(x, w, **p), ops._conv(x.copy(), w, **p))
