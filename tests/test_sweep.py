"""The one reverse sweep (`chainrule.backward.sweep` + `pullback`): its hooks see exactly what
eager backward computes, viz's per-edge gradients are eager's gradients to the bit, and
`compile` records the sweep through the same hooks (refusing what it cannot replay)."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule import viz
from chainrule.backward import SweepHooks, sweep, toposort
from chainrule.compile import CompileError
from chainrule.mode import _state


def _graph():
    """Broadcasting, a diamond, a leaf used twice by one op, a variadic op and a constant."""
    rng = np.random.default_rng(7)
    a = cr.tensor(rng.standard_normal((3, 4)), requires_grad=True, name="a")
    b = cr.tensor(rng.standard_normal(4), requires_grad=True, name="b")
    h = cr.tanh(a * b + 0.5)
    d = h * h + cr.exp(-h)
    s = cr.stack([d, a, h * a])
    loss = cr.logsumexp(s, axis=0).sum() + (b * b).sum()
    return loss, (a, b)


class _Log(SweepHooks):
    def __init__(self):
        self.nodes, self.edges = {}, []

    def node(self, node, g):
        self.nodes[id(node)] = np.array(g)

    def edge(self, node, argnum, input, g):
        self.edges.append((id(node), argnum, id(input), np.array(g)))


def test_hooks_see_every_node_and_edge_the_sum_of_the_edges_is_the_node_gradient():
    loss, leaves = _graph()
    order = toposort([loss])
    ids = {id(t) for t in order}
    log = _Log()
    got = sweep(order, [loss], [np.ones(())], retain_graph=True, accumulate=False, hooks=[log])
    assert set(log.nodes) == ids  # every node that requires grad has a gradient
    totals: dict[int, list[np.ndarray]] = {}
    for _, _, src, g in log.edges:
        totals.setdefault(src, []).append(g)
    for i, gs in totals.items():  # contributions summed in the order they came: bitwise
        acc = gs[0]
        for g in gs[1:]:
            acc = acc + g
        assert acc.tobytes() == log.nodes[i].tobytes()
    loss.backward()
    for t in leaves:
        assert t.grad.data.tobytes() == log.nodes[id(t)].tobytes() == got[id(t)].tobytes()
        assert t.grad.shape == t.shape


def test_viz_gradients_are_eager_gradients_bitwise():
    loss, leaves = _graph()
    model = viz.trace(loss).model
    node_of = {id(n.tensor): n for n in model.nodes}
    loss.backward()
    for t in leaves:
        assert node_of[id(t)].grad.tobytes() == t.grad.data.tobytes()
        assert t.grad.data is not node_of[id(t)].grad
    for e in model.edges:  # every edge into a node that requires grad carries its share
        src = model.nodes[e.src]
        assert (e.contribution is not None) == (
            src.requires_grad and model.nodes[e.dst].grad is not None
        )


def test_anomaly_mode_is_a_hook_naming_the_op():
    y = cr.tensor([0.0, 1.0], requires_grad=True)
    out = (cr.sqrt(y) * 2.0).sum()
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"^sqrt: backward .*\(2,\)"):
        out.backward()


def _outside():
    w = cr.tensor(2.0, requires_grad=True)
    h = w * 3.0  # built before the compiled function runs
    return lambda: (h * 2.0).backward()


def _retained():
    w = cr.tensor(2.0, requires_grad=True)

    def f():
        h = w * 3.0
        h.retain_grad()
        (h * h).backward()

    return f


def _second_order():
    w = cr.tensor(2.0, requires_grad=True)
    return lambda: (w * w).backward(create_graph=True)  # .grad as a graph: not replayable


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_outside, "graph built outside the compiled function"),
        (_retained, r"retain_grad\(\)"),
        (_second_order, r"backward\(create_graph=True\) into \.grad"),
    ],
    ids=["outside", "retain_grad", "create_graph"],
)
def test_compile_refuses_a_sweep_it_cannot_replay(make, message):
    with pytest.raises(CompileError, match=message):
        cr.compile(make())()
    assert _state.recorder is None  # the thread is not left tracing


def test_a_compiled_function_under_detect_anomaly_runs_eagerly_and_names_the_op():
    y = cr.tensor([0.0, 1.0], requires_grad=True)

    def f():
        (cr.sqrt(y) * 2.0).sum().backward()

    g = cr.compile(f)
    for _ in range(3):  # traced, checked, then replayed: no check of the values
        g()
    assert np.isinf(y.grad.data[0])
    with cr.detect_anomaly(), pytest.raises(FloatingPointError, match=r"^sqrt: backward"):
        g()
    assert not _state.hooked  # leaving anomaly mode leaves the apply fast path on again


def _consumers_of(x):
    """One node read by five consumers, made in one order and summed in another, so a sweep
    that went depth-first would add the node's five contributions in a different order than
    the one they were made in, and the last bits of its gradient would differ."""
    h = x * 1.0
    parts = [h * 3.0, h * 1e8, h * 1e-8, h * -1e8, h * 7.0]
    return (parts[3] + parts[1]) + parts[2] + parts[4] + parts[0]


def test_toposort_is_creation_order_and_every_sweep_adds_in_it():
    x = cr.tensor([1.25, -3.5], dtype=np.float64, requires_grad=True)
    out = _consumers_of(x)
    order = toposort([out])
    stamps = [t._clock for t in order]
    assert stamps == sorted(stamps) and order[0] is x and order[-1] is out
    position = {id(t): k for k, t in enumerate(order)}
    for t in order:  # a topological order: every input before its consumer
        for p in t.parents if t.op is not None else ():
            assert not isinstance(p, cr.Tensor) or position[id(p)] < position[id(t)]
    # the general loop (hooks: compile's recording, viz) goes by `order`; eager backward()
    # finds the same order by itself, from a heap of stamps
    seed = np.ones(2)
    hooked = sweep(order, [out], [seed], retain_graph=True, accumulate=False, hooks=[_Log()])
    out.backward(seed)
    assert hooked[id(x)].tobytes() == x.grad.data.tobytes()
    newest_first = (((7.0 + -1e8) + 1e-8) + 1e8) + 3.0  # h's consumers, last made first
    as_summed = (((-1e8 + 1e8) + 1e-8) + 7.0) + 3.0  # another order: other last bits
    assert newest_first != as_summed
    assert x.grad.data.tolist() == [newest_first] * 2


def test_a_consumer_made_before_its_input_changed_in_place_is_refused_not_reordered():
    """`add_` on a non-leaf makes it a newer node than a consumer made before the change, so
    creation order puts the input after its consumer; the version check refuses that graph
    before the consumer's stale gradient could be used."""
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    h = w * 2.0
    y = h * h  # saved h before the change
    h.add_(1.0)
    loss = (y + h).sum()
    with pytest.raises(RuntimeError, match="modified in place after the op ran"):
        loss.backward()
    assert w.grad is None  # nothing reached the leaf


