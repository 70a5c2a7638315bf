"""The CLI without the optional extras (`pip install chainrule`, no `[all]`), and what the
training progress bar shows. Missing modules are simulated with `sys.modules[name] = None`,
which makes `import name` raise ModuleNotFoundError as if it were not installed."""

from __future__ import annotations

import json
import re
import sys

import pytest

from chainrule.cli import main

TRAIN = ["train", "--dataset", "moons", "--hidden", "8", "--epochs", "3", "--batch-size", "64"]


def _without(monkeypatch: pytest.MonkeyPatch, *names: str) -> None:
    """Make `names` unimportable, and forget the chainrule modules that imported them."""
    for name in list(sys.modules):
        if name.startswith("chainrule.symbolic") or any(
            name == n or name.startswith(n + ".") for n in names
        ):
            monkeypatch.delitem(sys.modules, name)
    for name in names:
        monkeypatch.setitem(sys.modules, name, None)


def _deduped(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if i == 0 or v != values[i - 1]]


def test_progress_bar_shows_each_epochs_own_test_accuracy(tmp_path, capsys) -> None:
    pytest.importorskip("tqdm")
    assert main([*TRAIN, "--out", str(tmp_path)]) == 0
    shown = re.findall(r"test_acc=(\d\.\d{3})", capsys.readouterr().err)
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    expected = [f"{r['test_accuracy']:.3f}" for r in history]
    # the last value on screen is the last epoch's, and every epoch's appears, in order
    assert shown and shown[-1] == expected[-1]
    assert _deduped(shown) == _deduped(expected)


def test_train_without_tqdm_or_matplotlib_prints_plain_epochs(
    tmp_path, capsys, monkeypatch
) -> None:
    _without(monkeypatch, "tqdm", "matplotlib")
    assert main([*TRAIN, "--out", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    history = json.loads((tmp_path / "metrics.json").read_text())["history"]
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert len(lines) == 3 and lines[-1].endswith(f"test_acc={history[-1]['test_accuracy']:.3f}")
    assert "no curves.png: pip install 'chainrule[all]'" in out
    assert not (tmp_path / "curves.png").exists()


def test_train_without_tqdm_quiet_prints_nothing(tmp_path, capsys, monkeypatch) -> None:
    _without(monkeypatch, "tqdm")
    assert main([*TRAIN, "--out", str(tmp_path), "--quiet"]) == 0
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "argv",
    [
        ["explain", "(x^2+1)^3"],
        ["explain", "sin(x)", "--at", "x=1"],
        ["backprop", "L = (w*x - t)^2", "--at", "w=1,x=2,t=0"],
    ],
)
def test_explain_without_sympy_says_which_extra_to_install(argv, capsys, monkeypatch) -> None:
    _without(monkeypatch, "sympy")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"chainrule {argv[0]}: derivations need sympy, which is not installed: "
        "pip install 'chainrule[all]'"
    ]


def test_a_missing_module_that_is_not_an_extra_is_not_hidden(monkeypatch) -> None:
    from chainrule.commands import explain

    def broken(args):
        raise ModuleNotFoundError("No module named 'yaml'", name="yaml")

    monkeypatch.setattr(explain, "run", broken)
    with pytest.raises(ModuleNotFoundError, match="yaml"):
        main(["explain", "x"])
