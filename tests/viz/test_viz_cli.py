"""`chainrule backprop`: trace and gradients on stdout, the drawing on disk, one-line errors."""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest

from chainrule.cli import main

pytest.importorskip("sympy")

AT = "x=1,w1=0.5,b1=0.2,w2=0.8,b2=0.1,t=0.9"
NESTED = "L = 0.5*(sigmoid(w2*sigmoid(w1*x+b1)+b2) - t)^2"
PROGRAM = "z1 = w1*x + b1; a1 = sigmoid(z1); z2 = w2*a1 + b2; a2 = sigmoid(z2); L = 0.5*(a2 - t)^2"


def test_backprop_nested_expression(tmp_path, capsys):
    svg = tmp_path / "graph.svg"
    assert main(["backprop", NESTED, "--at", AT, "--graph", str(svg)]) == 0
    out = capsys.readouterr().out
    assert "Forward" in out and "Backward" in out and "Gradients" in out
    grads = out.split("Gradients", 1)[1]
    for line in [
        "dL/dx  = -0.005",
        "dL/dw1 = -0.010",
        "dL/db1 = -0.010",
        "dL/dw2 = -0.037",
        "dL/db2 = -0.056",
        "dL/dt  = 0.246",
    ]:
        assert line in grads
    assert grads.index("dL/dx") < grads.index("dL/dt")  # inputs in --at order
    assert f"wrote {svg}" in out
    texts = [t.text for t in ET.parse(svg).getroot().iter("{http://www.w3.org/2000/svg}text")]
    assert "L" in texts and "grad -0.037" in texts
    assert "-1" not in texts and "-t" not in texts  # a2 - t is one sub op
    assert "  v2 = sigmoid(v1 + b2) - t = sigmoid(0.535 + 0.100) - 0.900 = -0.246" in out
    assert "  dL/dw1 = dL/d(w1*x + b1) * d(w1*x + b1)/dw1 = -0.010 * x = " in out


def test_backprop_program_names_the_intermediates(tmp_path, capsys):
    assert main(["backprop", PROGRAM, "--at", AT, "--graph", str(tmp_path / "g.png")]) == 0
    out = capsys.readouterr().out
    assert (
        "dL/dz2 = dL/da2 * da2/dz2 = -0.246 * a2*(1 - a2) = -0.246 * 0.654 * 0.346 = -0.056" in out
    )
    assert "dL/dz1 = dL/da1 * da1/dz1 = -0.045 * a1*(1 - a1)" in out
    assert (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


def test_backprop_program_reads_as_typed_like_the_seed(tmp_path, capsys):
    # Seed 003 section 6.1: operands in the order typed, a2 - t one subtraction, dz2/dw2 = a1.
    assert main(["backprop", PROGRAM, "--at", AT, "--graph", str(tmp_path / "g.dot")]) == 0
    out = capsys.readouterr().out
    for line in [
        "z1 = w1*x + b1 = 0.500*1.000 + 0.200 = 0.700",
        "z2 = w2*a1 + b2 = 0.800*0.668 + 0.100 = 0.635",
        "a2 - t = 0.654 - 0.900 = -0.246",
        "L = 0.5*(a2 - t)^2 = 0.5*(0.654 - 0.900)^2 = 0.030",
        "dL/dw2 = dL/dz2 * dz2/dw2 = -0.056 * a1 = -0.056 * 0.668 = -0.037",
        "dL/da1 = dL/dz2 * dz2/da1 = -0.056 * w2 = -0.056 * 0.800 = -0.045",
        "dL/dw1 = dL/dz1 * dz1/dw1 = -0.010 * x = -0.010 * 1.000 = -0.010",
        "dL/dt = dL/d(a2 - t) * d(a2 - t)/dt = -0.246 * -1 = -0.246 * -1.000 = 0.246",
    ]:
        assert "\n  " + line + "\n" in out, line
    assert "-1*" not in out and "+ -" not in out and "w2*a1 =" not in out
    dot = (tmp_path / "g.dot").read_text()
    assert "<B>a2 - t</B>" in dot and "<I>sub</I>" in dot
    assert "<B>-1</B>" not in dot and "<B>-t</B>" not in dot  # no -1 constant, no negation node


@pytest.mark.parametrize("fmt, marker", [("markdown", "| gradient |"), ("latex", "align*")])
def test_backprop_formats(fmt, marker, capsys):
    assert main(["backprop", "y = x^2 + sin(x)", "--at", "x=2", "--format", fmt]) == 0
    assert marker in capsys.readouterr().out


@pytest.mark.parametrize(
    "expr, at, message",
    [
        ("x^2 +", "x=1", "cannot read EXPR"),
        ("x*y", "x=1", "no value for y"),
        ("x*y", "x=1,y=a", "is not a number"),
        ("x*y", "x=1,y", "expected NAME=VALUE"),
        ("x", "x=1,z=2", "does not use"),
        ("u = 2*x; y = u^2", "x=1,u=3", "defined in EXPR"),
    ],
)
def test_backprop_bad_input_exits_2_with_one_line(expr, at, message, capsys):
    assert main(["backprop", expr, "--at", at]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_backprop_bad_graph_extension(tmp_path, capsys):
    assert main(["backprop", "x^2", "--at", "x=1", "--graph", str(tmp_path / "g.xyz")]) == 2
    assert "use .svg" in capsys.readouterr().err
