"""`chainrule explain` through the real dispatcher: output, the --at three-way check, exit codes."""

from __future__ import annotations

import pytest

pytest.importorskip("sympy")

from chainrule.cli import main


def test_explain_prints_the_derivation(capsys):
    assert main(["explain", "(x^2+1)^3"]) == 0
    out = capsys.readouterr().out
    assert "Chain rule: let y = u³, u = x² + 1." in out
    assert out.rstrip().endswith("Result: dy/dx = 6x(x² + 1)²")


def test_at_checks_against_central_differences_and_autodiff(capsys):
    assert main(["explain", "(x^2+1)^3", "--at", "x=2"]) == 0
    out = capsys.readouterr().out
    assert "this derivation        300" in out
    assert "chainrule autodiff     300" in out
    assert "central differences    300.0000" in out
    assert "all three agree" in out


def test_program_in_chinese_with_two_variables(capsys):
    code = main(["explain", "z = (u+v)^2; u = x*y; v = x + y", "--wrt", "y", "--lang", "zh",
                 "--at", "x=2,y=3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "多元链式法则" in out and "代回 u = xy, v = x + y" in out
    assert "三者一致" in out


@pytest.mark.parametrize("fmt, marker", [("markdown", "- **Chain rule**"), ("latex", r"\textbf")])
def test_formats(capsys, fmt, marker):
    assert main(["explain", "sqrt(1+x^2)", "--format", fmt]) == 0
    assert marker in capsys.readouterr().out


def test_kink_disagreement_is_reported_with_exit_1(capsys):
    assert main(["explain", "relu(x)", "--at", "x=0"]) == 1
    out = capsys.readouterr().out
    assert "at the kink x = 0 we take 0" in out and "they DISAGREE" in out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["explain", "x +* 2"], "found '*' at column 4"),
        (["explain", "__import__('os').system('x')"], "unexpected character '_' at column 1"),
        (["explain", "x^2", "--at", "x"], "--at expects NAME=VALUE"),
        (["explain", "x*y", "--at", "x=1"], "--at needs a value for y"),
    ],
)
def test_bad_input_exits_2_with_the_message_not_a_traceback(capsys, argv, message):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
