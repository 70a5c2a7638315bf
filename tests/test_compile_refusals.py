"""What chainrule.compile cannot replay is refused with a one-line CompileError naming the
cause, never replayed wrong; what changes the computation's structure (shapes, dtypes, grad
mode, a module's training flag) traces again. One table of refused functions, one body."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
import chainrule.random as crr
from chainrule.compile import CompileError

w = cr.tensor(np.array([0.5, -1.5]), requires_grad=True)
built_outside = w * 2.0  # a graph that exists before any compiled call


def _backward(loss):
    loss.backward()
    return loss


def _reset_then_backward(x):
    loss = (w * x).sum()
    w.grad = None  # eager: this call's gradient only; a replay would accumulate instead
    return _backward(loss)


def _retain(x):
    h = w * x
    h.retain_grad()
    return _backward(h.sum())


def _in_place(x):
    h = x * 2.0
    with cr.no_grad():
        h.add_(1.0)  # the write into h's array is not an op: a replay would skip it
    return h * 3.0


def _reseed(x):
    cr.manual_seed(0)
    return x * crr.generator().random(2)


# name -> (the function, a regex its CompileError matches); each runs on new values per call
REFUSED = {
    "item_inside": (lambda x: x * (x * 2.0).sum().item(), r"item\(\) of a traced tensor"),
    "float_inside": (lambda x: x * float(x.sum()), r"item\(\) of a traced tensor"),
    "python_if_on_a_value": (
        lambda x: x * 2.0 if (x.sum() > 0) else x * 3.0,
        r"bool\(\) \(Python control flow",
    ),
    "tolist_inside": (lambda x: x * len([v for v in x.tolist() if v > 0]), r"tolist\(\)"),
    "mask_from_data": (
        lambda x: cr.where(x.data > 0, x, 0.0),
        "second call recorded a different computation",
    ),
    "in_place_on_a_result": (_in_place, "changed a tensor it uses in place"),
    "grad_reset_inside": (_reset_then_backward, r"\.grad was replaced"),
    "create_graph_backward": (
        lambda x: (w * w * x).sum().backward(create_graph=True),
        "create_graph=True",
    ),
    "retain_grad": (_retain, "retain_grad"),
    "graph_built_outside": (
        lambda x: _backward((built_outside * x).sum()),
        "graph built outside",
    ),
    "manual_seed_inside": (_reseed, "manual_seed or set_rng_state"),
    "scalar_random_draw": (lambda x: x * crr.generator().random(), "one Python number"),
    "numpy_reduction_of_a_draw": (
        lambda x: x * crr.generator().random(2).sum(),
        "NumPy code that compile does not record",
    ),
    "float_result": (lambda x: 1.5, "returned a float"),
}


@pytest.mark.parametrize("name", REFUSED)
def test_refused_with_a_one_line_error(name):
    fn, message = REFUSED[name]
    f = cr.compile(fn)
    w.grad = None
    with pytest.raises(CompileError, match=message) as info:
        for v in ([1.0, -2.0], [-1.0, 3.0], [2.0, 0.5]):
            f(cr.tensor(np.array(v)))
    assert "\n" not in str(info.value)


def test_non_tensor_arguments_are_refused():
    with pytest.raises(TypeError, match="arguments must be Tensors, ndarrays or Python scalars"):
        cr.compile(lambda x: x)([1.0])


def _count_traces(fn):
    calls = []

    def counted(*args):
        calls.append(1)
        return fn(*args)

    return cr.compile(counted), calls


# name -> a list of calls (argument tuples) whose structure changes where a new trace is due
RETRACES = {
    "shape": [(cr.ones(3),)] * 3 + [(cr.ones(4),)] * 3 + [(cr.ones(3),)],
    "dtype": [(cr.ones(3),)] * 3 + [(cr.ones(3, dtype=np.float64),)] * 3,
    "requires_grad": [(cr.ones(3),)] * 3 + [(cr.ones(3, requires_grad=True),)] * 3,
    "python_scalar": [(cr.ones(3), 2.0)] * 3 + [(cr.ones(3), 3.0)] * 3,
}


@pytest.mark.parametrize("name", RETRACES)
def test_a_new_signature_traces_again_and_old_plans_are_kept(name):
    f, calls = _count_traces(lambda x, k=1.0: (x * k).sum())
    for args in RETRACES[name]:
        out = f(*args)
        assert (
            out.data.tobytes()
            == (args[0] * (args[1] if len(args) > 1 else 1.0)).sum().data.tobytes()
        )
    assert len(calls) == 4  # a trace and its check per signature; the last call replays


def test_grad_mode_keys_the_plan():
    f, calls = _count_traces(lambda x: (w * x).sum())
    x = cr.ones(2)
    for _ in range(3):
        assert f(x).data == -1.0
    with cr.no_grad():
        for _ in range(3):
            assert f(x).data == -1.0
    assert len(calls) == 4
