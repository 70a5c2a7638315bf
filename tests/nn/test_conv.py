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
    assert len(saved) == ops._CONV_KEEP and xs[-1] is saved[id(xs[-1])][0]()
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


def test_a_saved_matrix_goes_when_its_input_is_freed(rng) -> None:
    """The matrix serves only a backward of the graph that holds x: once x's array is freed
    (the graph is gone, a forward under grad mode was never differentiated), so is it."""
    import gc

    from chainrule import ops

    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.Conv2d(2, 2, 3))
    x = cr.tensor(rng.standard_normal((2, 1, 7, 7)))
    saved = ops._conv_saved()
    saved.clear()
    out = model(x)  # grad mode, parameters require grad: both convs keep theirs
    assert len(saved) == 2
    del out
    gc.collect()
    assert [entry[0]() is x.data for entry in saved.values()] == [True]  # the caller's x
    del x
    assert not saved


def test_constant_kernels_and_no_grad_keep_no_matrix(rng) -> None:
    """Average pooling's ones kernel is never trained, and no_grad has no backward: neither
    keeps an im2col matrix."""
    from chainrule import ops

    saved = ops._conv_saved()
    saved.clear()
    x = cr.tensor(rng.standard_normal((2, 3, 8, 8)), requires_grad=True)
    F.avg_pool2d(x, 2, padding=1).sum().backward()
    F.avg_pool1d(x[:, :, 0], 3).sum().backward()
    with cr.no_grad():
        F.conv2d(x, cr.tensor(rng.standard_normal((2, 3, 3, 3)), requires_grad=True))
    assert not saved


# --------------------------------------------------------------------------- threads
# Large conv kernels split their per-example products over helper threads (blas.run_split).
# blas.configure(split_threshold=0) forces the split on these small cases.


def _split_cases() -> list:
    """The op table's conv cases, and two with larger batches (one with groups)."""
    rng = np.random.default_rng(8)

    def p(pad: tuple, groups: int = 1) -> dict:
        return {"stride": (1, 1), "padding": pad, "dilation": (1, 1), "groups": groups}

    # x1: a weight gradient taken as (m g^T)^T (K x positions = 75 x 144 >= 4096)
    x1, w1 = rng.standard_normal((64, 3, 14, 14)), rng.standard_normal((4, 3, 5, 5))
    x2, w2 = rng.standard_normal((70, 4, 5, 5)), rng.standard_normal((4, 2, 2, 3))
    return [*_conv_cases(), ((x1, w1), p(((1, 1),) * 2)), ((x2, w2), p(((0, 0),) * 2, 2))]


def _kernels(x: np.ndarray, w: np.ndarray, p: dict) -> tuple[np.ndarray, ...]:
    """conv's three array kernels: the forward, the weight gradient (from the matrix the
    forward kept) and the input gradient (col2im)."""
    from chainrule import ops

    y = ops._conv(x, w, **p)
    g = np.random.default_rng(9).standard_normal(y.shape).astype(y.dtype)
    args = (p["stride"], p["padding"], p["dilation"], p["groups"])
    gw = ops.NUMPY_NS.conv_grad_w(g, x, w, *args)
    return y, gw, ops.NUMPY_NS.conv_transpose(g, w, x.shape[2:], *args)


@pytest.fixture
def blas_policy(monkeypatch):
    """chainrule.blas, its policy restored after the test; a split takes its threads
    whatever the machine's load (blas._free_cores caps them to the idle cores)."""
    from chainrule import blas

    if blas.blas_threads() is None:
        pytest.skip("threadpoolctl finds no BLAS it can control here")
    monkeypatch.setattr(blas, "_free_cores", lambda count: count)
    old = blas.policy()
    yield blas
    blas.configure(**vars(old))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("case", _split_cases(), ids=lambda c: str(c[0][0].shape))
def test_conv_kernels_give_the_same_floats_on_one_thread_and_two(
    case, dtype, blas_policy, monkeypatch
) -> None:
    """Split over threads, each example's product (forward, weight gradient) is the same call
    as unsplit: the same floats, bit for bit, on one thread and two (col2im stays whole)."""
    blas = blas_policy
    (x, w, *_), p = case
    x, w = x.astype(dtype), w.astype(dtype)
    whole = _kernels(x, w, p)
    blas.configure(split_threshold=0, max_threads=1)
    one = _kernels(x, w, p)
    splits: list[tuple[int, int]] = []
    run = blas.run_split

    def spy(task, chunks, threads):
        splits.append((chunks, threads))
        run(task, chunks, threads)

    monkeypatch.setattr(blas, "run_split", spy)
    blas.configure(split_threshold=0, max_threads=2)
    two = _kernels(x, w, p)
    if x.shape[0] > 1:  # a batch to cut (a single example runs whole)
        assert any(chunks > 1 and threads == 2 for chunks, threads in splits)
    for a, b, c in zip(whole, one, two, strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)


