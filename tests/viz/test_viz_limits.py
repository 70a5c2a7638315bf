"""Drawing limits (issue 10): crossings counted exactly in O(E log^2 E), big graphs laid out in
linear memory, and past `MAX_POINTS` a one-line refusal before anything is allocated."""

from __future__ import annotations

import itertools
import subprocess
import sys
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import chainrule as cr
from chainrule import viz
from chainrule.cli import main
from chainrule.viz import layout as L


@given(st.lists(st.integers(0, 12), max_size=80))
def test_inversions_count_every_out_of_order_pair(values):
    brute = sum(a > b for i, a in enumerate(values) for b in values[i + 1 :])
    assert L._inversions(np.array(values, dtype=np.int64)) == brute


@given(st.integers(1, 6), st.data())
def test_crossings_equal_the_pairwise_definition(ranks, data):
    layers = [list(range(10 * r, 10 * r + data.draw(st.integers(1, 6)))) for r in range(ranks)]
    down = {
        v: data.draw(st.lists(st.sampled_from(layers[r + 1]), max_size=4, unique=True))
        for r in range(ranks - 1)
        for v in layers[r]
    }
    brute = 0
    for r in range(ranks - 1):
        pos = {v: i for i, v in enumerate(layers[r + 1])}
        ends = [(i, pos[w]) for i, v in enumerate(layers[r]) for w in down[v]]
        brute += sum((a - c) * (b - d) < 0 for (a, b) in ends for (c, d) in ends) // 2
    assert L._crossings(layers, down) == brute


def _no_overlaps_per_rank(lay):
    boxes = lay.boxes + [r.label for r in lay.routes if r.label]
    ys = np.array([b.y for b in boxes])
    for y in np.unique(ys):
        row = sorted((b.x - b.w / 2, b.x + b.w / 2) for b, by in zip(boxes, ys) if by == y)
        assert all(right <= left for (_, right), (left, _) in itertools.pairwise(row))


@pytest.mark.parametrize("seed_value", range(3))
def test_graphs_past_full_effort_still_never_overlap(seed_value):
    rng = np.random.default_rng(seed_value)
    n = 300
    edges = [(u, v) for v in range(n) for u in range(max(0, v - 60), v) if rng.random() < 0.04]
    sizes = [(float(rng.integers(30, 160)), float(rng.integers(20, 70))) for _ in range(n)]
    labels = [(40.0, 14.0) if rng.random() < 0.5 else None for _ in edges]
    lay = L.layout(sizes, edges, labels)
    assert sum(len(r.points) for r in lay.routes) > L.FULL_EFFORT  # the reduced-sweep regime
    _no_overlaps_per_rank(lay)
    for (u, v), route in zip(edges, lay.routes):
        assert lay.boxes[u].y < lay.boxes[v].y
        assert [p[1] for p in route.points] == sorted(p[1] for p in route.points)


def _program(n: int, shared: bool) -> cr.Tensor:
    """n statements: z_i = tanh(w_i z_(i-1) + b_i), or z_i = z_(i-1) w_i + x (x feeds all)."""

    def leaf(name, value):
        return cr.tensor(value, dtype=np.float64, requires_grad=True, name=name)

    x = leaf("x", 0.5)
    z = leaf("w1", 0.9) * x
    for i in range(2, n + 1):
        z = z * leaf(f"w{i}", 0.9) + x if shared else cr.tanh(leaf(f"w{i}", 0.9) * z + 0.1)
    return z


def test_1000_statements_feeding_one_input_everywhere_are_refused_in_bounded_memory(tmp_path):
    g = viz.graph(_program(1000, shared=True), backward=True)
    tracemalloc.start()
    try:
        with pytest.raises(viz.DrawingTooLarge) as info:
            g.save(tmp_path / "big.svg")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert str(info.value).count("\n") == 0
    assert "3000 boxes and 3998 edges need 2004998 layout points (limit 50000)" in str(info.value)
    assert peak < 20 * 2**20  # the rank count alone decides: nothing quadratic is allocated
    assert not (tmp_path / "big.svg").exists()
    assert "digraph" in g.save(tmp_path / "big.dot").read_text()  # DOT needs no layout


_DRAW_1000 = """
import tracemalloc
tracemalloc.start()
import sys, numpy as np, chainrule as cr
from chainrule import viz
z = cr.tensor(0.5, dtype=np.float64, requires_grad=True, name="x")
for i in range(1, 1001):
    w = cr.tensor(0.9, dtype=np.float64, requires_grad=True, name=f"w{i}")
    z = cr.tanh(w * z + 0.1)
g = viz.graph(z, backward=True)
g.save(sys.argv[1])
try:
    g.save(sys.argv[1] + ".png")
except viz.DrawingTooLarge as exc:
    print("png:", exc)
print("peak", tracemalloc.get_traced_memory()[1])
"""


def test_1000_statement_chain_draws_in_linear_memory(tmp_path):
    svg = tmp_path / "chain.svg"
    # not timed: a generous timeout only catches a return of the quadratic layout (> 120 s)
    proc = subprocess.run(
        [sys.executable, "-c", _DRAW_1000, str(svg)], capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr
    assert svg.read_text().count('class="node') == 1 + 1000 * 5  # x; w, *, 0.1, +, tanh
    assert "px a side a raster image can have; save it as .svg or .pdf" in proc.stdout
    assert not (tmp_path / "chain.svg.png").exists()
    # Python's and NumPy's allocations as tracemalloc sees them, not ru_maxrss: a forked child
    # inherits the parent's resident high-water mark, so a late test in a big suite read 785 MB
    peak = int(proc.stdout.split("peak ")[1])
    assert peak < 300 * 2**20  # was 3.4 GB before the layout was made linear


def test_cli_still_prints_the_trace_when_the_drawing_is_refused(tmp_path, capsys):
    n = 200  # x feeds every statement: about 80,000 layout points, past the limit
    expr = "; ".join(["z1 = w1*x"] + [f"z{i} = z{i - 1}*w{i} + x" for i in range(2, n + 1)])
    at = ",".join(["x=0.5"] + [f"w{i}=0.9" for i in range(1, n + 1)])
    big = "max_chars=10000,max_statements=300"  # past the typed-input defaults, within these
    rc = main(["backprop", expr, "--at", at, "--limit", big, "--graph", str(tmp_path / "g.svg")])
    out, err = capsys.readouterr()
    assert rc == 2 and "Gradients" in out and f"dz{n}/dx" in out
    assert err.startswith("chainrule backprop: error: --graph ") and err.count("\n") == 1
    assert "layout points (limit 50000)" in err and "Traceback" not in err
    assert not (tmp_path / "g.svg").exists()


def test_limit_is_a_parameter(monkeypatch):
    sizes, edges = [(40.0, 20.0)] * 3, [(0, 1), (1, 2), (0, 2)]
    assert len(L.layout(sizes, edges).boxes) == 3
    with pytest.raises(
        L.DrawingTooLarge, match=r"3 boxes and 3 edges need 8 layout points \(limit 7\)"
    ):
        L.layout(sizes, edges, max_points=7)
    monkeypatch.setattr(L, "MAX_POINTS", 7)  # the module's limit is read at each call
    with pytest.raises(L.DrawingTooLarge, match=r"\(limit 7\)"):
        viz.graph(_program(2, shared=True)).to_svg()
