"""trace(): the seed 003 section 6.1 walk, sums over paths, agreement with the engine."""

from __future__ import annotations

import re

import numpy as np
import pytest

import chainrule as cr
from chainrule import viz

# Seed 003 section 6.1, as printed (3 decimals). The notes round each intermediate by hand
# (a2 = s(0.634) = 0.653 from z2 rounded to 0.634), so exact values may differ from the printed
# ones by up to 0.0006 in the third decimal: we compare within 1e-3, and exactly where the
# rounding agrees.
SEED_FORWARD = {"z1": 0.7, "a1": 0.668, "z2": 0.634, "a2": 0.653, "L": 0.030}
SEED_GRADS = {
    "a2": -0.247,
    "z2": -0.056,
    "w2": -0.037,
    "b2": -0.056,
    "a1": -0.045,
    "z1": -0.010,
    "w1": -0.010,
    "b1": -0.010,
}
SEED_EXACT = {
    "z2": "-0.056",
    "w2": "-0.037",
    "b2": "-0.056",
    "a1": "-0.045",
    "z1": "-0.010",
    "w1": "-0.010",
    "b1": "-0.010",
}


def _backward_lines(text: str) -> dict[str, str]:
    lines = text.split("Backward", 1)[1].splitlines()[1:]
    return {re.match(r"\s*dL/d(.+?) = ", s)[1]: s.strip() for s in lines}


def test_seed_trace_reproduces_the_notes(seed):
    loss, _ = seed
    tr = viz.trace(loss)
    lines = _backward_lines(tr.to_text())
    for name, want in SEED_GRADS.items():
        assert abs(tr.gradient(name) - want) <= 1e-3, (name, lines[name])
    for name, want in SEED_EXACT.items():
        assert lines[name].endswith(f"= {want}"), lines[name]
    text = tr.to_text().split("Backward")[0]
    forward = {s.split(" = ")[0].strip(): s for s in text.splitlines()}
    values = {n.label: float(n.value) for n in tr.forward}
    for name, want in SEED_FORWARD.items():
        assert abs(values[name] - want) <= 1e-3, forward[name]
    assert forward["z1"].strip() == "z1 = w1*x + b1 = 0.500*1.000 + 0.200 = 0.700"
    assert forward["a1"].strip() == "a1 = sigmoid(z1) = sigmoid(0.700) = 0.668"
    assert forward["L"].strip().endswith("= 0.030")


def test_seed_lines_show_every_chain_rule_product(seed):
    lines = _backward_lines(viz.trace(seed[0]).to_text())
    # dL/dz2 = dL/da2 . da2/dz2 = -0.246 x a2(1 - a2) = -0.246 x 0.654 x 0.346 = -0.056
    assert lines["z2"] == (
        "dL/dz2 = dL/da2 * da2/dz2 = -0.246 * a2*(1 - a2) = -0.246 * 0.654 * 0.346 = -0.056"
    )
    # dL/dw2 = dL/dz2 . dz2/dw2 = -0.056 x a1 = -0.056 x 0.668 = -0.037: the unnamed product
    # w2*a1 passes dL/dz2 on unchanged, so it has no line of its own, as in the notes
    assert lines["w2"] == "dL/dw2 = dL/dz2 * dz2/dw2 = -0.056 * a1 = -0.056 * 0.668 = -0.037"
    assert lines["a1"] == "dL/da1 = dL/dz2 * dz2/da1 = -0.056 * w2 = -0.056 * 0.800 = -0.045"
    assert lines["z1"].endswith("-0.045 * a1*(1 - a1) = -0.045 * 0.668 * 0.332 = -0.010")
    assert lines["w1"] == "dL/dw1 = dL/dz1 * dz1/dw1 = -0.010 * x = -0.010 * 1.000 = -0.010"
    assert "(w2*a1)" not in lines and "(w1*x)" not in lines and "(a2 - t)" in lines


def test_pass_through_nodes_keep_their_gradient_and_value(seed):
    tr = viz.trace(seed[0])
    assert float(tr.gradient("w2*a1")) == pytest.approx(float(tr.gradient("z2")), rel=1e-15)
    labels = [n.label for n in tr.forward]
    assert "w2*a1" not in labels and "w1*x" not in labels and "a2 - t" in labels


def test_only_unit_edges_pass_through():
    # u*v - w*v: the subtracted product has local derivative -1, so it keeps its line
    x, v, w = (cr.tensor(a, dtype=np.float64, requires_grad=True, name=n) for a, n in
               [(0.5, "x"), (2.0, "v"), (3.0, "w")])  # fmt: skip
    z = x * v - w * v
    z.name = "z"
    y = cr.sin(z)
    y.name = "y"
    lines = _backward_lines(viz.trace(y).to_text().replace("dy/d", "dL/d"))
    assert lines["x"].startswith("dL/dx = dL/dz * dz/dx = ")
    assert lines["w"].startswith("dL/dw = dL/d(w*v) * d(w*v)/dw = ")
    assert "(w*v)" in lines and "(x*v)" not in lines
    assert lines["v"].startswith("dL/dv = dL/dz * dz/dv + dL/d(w*v) * d(w*v)/dv = ")


