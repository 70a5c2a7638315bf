"""pytest plugin for the peer run: a case that needs what chainrule lacks becomes a skip
with the reason; every test's outcome, reason and notes (what it left out) are written as
JSON to the file named by CHAINRULE_PEER_REPORT, which tests/peers reads back."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest
from autograd import Unsupported
from autograd.test_util import NOTES

# autograd's tests whose expectation chainrule deliberately does not share, with the reason
DIFFERENT = {
    "test_graphs.py::test_assignment_raises_error": (
        "writing into a traced array raises RuntimeError naming the problem (autograd: TypeError)"
    ),
}


def _lacks(exc: BaseException) -> str | None:
    """The reason a case cannot run on chainrule, or None for a real failure."""
    text = str(exc)
    if isinstance(exc, Unsupported):
        return text
    if isinstance(exc, AttributeError) and "'Tensor' object has no attribute" in text:
        return f"chainrule's Tensor has no method {text.split()[-1]}"
    if isinstance(exc, AttributeError) and text.startswith("module 'numpy' has no attribute"):
        return f"autograd's own addition to numpy: {text.split()[-1]}"
    if isinstance(exc, TypeError):
        if text.startswith("unsupported operand type(s) for") and "'Tensor'" in text:
            return f"chainrule's Tensor has no operator {text.split(':')[0].split()[-1]}"
        if "got an unexpected keyword argument" in text:
            return f"chainrule's {text.split('(')[0]} has no keyword {text.split()[-1]}"
        if "f must return a Tensor, got" in text:
            return f"chainrule differentiates Tensor outputs, not {text.split()[-1]}s"
    return None


def _no_silent_detach() -> None:
    """NumPy turning a Tensor that is being differentiated into a plain array (np.asarray
    inside some NumPy function) would lose its gradient silently: make it a reported case."""
    import chainrule as cr

    plain = cr.Tensor.__array__

    def guarded(self: Any, *args: Any, **kwargs: Any) -> Any:
        if self.requires_grad and cr.is_grad_enabled():
            raise Unsupported("NumPy would convert a Tensor being differentiated to an array")
        return plain(self, *args, **kwargs)

    cr.Tensor.__array__ = guarded  # type: ignore[method-assign]


def pytest_configure(config: Any) -> None:
    _no_silent_detach()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: Any, call: Any) -> Any:
    if call.when == "setup":
        NOTES.clear()
    outcome = yield
    report = outcome.get_result()
    if call.when != "call" and (call.when != "setup" or report.passed):
        return
    if call.excinfo is not None:
        reason = DIFFERENT.get(item.nodeid) or _lacks(call.excinfo.value)
        if reason is not None:
            report.outcome = "skipped"
            report.longrepr = (str(item.path), item.location[1], f"Skipped: {reason}")
    RESULTS.append(
        {
            "test": item.nodeid,
            "outcome": report.outcome,
            "reason": report.longrepr[2].removeprefix("Skipped: ")
            if report.skipped and isinstance(report.longrepr, tuple)
            else "",
            "message": str(call.excinfo.value)[:500] if report.failed and call.excinfo else "",
            "notes": sorted(set(NOTES)),
        }
    )


RESULTS: list[dict[str, Any]] = []


def pytest_sessionfinish(session: Any) -> None:
    path = os.environ.get("CHAINRULE_PEER_REPORT")
    if path:
        with open(path, "w") as f:
            json.dump(RESULTS, f, indent=1)
