"""pytest plugin for the tinygrad peer run (loaded with `-p tinygrad_plugin` in a subprocess).

It installs `tinygrad_shim` as `tinygrad` and the submodules test_ops.py imports, marks each
test listed in `tinygrad_expected.py` as a strict expected failure (a listed test that passes
fails the run, so the list cannot rot), and writes every test's outcome as JSON to the file
named by CHAINRULE_PEER_REPORT.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import pytest
import tinygrad_shim
from tinygrad_expected import ACCEPTS, ERROR_TYPE, EXPECTED, LACKS, SLOW

for _name in (
    "tinygrad",
    "tinygrad.helpers",
    "tinygrad.tensor",
    "tinygrad.device",
    "tinygrad.dtype",
):
    sys.modules[_name] = tinygrad_shim

# What each kind of expected failure may raise. A missing op or argument, or chainrule's own
# exception type for a bad input, never raises an AssertionError or test_ops.py's value
# mismatch (a bare Exception), so a listed test that starts computing a wrong value fails the
# run instead of staying "expected"; an input chainrule accepts fails as "X not raised".
_RAISES: dict[str, Any] = {
    LACKS: (NotImplementedError, AttributeError, TypeError, ValueError),
    ERROR_TYPE: (TypeError, ValueError, IndexError),
    ACCEPTS: AssertionError,
}

RESULTS: list[dict[str, Any]] = []


def _key(item: Any) -> str:
    """TestOps' tests by name, the other classes' as Class.name."""
    cls = item.cls.__name__ if item.cls else ""
    return item.name if cls == "TestOps" else f"{cls}.{item.name}"


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    for item in items:
        name = _key(item)
        if name in SLOW:
            item.add_marker(pytest.mark.skip(reason=f"too slow for the suite: {SLOW[name]}"))
        elif name in EXPECTED:
            kind, reason = EXPECTED[name]
            raises = _RAISES.get(kind)
            item.add_marker(
                pytest.mark.xfail(strict=True, reason=f"{kind}: {reason}", raises=raises)
            )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    outcome = yield
    report = outcome.get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        RESULTS.append(
            {
                "test": _key(item),
                "outcome": "xfailed"
                if hasattr(report, "wasxfail") and report.skipped
                else report.outcome,
                "message": str(call.excinfo.value)[:300] if call.excinfo else "",
                "type": call.excinfo.typename if call.excinfo else "",
            }
        )


def pytest_sessionfinish(session: Any) -> None:
    path = os.environ.get("CHAINRULE_PEER_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1)
