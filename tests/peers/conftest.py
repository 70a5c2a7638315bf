"""The peer suites: the shim is run in a subprocess only, never collected here (it defines a
package named `autograd`, which must not shadow a real autograd install in this process)."""

from __future__ import annotations

from typing import Any

import pytest

collect_ignore = ["autograd_shim"]

SUMMARY = pytest.StashKey[list[str]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[SUMMARY] = []


@pytest.fixture
def peer_summary(request: pytest.FixtureRequest) -> list[str]:
    """Lines a peer suite adds to the end of the pytest run's report."""
    return request.config.stash[SUMMARY]


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    lines = config.stash.get(SUMMARY, [])
    if lines:
        terminalreporter.write_sep("-", "peer test suites run on chainrule")
        for line in lines:
            terminalreporter.write_line(line)
