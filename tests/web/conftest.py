"""Fixtures for the playground: an API client, a live server on a free port, a headless browser.

Browser tests need Playwright and a Chromium from the operating system (``apt-get install
chromium``; Playwright cannot download its own here); without them they skip and say why.
Set CHAINRULE_SCREENSHOTS=docs/playground to refresh the screenshots in the docs.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

try:  # without the web extra there is no playground to test (the rest of the suite still runs)
    import sympy  # noqa: F401
    from starlette.testclient import TestClient

    from chainrule.web.app import create_app, hosts_for
except ImportError:
    collect_ignore_glob = ["test_*.py"]

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
BUDGET_S = 3.0  # the hostile-input tests rely on this budget to cut a slow derivation short


@pytest.fixture(scope="session")
def budget() -> float:
    return BUDGET_S


@pytest.fixture(scope="session")
def client() -> Iterator[Any]:
    with TestClient(create_app({"testserver"}, budget=BUDGET_S), base_url="http://testserver") as c:
        yield c


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """The playground served by uvicorn on 127.0.0.1 in a thread: its base URL."""
    import uvicorn

    port = _free_port()
    app = create_app(hosts_for("127.0.0.1", port), budget=BUDGET_S)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the playground server did not start")
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def _chromium() -> str | None:
    found = [p for p in CHROMIUM_PATHS if Path(p).exists()]
    return found[0] if found else shutil.which("chromium")


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    path = _chromium()
    if path is None:
        pytest.skip("no Chromium found (apt-get install chromium); browser tests skipped")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(params=[(1280, 800), (390, 844)], ids=["desktop", "phone"])
def viewport(request: pytest.FixtureRequest) -> tuple[int, int]:
    size: tuple[int, int] = request.param
    return size


@pytest.fixture
def page(browser: Any, live_server: str) -> Iterator[Any]:
    """A fresh desktop page on the playground; console errors and page errors fail the test."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.base = live_server  # type: ignore[attr-defined]
    pg.errors = errors  # type: ignore[attr-defined]
    yield pg
    context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: $CHAINRULE_SCREENSHOTS (docs/playground) or a temporary folder."""
    target = os.environ.get("CHAINRULE_SCREENSHOTS")
    out = Path(target) if target else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    return out
