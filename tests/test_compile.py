"""chainrule.compile: replay equals eager to the bit (losses and every gradient, over several
steps with parameter updates in between), retraces on new shapes, reads parameters fresh, and
refuses what it cannot replay."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn, optim
from chainrule.compile import CompileError
from chainrule.nn import functional as F


def _mlp(seed=0):
    cr.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))


def _w2_step(model):
    def step(x, y):
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return step


def _train(step_fn, model, steps=5, batch_seed=1):
    """SGD steps on fresh batches; returns every loss and every gradient, copied."""
    rng = np.random.default_rng(batch_seed)
    opt = optim.SGD(model.parameters(), lr=0.1)
    record = []
    for _ in range(steps):
        x = cr.tensor(rng.standard_normal((32, 64)).astype(np.float32))
        y = rng.integers(0, 10, 32)
        opt.zero_grad()
        loss = step_fn(x, y)
        record.append((loss.data.copy(), [p.grad.data.copy() for p in model.parameters()]))
        opt.step()
    return record, [p.data.copy() for p in model.parameters()]


def _assert_bitwise(a, b):
    (rec_a, final_a), (rec_b, final_b) = a, b
    for (la, ga), (lb, gb) in zip(rec_a, rec_b, strict=True):
        assert la.tobytes() == lb.tobytes()
        for u, v in zip(ga, gb, strict=True):
            assert u.dtype == v.dtype and u.tobytes() == v.tobytes()
    for u, v in zip(final_a, final_b, strict=True):
        assert u.tobytes() == v.tobytes()


def test_w2_mlp_replay_equals_eager_bitwise():
    eager_model, comp_model = _mlp(), _mlp()
    eager = _train(_w2_step(eager_model), eager_model)
    compiled = cr.compile(_w2_step(comp_model))
    _assert_bitwise(eager, _train(compiled, comp_model))
    assert next(iter(compiled.plans.values())).checked  # calls 3.. were replays


def _graph_fn(a, b, w, c):
    """Broadcasting, indexing, a diamond, reductions with axis, a leaf used twice."""
    h = cr.tanh(a * w + b)  # (4, 3) * (3,) + (4, 1)
    d = h * h + cr.exp(-h)  # diamond on h
    r = cr.sum(d, axis=1, keepdims=True) + cr.max(d, axis=0)[1]
    s = d[np.array([0, 2, 2]), 1:].mean() + (r[1:] * c).sum()
    loss = s + cr.logsumexp(a, axis=-1).sum() + (w * w).sum()
    loss.backward()
    return loss, r


def test_graph_replay_equals_eager_bitwise_with_updates():
    rng = np.random.default_rng(0)
    leaves = [rng.standard_normal(s) for s in [(4, 1), (3,), (3, 1)]]

    def run(fn):
        b, w, c = (cr.tensor(v, requires_grad=True) for v in leaves)
        out = []
        for k in range(4):
            a = cr.tensor(rng_a.standard_normal((4, 3)), requires_grad=True)
            loss, r = fn(a, b, w, c)
            out.append([loss.data, r.data, a.grad.data] + [t.grad.data.copy() for t in (b, w, c)])
            with cr.no_grad():
                w.data -= 0.1 * w.grad.data  # in place between calls: read fresh
            b.data = b.data * 0.5  # rebinding .data between calls: read fresh too
            if k % 2:
                c.grad = None  # else accumulated across calls, exactly as backward() does
        return out

    rng_a = np.random.default_rng(5)
    eager = run(_graph_fn)
    rng_a = np.random.default_rng(5)
    compiled_fn = cr.compile(_graph_fn)
    replayed = run(compiled_fn)
    for xs, ys in zip(eager, replayed, strict=True):
        for u, v in zip(xs, ys, strict=True):
            assert u.shape == v.shape and u.tobytes() == v.tobytes()


def test_new_shapes_retrace_and_stay_correct():
    model = _mlp()
    step = cr.compile(_w2_step(model))
    for n in (32, 32, 32, 7, 7, 7, 32):
        x = cr.tensor(np.ones((n, 64), np.float32))
        loss = step(x, np.zeros(n, dtype=np.int64))
        grads = [p.grad.data.copy() for p in model.parameters()]
        model.zero_grad()
        eager = F.cross_entropy(model(x), np.zeros(n, dtype=np.int64))
        eager.backward()
        assert loss.data.tobytes() == eager.data.tobytes()
        for g, p in zip(grads, model.parameters()):
            assert g.tobytes() == p.grad.data.tobytes()
        model.zero_grad()
    assert len(step.plans) == 2


def test_outputs_are_detached_and_python_values_key_the_trace():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    f = cr.compile(lambda x, k: (w * x * k).sum())
    assert [f(cr.tensor([1.0, 1.0]), k).item() for k in (1.0, 2.0, 2.0, 2.0, 3.0)] == [
        3.0,
        6.0,
        6.0,
        6.0,
        9.0,
    ]
    out = f(cr.tensor([1.0, 1.0]), 2.0)
    assert not out.requires_grad and out.is_leaf


def test_value_dependent_computation_is_caught_on_the_second_call():
    x0 = cr.tensor([1.0, -1.0], requires_grad=True)

    def masked(x):
        mask = x.data > 0  # computed outside chainrule ops: frozen by the trace
        loss = cr.where(mask, x, 0.0).sum()
        loss.backward()
        return loss

    f = cr.compile(masked)
    f(x0)
    with pytest.raises(CompileError, match="second call recorded a different computation"):
        f(cr.tensor([-1.0, 1.0], requires_grad=True))


def test_in_place_change_outside_a_replayed_call_is_refused():
    w = cr.tensor(np.ones(3), requires_grad=True)

    def step(x):
        loss = (w * x).sum()
        loss.backward()
        with cr.no_grad():
            w.sub_(0.1 * w.grad)  # an update no replay would make: not an optimizer's step
        return loss

    with pytest.raises(CompileError, match="changed a tensor it uses in place"):
        cr.compile(step)(cr.tensor(np.ones(3)))


def test_unsupported_results_and_arguments():
    w = cr.tensor(1.0, requires_grad=True)
    with pytest.raises(CompileError, match="returned a float"):
        cr.compile(lambda: 1.5)()
    with pytest.raises(TypeError, match="arguments must be Tensors"):
        cr.compile(lambda x: x)([1.0])
    with pytest.raises(CompileError, match="create_graph"):
        cr.compile(lambda: (w * w).backward(create_graph=True))()


def test_parameter_replaced_with_new_shape_retraces():
    w = cr.tensor(np.ones(3), requires_grad=True)

    def f():
        loss = (w * w).sum()
        loss.backward()
        return loss

    g = cr.compile(f)
    for _ in range(3):
        g()
    w.data = np.ones(5)
    w.grad = None
    assert g().item() == 5.0 and w.grad.shape == (5,)


def _bitwise_calls(fn, make_args, leaves, calls=4):
    """Run `fn` eagerly and compiled on the same arguments; compare results and leaf grads."""
    outs = []
    for f in (fn, cr.compile(fn)):
        for t in leaves:
            t.grad = None
        rows = []
        for k in range(calls):
            res = f(*make_args(k))
            res = res if isinstance(res, (tuple, list)) else (res,)
            rows.append([r.data.copy() for r in res] + [t.grad.data.copy() for t in leaves])
        outs.append(rows)
    for xs, ys in zip(*outs, strict=True):
        for u, v in zip(xs, ys, strict=True):
            assert u.dtype == v.dtype and u.shape == v.shape and u.tobytes() == v.tobytes()


def test_identity_vjps_give_each_leaf_its_own_gradient_array():
    a = cr.tensor(np.arange(3.0), requires_grad=True)
    b = cr.tensor(np.ones(3), requires_grad=True)

    def f(seed):
        out = a + b  # add hands the caller's seed array itself to both inputs
        out.backward(seed)
        return out

    g = cr.compile(f)
    for _ in range(3):
        a.grad = b.grad = None
        seed = cr.tensor(np.full(3, 2.0))
        g(seed)
    for t in (a, b):
        assert not np.shares_memory(t.grad.data, seed.data)
    assert not np.shares_memory(a.grad.data, b.grad.data)
    a.grad.data[0] = 5.0  # mutating one leaf's gradient leaves the other alone
    assert b.grad.data.tolist() == [2.0, 2.0, 2.0]


def test_variadic_ops_two_backward_sweeps_and_list_results():
    rng = np.random.default_rng(3)
    w = cr.tensor(rng.standard_normal(3), requires_grad=True)
    v = cr.tensor(rng.standard_normal(3), requires_grad=True)

    def f(x):
        s = cr.stack([w * x, v, w])  # variadic: one vjp with argnum
        c = cr.concatenate([s[0], s[2] * v])
        first = (c * c).sum()
        first.backward(retain_graph=True)  # a leaf's gradient is accumulated over both sweeps
        second = cr.logsumexp(s, axis=0).sum()
        second.backward()
        return [first, second]

    xs = [rng.standard_normal(3) for _ in range(4)]
    _bitwise_calls(f, lambda k: (cr.tensor(xs[k]),), [w, v])


def test_replay_does_not_run_the_python_function():
    model = _mlp()
    calls = []

    def f(x, y):
        calls.append(1)
        return _w2_step(model)(x, y)

    step = cr.compile(f)
    x = cr.tensor(np.ones((4, 64), np.float32))
    for y in ([0, 1, 2, 3], [0, 1, 2, 3], [3, 3, 1, 0]):
        model.zero_grad()
        loss = step(x, np.array(y))  # labels are read fresh on replay
    assert len(calls) == 2  # the trace and the check; the third call was a replay
    expected = [p.grad.data.copy() for p in model.parameters()]
    model.zero_grad()
    eager = _w2_step(model)(x, np.array([3, 3, 1, 0]))
    assert loss.data.tobytes() == eager.data.tobytes()
    for g, p in zip(expected, model.parameters(), strict=True):
        assert g.tobytes() == p.grad.data.tobytes()
    source = next(iter(step.plans.values())).source
    assert source.startswith("def replay(A):")  # the generated code, kept for inspection


def test_sgd_plain_step_keeps_dtype_bumps_version_and_lists_state():
    w = cr.tensor(np.array([1.0, 2.0], np.float32), requires_grad=True)
    w.grad = cr.tensor(np.array([0.5, -1.0]))  # float64 gradient on a float32 parameter
    data, version = w.data, w._version
    opt = optim.SGD([w], lr=0.1)
    opt.step()
    assert w.data is data and w.dtype == np.float32  # updated in place
    expected = np.array([1.0, 2.0], np.float32) - (0.1 * np.array([0.5, -1.0])).astype(np.float32)
    assert w.data.tobytes() == expected.tobytes()
    assert w._version == version + 1 and list(opt.state_dict()["state"]) == [0]


def test_a_trace_records_only_its_own_thread():
    """Another thread's backward while a trace runs is not part of the trace: replaying the
    trace must not replay that thread's sweep into its leaves' `.grad`."""
    import threading

    w = cr.tensor(2.0, requires_grad=True)  # this thread's parameter
    u = cr.tensor(1.0, requires_grad=True)  # the other thread's parameter
    go, done = threading.Event(), threading.Event()

    def other_thread():
        for _ in range(2):  # one step during each of the two traces (first call and check)
            assert go.wait(30)
            go.clear()
            u.grad = None
            (u * u * 3.0).backward()  # d/du 3u^2 = 6 at u = 1
            done.set()

    def step(x):
        loss = (w * x).sum()
        go.set()  # let the other thread run its step in the middle of the trace
        assert done.wait(30)
        done.clear()
        loss.backward()
        return loss

    worker = threading.Thread(target=other_thread)
    worker.start()
    f = cr.compile(step)
    for _ in range(2):
        f(cr.tensor([1.0, 2.0]))
    worker.join(30)
    for _ in range(3):  # replays: the other thread is idle
        f(cr.tensor([1.0, 2.0]))
    assert u.grad.item() == 6.0
    assert w.grad.item() == 5 * 3.0


def test_comparisons_are_replayed_on_fresh_values():
    """A mask from a comparison of traced tensors is recomputed by each replay (not frozen)."""
    w = cr.tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)

    def f(x):
        h = w * x
        loss = (cr.where(h > 0, h, 0.1 * h) * (x <= 1.0)).sum()
        loss.backward()
        return loss

    xs = [np.array(v) for v in ([1.0, 1.0, -1.0], [-1.0, 2.0, 0.5], [0.5, -1.0, 1.0])] * 2
    _bitwise_calls(f, lambda k: (cr.tensor(xs[k]),), [w], calls=6)


# name -> f(x, w): ops whose index, mask or shift is computed in NumPy from values
# (`chainrule.compile.recomputed`): each replay must compute it again, not freeze the trace's
VALUE_DEPENDENT = {
    "max_with_indices": lambda x, w: cr.max(x * w, axis=1),
    "min_with_indices": lambda x, w: cr.min(x * w, axis=0),
    "log_softmax": lambda x, w: cr.log_softmax(x * w * 30.0, axis=1),
    "smooth_l1": lambda x, w: F.smooth_l1_loss(x * w, cr.zeros_like(x), beta=0.5),
    "huber": lambda x, w: F.huber_loss(x * w, cr.zeros_like(x), delta=0.5),
    "max_pool_indices": lambda x, w: F.max_pool1d((x * w)[None], 2, return_indices=True),
}


@pytest.mark.parametrize("name", VALUE_DEPENDENT)
def test_value_dependent_indices_are_recomputed_per_replay(name):
    w = cr.tensor(np.ones(4), requires_grad=True)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((3, 4)) for _ in range(5)]

    def f(x):
        out = VALUE_DEPENDENT[name](x, w)
        outs = list(out) if isinstance(out, tuple) else [out]
        sum(o.sum() for o in outs if o.dtype.kind == "f").backward()
        return tuple(outs)

    _bitwise_calls(f, lambda k: (cr.tensor(xs[k]),), [w], calls=5)
