"""mypy stays clean on src/chainrule, and Tensor's declared methods match the attached ones."""

import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import chainrule as cr
from chainrule.tensor import Tensor

ROOT = Path(__file__).resolve().parents[1]

# What a user's code relies on: operators and methods attached at runtime are typed as Tensor.
USAGE = """
from typing_extensions import assert_type
import chainrule as cr
from chainrule import Tensor

x = cr.tensor([[1.0, 2.0]], requires_grad=True)
assert_type(x + x, Tensor)
assert_type(2 * x - 1, Tensor)
assert_type(x @ x.T, Tensor)
assert_type(-x ** 2 / 3, Tensor)
assert_type(x[0], Tensor)
assert_type(x > 0, Tensor)
assert_type(x.sum(axis=1).mean(), Tensor)
assert_type(x.reshape(2, 1).exp(), Tensor)
x.sum(keepdims="yes")  # E: a str is not a bool
"""


@pytest.mark.slow  # about 7 s: a cold mypy run over the package
@pytest.mark.skipif(importlib.util.find_spec("mypy") is None, reason="mypy is not installed")
def test_mypy_is_clean_and_types_tensor_operators(tmp_path: Path) -> None:
    usage = tmp_path / "usage.py"
    usage.write_text(USAGE)
    cmd = [sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache")]
    # The package with the project's config, plus the usage file, in one run (one cold cache).
    result = subprocess.run(
        [*cmd, "src/chainrule", str(usage)], cwd=ROOT, capture_output=True, text=True
    )
    lines = result.stdout.splitlines()
    errors = [ln for ln in lines if ": error:" in ln]
    expected = [ln for ln in errors if ln.startswith(str(usage)) and '"keepdims"' in ln]
    assert len(expected) == 1, result.stdout + result.stderr  # the deliberate mistake is caught
    assert [ln for ln in errors if ln not in expected] == [], result.stdout + result.stderr


def _class_body_names(path: Path, name: str) -> set[str]:
    tree = ast.parse(path.read_text())
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == name)
    names = set()
    for node in cls.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    return names


def test_tensor_api_declares_exactly_what_composite_attaches() -> None:
    from chainrule.tensor_api import TensorMethods

    src = Path(cr.__file__).parent
    declared = _class_body_names(src / "tensor_api.py", "TensorMethods")
    in_class = _class_body_names(src / "tensor.py", "Tensor") | {"__slots__"}
    meta = {"__module__", "__qualname__", "__doc__", "__firstlineno__", "__static_attributes__"}
    # copyreg caches a slotted class's slot names on the class at its first copy or pickle
    meta.add("__slotnames__")
    attached = set(vars(Tensor)) - in_class - meta - set(Tensor.__slots__)
    assert declared == attached
    # The declarations reuse the very functions attached (where they are plain functions).
    for name in declared:
        stub = vars(TensorMethods)[name]
        if not name.startswith("__") and callable(stub):
            assert vars(Tensor)[name] is stub, name