def test_eager_backward_through_a_freed_subgraph_names_it_and_leaves_grads_alone():
    w = cr.tensor([1.0, 2.0], requires_grad=True)
    h = cr.exp(w)
    h.sum().backward()  # frees h's node
    w.grad = None
    with pytest.raises(RuntimeError, match=r"freed by an earlier backward\(\)"):
        (h * 3.0).sum().backward()
    assert w.grad is None


def test_copies_of_a_node_share_its_stamp_and_the_sweep_takes_both():
    """copy.copy and deepcopy keep a node's clock stamp; the heap must never fall through to
    comparing the two Tensors (elementwise `<`, an error for more than one element)."""
    import copy

    x = cr.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2.0
    twin = copy.copy(y)
    assert twin._clock == y._clock and twin is not y
    (y + twin * 3.0).sum().backward()
    assert x.grad.data.tolist() == [8.0, 8.0]
    x.grad = None
    y = x * 2.0
    deep = copy.deepcopy(y)  # with a copy of x of its own
    (y + deep * 3.0).sum().backward()
    assert x.grad.data.tolist() == [2.0, 2.0]


@pytest.mark.parametrize("numpy_version", ["2.4.0", "1.26.4"])
def test_the_plain_sweep_silences_division_only_inside_and_restores_the_callers_state(
    numpy_version, monkeypatch
):
    """sqrt at 0 has an infinite gradient, as in PyTorch, without a NumPy warning; the caller's
    error state (here: raise on division) holds again after the sweep. NumPy 1's errstate
    decorator is not reentrant, so there `_quietly` wraps the loop in a `with` block."""
    from chainrule import backward as B

    monkeypatch.setattr(np, "__version__", numpy_version)
    seen = []
    loop = B._quietly(lambda *args: seen.append(np.geterr()["divide"]))
    with np.errstate(divide="raise"):
        loop(1, 2)
        assert np.geterr()["divide"] == "raise"
        x = cr.tensor([0.0, 4.0], requires_grad=True)
        cr.sqrt(x).sum().backward()
        assert np.geterr()["divide"] == "raise"
    assert seen == ["ignore"]
    assert np.isinf(x.grad.data[0]) and x.grad.data[1] == 0.25
