"""tinygrad's own test_ops.py (forward values and gradients against PyTorch), run on chainrule.

The tinygrad sdist is downloaded from PyPI at test time, pinned by version and sha256, into
pytest's cache (never committed); only `test/test_ops.py` is used. 0.12.0 is the last release
whose sdist ships its tests. `tinygrad_shim.py` stands in for tinygrad (a translation of names
and conventions onto chainrule), `tinygrad_plugin.py` installs it in a subprocess and marks the
tests of `tinygrad_expected.py` as strict expected failures, each with its reason: a listed test
that passes fails this test, and so does any unlisted failure. Skipped offline or without torch.
"""

from __future__ import annotations

import collections
import importlib.util
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sdist import check_offline_and_tampered, download

VERSION = "0.12.0"
URL = (
    "https://files.pythonhosted.org/packages/b2/8c/"
    "83bc0895d78d335bd3f5ceadb8a6750c1834f058a0f7e5ee763dc0d626bf/tinygrad-0.12.0.tar.gz"
)
SHA256 = "299cd53d9452b8689b36c7026c866b73d1e4a862ec53a8ea5bc2a412358c1bbf"
MEMBER = f"tinygrad-{VERSION}/test/test_ops.py"
HERE = Path(__file__).parent
MIN_PASSING = 0.90  # issue 11: at least 90% pass (measured: 377 of 410, 92.0%)


def _download() -> bytes:
    return download("tinygrad", VERSION, URL, SHA256)


@pytest.fixture(scope="module")
def test_ops(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Path:
    """tinygrad's test/test_ops.py, extracted from the verified sdist into the cache."""
    if importlib.util.find_spec("torch") is None:
        pytest.skip("torch is not installed: tinygrad's tests compare with PyTorch")
    cache = getattr(request.config, "cache", None)
    root = Path(cache.mkdir(f"tinygrad-{VERSION}") if cache else tmp_path_factory.mktemp("tg"))
    path, done = root / "test_ops.py", root / ".sha256"
    if not done.exists() or done.read_text() != SHA256:
        with tarfile.open(fileobj=io.BytesIO(_download()), mode="r:gz") as tar:
            member = tar.extractfile(MEMBER)
            assert member is not None, f"{MEMBER} is not in the sdist"
            path.write_bytes(member.read())
        done.write_text(SHA256)
    return path


def _run(test_ops: Path, report: Path) -> subprocess.CompletedProcess[str]:
    ini = report.with_name("pytest.ini")
    ini.write_text("[pytest]\n")  # tinygrad's tests under plain pytest, not our settings
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "CHAINRULE_PEER_REPORT": str(report),
    }
    cmd = [sys.executable, "-m", "pytest", str(test_ops), "-c", str(ini)]
    cmd += ["--rootdir", str(test_ops.parent), "-p", "tinygrad_plugin", "-p", "no:cacheprovider"]
    cmd += ["-q", "-W", "ignore"]
    return subprocess.run(
        cmd, cwd=report.parent, env=env, capture_output=True, text=True, timeout=900, check=False
    )


def test_tinygrad_test_ops_run_on_chainrule_without_a_wrong_value(
    test_ops: Path, tmp_path: Path, peer_summary: list[str]
) -> None:
    from tinygrad_expected import EXPECTED

    report = tmp_path / "report.json"
    proc = _run(test_ops, report)
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads(report.read_text())
    # a test's outcome: failed if any of its reports (subtests included) failed
    outcome: dict[str, str] = {}
    for r in results:
        if outcome.get(r["test"]) != "failed":
            outcome[r["test"]] = r["outcome"]
    counts = collections.Counter(outcome.values())
    total = len(outcome)
    kinds = collections.Counter(EXPECTED[t][0] for t, o in outcome.items() if o == "xfailed")
    peer_summary.append(
        f"tinygrad {VERSION} test_ops.py: {counts['passed']} of {total} passed "
        f"({counts['passed'] / total:.1%}), {counts['xfailed']} expected failures, "
        f"{counts['skipped']} skipped by tinygrad itself, {counts['failed']} failed"
    )
    peer_summary += [f"  expected failures, {kind}: {n}" for kind, n in kinds.most_common()]
    failed = [
        f"{r['test']}: {r['type']}: {r['message']}" for r in results if r["outcome"] == "failed"
    ]
    assert not failed, "tinygrad's tests failed (unlisted, or listed but passing):\n" + "\n".join(
        failed
    )
    assert proc.returncode == 0, proc.stdout[-3000:]
    stale = sorted(set(EXPECTED) - {t for t, o in outcome.items() if o == "xfailed"})
    assert not stale, f"tinygrad_expected.py lists tests that did not run: {stale}"
    assert counts["passed"] >= MIN_PASSING * total, peer_summary[-1 - len(kinds)]


def test_offline_skips_and_a_wrong_digest_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    check_offline_and_tampered(monkeypatch, _download, "tinygrad")
