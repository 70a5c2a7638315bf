"""Fetching a peer's sdist at test time, pinned by sha256, for the peer suites (autograd,
tinygrad): offline is a skip, a wrong digest a failure."""

from __future__ import annotations

import hashlib
import io
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest


def download(package: str, version: str, url: str, sha256: str) -> bytes:
    """The sdist's bytes, checked against the pinned digest."""
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data: bytes = response.read()
    except OSError as exc:  # URLError, timeouts, no route: offline
        pytest.skip(f"offline: could not download {package} {version} from PyPI ({exc})")
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        pytest.fail(f"{package}-{version}.tar.gz has sha256 {digest}, expected {sha256}")
    return data


def check_offline_and_tampered(
    monkeypatch: pytest.MonkeyPatch, fetch: Callable[[], bytes], package: str
) -> None:
    """`fetch` skips when the index cannot be reached and fails on bytes of another digest."""

    def offline(url: str, timeout: float) -> Any:
        raise urllib.error.URLError("no route to host")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    with pytest.raises(pytest.skip.Exception, match=f"offline: could not download {package}"):
        fetch()

    class Tampered(io.BytesIO):
        def __enter__(self) -> Tampered:
            return self

        def __exit__(self, *exc: object) -> None:
            pass

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout: Tampered(b"not it"))
    with pytest.raises(pytest.fail.Exception, match="has sha256"):
        fetch()