def test_seed_trace_order_is_reverse_topological(seed):
    order = [s.node.label for s in viz.trace(seed[0]).steps]
    assert order[0] == "L"
    pos = {name: order.index(name) for name in ["a2", "z2", "w2", "b2", "a1", "z1", "w1", "b1"]}
    assert pos["a2"] < pos["z2"] < pos["a1"] < pos["z1"] < pos["w1"]
    assert pos["z2"] < pos["w2"] and pos["z2"] < pos["b2"] and pos["z1"] < pos["b1"]


def test_trace_gradients_equal_the_engine(seed):
    loss, v = seed
    tr = viz.trace(loss)
    loss.backward()
    for name in ["x", "w1", "b1", "w2", "b2", "t"]:
        assert tr.gradient(name) == pytest.approx(v[name].grad.item(), rel=1e-12)
    assert list(tr.inputs) == ["t", "w2", "b2", "w1", "b1", "x"] or set(tr.inputs) == set(v) - {
        "z1",
        "a1",
        "z2",
        "a2",
    }


def test_diamond_sums_over_paths():
    x = cr.tensor(0.7, dtype=np.float64, requires_grad=True, name="x")
    y = x * x + cr.sin(x)
    y.name = "y"
    tr = viz.trace(y)
    step = next(s for s in tr.steps if s.node.label == "x")
    assert len(step.terms) == 3  # x*x uses x twice, sin(x) once
    parts = [float(t.contribution) for t in step.terms]
    assert sum(parts) == pytest.approx(float(step.grad))
    assert float(step.grad) == pytest.approx(2 * 0.7 + np.cos(0.7), rel=1e-12)
    line = tr.to_text().splitlines()[-1].strip()
    assert line.startswith("dy/dx = dy/d(x*x) * d(x*x)/dx + dy/d(x*x) * d(x*x)/dx + dy/d(sin(x))")
    assert "1.000 * x + 1.000 * x + 1.000 * cos(x)" in line
    assert line.endswith("0.700 + 0.700 + 0.765 = 2.165")


def test_shared_intermediate_gets_one_term_per_consumer():
    x = cr.tensor(0.3, dtype=np.float64, requires_grad=True, name="x")
    u = 2 * x
    u.name = "u"
    y = u * u + cr.exp(u)
    y.name = "y"
    tr = viz.trace(y)
    step = next(s for s in tr.steps if s.node.label == "u")
    assert sorted(t.consumer.label for t in step.terms) == ["exp(u)", "u*u", "u*u"]
    assert float(step.grad) == pytest.approx(2 * 0.6 + np.exp(0.6), rel=1e-12)


def test_trace_leaves_grads_alone_and_works_after_retained_backward(seed):
    loss, v = seed
    viz.trace(loss)
    assert v["w1"].grad is None
    loss.backward(retain_graph=True)
    g = v["w1"].grad.item()
    assert viz.trace(loss).gradient("w1") == pytest.approx(g)
    assert v["w1"].grad.item() == g  # not accumulated twice


def test_trace_after_freeing_backward_explains_retain_graph(seed):
    loss, _ = seed
    loss.backward()
    with pytest.raises(viz.GraphFreedError, match="retain_graph=True"):
        viz.trace(loss)


def test_non_scalar_output_needs_a_gradient():
    x = cr.tensor([1.0, 2.0], requires_grad=True, name="x")
    y = x * 3
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        viz.trace(y)
    with pytest.raises(ValueError, match="gradient has shape"):
        viz.trace(y, gradient=[1.0, 1.0, 1.0])
    tr = viz.trace(y, gradient=[1.0, 2.0])
    assert tr.gradient("x").tolist() == [3.0, 6.0]


def test_mlp_trace_matches_engine_gradients(mlp):
    model, x, y, loss_fn = mlp
    loss = loss_fn(model(x), y)
    loss.name = "loss"
    tr = viz.trace(loss, module=model)
    loss.backward()
    for name, p in model.named_parameters():
        np.testing.assert_allclose(tr.gradient(name), p.grad.data, rtol=1e-6, atol=1e-9)
    text = tr.to_text()
    assert "dloss/d0.weight" in text and "@" in text  # matrix products written as such


def test_markdown_and_latex(seed):
    tr = viz.trace(seed[0])
    md = tr.to_markdown()
    assert "| gradient | chain rule | value |" in md
    assert "| `dL/dz2` | `dL/da2 * da2/dz2 = -0.246 * a2*(1 - a2)" in md
    assert "**-0.056** |" in md
    tex = tr.to_latex()
    assert tex.startswith("\\begin{align*}") and tex.rstrip().endswith("\\end{align*}")
    assert (
        r"\frac{\partial L}{\partial z_{2}} &= \frac{\partial L}{\partial a_{2}} \times "
        r"\frac{\partial a_{2}}{\partial z_{2}}"
    ) in tex
    assert r"a_{2} \cdot (1 - a_{2})" in tex
    assert tex.count("&=") == len(tr.steps)


def test_digits_and_gradient_lookup(seed):
    tr = viz.trace(seed[0], digits=5)
    assert "= -0.05581" in tr.to_text()
    with pytest.raises(KeyError, match="known: L"):
        tr.gradient("nope")