def test_two_python_threads_running_convs_at_once_get_their_own_answers(blas_policy) -> None:
    """Both threads hand chunks to the same helpers and keep their own saved matrices."""
    import threading

    blas_policy.configure(split_threshold=0, max_threads=2)
    rng = np.random.default_rng(10)
    xs = [rng.standard_normal((64, 2, 7, 7)).astype(np.float32) for _ in range(2)]
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)

    def step(x: np.ndarray) -> list[np.ndarray]:
        xt, wt = cr.tensor(x, requires_grad=True), cr.tensor(w, requires_grad=True)
        y = F.conv2d(xt, wt, padding=1)
        (y * y).sum().backward()
        return [y.data, xt.grad.data, wt.grad.data]

    want = [step(x) for x in xs]
    got: dict[int, list[list[np.ndarray]]] = {0: [], 1: []}

    def run(i: int) -> None:
        for _ in range(5):
            got[i].append(step(xs[i]))

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert len(got[i]) == 5
        for result in got[i]:
            for a, b in zip(result, want[i]):
                np.testing.assert_array_equal(a, b)


def test_compiled_step_equals_eager_with_the_split_forced(blas_policy) -> None:
    """compile replays the same array kernels: with every conv kernel that can split split
    over two threads, a compiled training step is bitwise the eager one."""
    blas_policy.configure(split_threshold=0, max_threads=2)
    rng = np.random.default_rng(11)
    x = cr.tensor(rng.standard_normal((64, 2, 8, 8)).astype(np.float32))
    y = rng.integers(0, 3, 64)

    def run(compiled: bool) -> list[np.ndarray]:
        cr.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(2, 4, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(4, 3, 3),
            nn.Flatten(),
            nn.Linear(108, 3),
        )
        opt = cr.optim.Adam(model.parameters(), lr=0.01)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(model(x), y)
            loss.backward()
            opt.step()
            return loss

        fn = cr.compile(step) if compiled else step
        losses = [fn(x, y).data.copy() for _ in range(3)]
        return losses + [p.data.copy() for p in model.parameters()]

    for a, b in zip(run(False), run(True), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel", [3, 4], ids=["columns", "rows"])  # 5x5 input: 9 or 4 positions
@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_an_empty_batch_gives_empty_gradients(kernel, split, blas_policy) -> None:
    if split:
        blas_policy.configure(split_threshold=0, max_threads=2)
    x = cr.tensor(np.ones((0, 2, 5, 5)), requires_grad=True)
    w = cr.tensor(np.ones((4, 2, kernel, kernel)), requires_grad=True)
    y = F.conv2d(x, w)
    y.sum().backward()
    assert y.shape == (0, 4, 6 - kernel, 6 - kernel) and x.grad.shape == x.shape
    np.testing.assert_array_equal(w.grad.data, np.zeros(w.shape))


def test_a_large_weight_gradient_taken_as_m_times_g_transposed_agrees() -> None:
    """Above 4096 entries per example's im2col matrix the array weight gradient multiplies in
    the other order, (m[n] g[n]^T)^T; it must still agree with the convolution form."""
    from chainrule import ops

    rng = np.random.default_rng(12)
    x, w = rng.standard_normal((8, 3, 14, 14)), rng.standard_normal((4, 3, 5, 5))
    p = {"stride": (1, 1), "padding": ((1, 1), (1, 1)), "dilation": (1, 1), "groups": 1}
    assert 3 * 5 * 5 * 12 * 12 >= 4096  # K x positions of one example: that order is taken
    g = rng.standard_normal(ops._conv(x, w, **p).shape)
    args = (p["stride"], p["padding"], p["dilation"], p["groups"])
    fast = ops.NUMPY_NS.conv_grad_w(g, x, w, *args)
    graph = ops.TENSOR_NS.conv_grad_w(cr.tensor(g), cr.tensor(x), cr.tensor(w), *args)
    np.testing.assert_allclose(fast, graph.data, rtol=1e-12, atol=1e-12)
