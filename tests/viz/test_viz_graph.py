"""graph(): real SVG/PNG/DOT files with labels, values and gradients; the layout never overlaps."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import chainrule as cr
from chainrule import viz
from chainrule.viz.layout import layout

SVG = "{http://www.w3.org/2000/svg}"


def _svg_texts(path) -> list[str]:
    root = ET.parse(path).getroot()  # well-formed XML or this raises
    assert root.tag == f"{SVG}svg"
    return [t.text or "" for t in root.iter(f"{SVG}text")]


def _node_classes(path) -> list[str]:
    root = ET.parse(path).getroot()
    return [g.get("class") for g in root.iter(f"{SVG}g") if "node" in (g.get("class") or "")]


def test_seed_svg_has_labels_values_gradients_and_local_derivatives(seed, tmp_path):
    loss, _ = seed
    path = viz.graph(loss, backward=True).save(tmp_path / "seed.svg")
    texts = _svg_texts(path)
    for want in [
        "z1",
        "a1",
        "z2",
        "a2",
        "L",
        "w1",
        "sigmoid",
        "0.700",
        "0.668",
        "0.030",
        "grad -0.056",
        "grad -0.037",
        "grad -0.045",
        "grad -0.010",
        "grad 1.000",
    ]:
        assert want in texts, want
    assert "×0.668" in texts  # d(w2*a1)/dw2 = a1, on the edge w2 -> w2*a1
    assert "×0.800" in texts and "×-1.000" in texts
    classes = _node_classes(path)
    assert "node output" in classes and "node input" in classes and "node const" in classes


def test_before_backward_no_gradients_then_engine_grads(seed, tmp_path):
    loss, v = seed
    texts = _svg_texts(viz.graph(loss).save(tmp_path / "a.svg"))
    assert not any(t.startswith("grad") for t in texts)
    v["z2"].retain_grad()
    loss.backward(retain_graph=True)
    texts = _svg_texts(viz.graph(loss).save(tmp_path / "b.svg"))
    grads = [t for t in texts if t.startswith("grad")]
    assert "grad -0.037" in grads and "grad -0.056" in grads  # w2 (leaf), z2 (retained)
    assert len(grads) == 7  # six inputs + z2: other intermediates were not retained


def test_graph_backward_option_does_not_touch_grads(seed):
    loss, v = seed
    g = viz.graph(loss, backward=True)
    assert v["w1"].grad is None and v["z1"].grad is None
    assert g.model.node_of(v["z1"]).grad == pytest.approx(-0.009899, abs=1e-6)


def test_graph_after_freeing_backward_explains(seed):
    loss, _ = seed
    loss.backward()
    with pytest.raises(viz.GraphFreedError, match="retain_graph=True"):
        viz.graph(loss)


def test_png_is_a_real_picture(seed, tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    from matplotlib import image

    path = viz.graph(seed[0], backward=True).save(tmp_path / "seed.png", dpi=60)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = image.imread(str(path))
    assert pixels.shape[0] > 200 and pixels.shape[1] > 100
    assert (pixels[..., :3] < 0.5).any()  # dark text on the white page
    assert matplotlib is not None


def test_dot_is_valid(seed, tmp_path):
    dot_text = viz.graph(seed[0], backward=True).to_dot()
    assert dot_text.startswith('digraph "chainrule" {') and dot_text.rstrip().endswith("}")
    assert dot_text.count("->") == 16 and 'label="×0.668"' in dot_text
    assert "<B>z2</B>" in dot_text and "grad -0.056" in dot_text
    path = viz.graph(seed[0]).save(tmp_path / "g.dot")
    assert path.read_text(encoding="utf-8").startswith("digraph")
    exe = shutil.which("dot") or shutil.which("graphviz-pure")
    if exe:  # validate with a real Graphviz when one is installed
        out = subprocess.run([exe, "-Tsvg", str(path)], capture_output=True, timeout=60)
        assert out.returncode == 0, out.stderr
        ET.fromstring(out.stdout)


def test_repr_svg_and_bad_extension(seed, tmp_path):
    g = viz.graph(seed[0])
    assert g._repr_svg_().startswith("<?xml")
    with pytest.raises(ValueError, match=r"\.svg, \.png"):
        g.save(tmp_path / "graph.bmpx")


def test_matrix_nodes_show_shape_and_summary(mlp, tmp_path):
    model, x, y, loss_fn = mlp
    loss = loss_fn(model(x), y)
    texts = _svg_texts(viz.graph(loss, backward=True, module=model).save(tmp_path / "mlp.svg"))
    assert "0.weight" in texts and "(8, 4) float32" in texts and "(16, 8) float32" in texts
    assert any(t.startswith("mean ") for t in texts)
    assert any(t.startswith("grad mean ") for t in texts)


def test_groups_hook_and_module_collapse(mlp, tmp_path):
    model, x, y, loss_fn = mlp
    with viz.module_groups(model) as groups:
        loss = loss_fn(model(x), y)
    assert sorted(set(groups.values())) == [
        "0: Linear",
        "1: Tanh",
        "2: Linear",
        "3: ReLU",
        "4: Linear",
    ]
    full = viz.graph(loss, module=model)
    small = viz.graph(loss, module=model, groups=groups)
    # each Linear (weight, bias and its one fused op) collapses to one box
    assert len(small.scene.nodes) == len(full.scene.nodes) - 6
    texts = _svg_texts(small.save(tmp_path / "grouped.svg"))
    assert "0: Linear" in texts and "weight (8, 4)" in texts and "1 op, 2 parameters" in texts
    assert "forward" not in model[0].__dict__  # the recording hook is removed afterwards
    by_fn = viz.graph(loss, groups=lambda t: "layer" if t.op and t.op.name == "tanh" else None)
    assert sum(n.kind == "group" for n in by_fn.scene.nodes) == 1


def _overlap(a, b, pad=1.0) -> bool:
    return (abs(a.x - b.x) * 2 < a.w + b.w - pad) and (abs(a.y - b.y) * 2 < a.h + b.h - pad)


def _check_layout(lay, edges):
    boxes = lay.boxes + [r.label for r in lay.routes if r.label]
    for a, b in itertools.combinations(boxes, 2):
        assert not _overlap(a, b), (a, b)
    for (u, v), route in zip(edges, lay.routes):
        assert lay.boxes[u].y < lay.boxes[v].y  # inputs above their consumers
        ys = [p[1] for p in route.points]
        assert ys == sorted(ys)
    for b in boxes:
        assert b.x - b.w / 2 >= 0 and b.x + b.w / 2 <= lay.width
        assert b.y - b.h / 2 >= 0 and b.y + b.h / 2 <= lay.height


def test_layout_of_seed_and_mlp_has_no_overlaps(seed, mlp):
    for g in [viz.graph(seed[0], backward=True)]:
        _check_layout(g.scene.layout(), [(e.src, e.dst) for e in g.scene.edges])
    model, x, y, loss_fn = mlp
    g = viz.graph(loss_fn(model(x), y), backward=True, module=model)
    _check_layout(g.scene.layout(), [(e.src, e.dst) for e in g.scene.edges])


@pytest.mark.parametrize("seed_value", range(5))
def test_layout_random_dags(seed_value):
    rng = np.random.default_rng(seed_value)
    n = 25
    edges = [(u, v) for v in range(n) for u in range(v) if rng.random() < 0.12]
    sizes = [(float(rng.integers(30, 160)), float(rng.integers(20, 70))) for _ in range(n)]
    labels = [(40.0, 14.0) if rng.random() < 0.5 else None for _ in edges]
    _check_layout(layout(sizes, edges, labels), edges)


def test_tensor_without_graph_and_constants():
    c = cr.tensor([[1.0, 2.0], [3.0, 4.0]], name="C")
    g = viz.graph(c)
    assert [n.label for n in g.model.nodes] == ["C"] and "C" in g.to_svg()
    with pytest.raises(TypeError, match="chainrule Tensor"):
        viz.graph(np.ones(3))
