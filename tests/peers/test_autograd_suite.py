"""HIPS autograd's own tests, run against chainrule through a shim (`autograd_shim/`).

The `autograd` sdist is downloaded from PyPI at test time, pinned by version and sha256, into
pytest's cache (never committed); only its `tests/` folder is used. The shim maps
`autograd.numpy`, `autograd.grad` (and the other transforms) and `autograd.test_util`'s
`check_grads` onto chainrule. A case that needs something chainrule lacks (an op, a method,
complex numbers) is skipped with the reason and summarised at the end of the
run; every other case must pass: no wrong value. Offline, the test skips.
"""

from __future__ import annotations

import collections
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

VERSION = "1.9.1"
URL = (
    "https://files.pythonhosted.org/packages/9d/ac/"
    "4a8b58364ba865ab545251edbe475e5a35326814a5d274a2211d33ed8a5d/autograd-1.9.1.tar.gz"
)
SHA256 = "7818c5c69ddf9efb7da74097bd741a4c7920133f41966f68537223a15ef798bc"
SHIM = Path(__file__).parent / "autograd_shim"

# autograd's test files about NumPy's functions and the transforms: run.
RUN = [
    "test_binary_ops.py",
    "test_scalar_ops.py",
    "test_numpy.py",
    "test_systematic.py",
    "test_truediv.py",
    "test_graphs.py",
    "test_jacobian.py",
    "test_direct.py",
]
# The others test autograd's own machinery, which has no chainrule counterpart: not run.
NOT_RUN = {
    "test_core.py": "autograd.core's make_vjp",
    "test_vspaces.py": "autograd's vector spaces",
    "test_wrappers.py": "autograd's wrappers (checkpoint, tensor_jacobian_product, ...)",
    "test_misc.py": "autograd.misc (flatten, const_graph)",
    "test_tests.py": "autograd's own test helpers",
    "test_builtins.py": "autograd.builtins",
    "test_dict.py": "autograd's differentiable dict",
    "test_list.py": "autograd's differentiable list",
    "test_tuple.py": "autograd's differentiable tuple",
    "test_logic.py": "autograd.extend.primitive",
    "test_complex.py": "complex numbers (chainrule's gradients are real)",
    "test_linalg.py": "numpy.linalg (chainrule has none)",
    "test_fft.py": "numpy.fft (chainrule has none)",
    "test_scipy.py": "scipy",
    "test_ufunc_dispatch.py": "NumPy's ufunc dispatch to autograd's boxes",
    "test_performance.py": "timings",
}


# the skip reason of autograd's holomorphic_grad (autograd_shim/autograd/__init__.py)
COMPLEX_DIFFERENTIATION = "complex differentiation (chainrule's gradients are real)"


def _download() -> bytes:
    return download("autograd", VERSION, URL, SHA256)


@pytest.fixture(scope="module")
def autograd_tests(request: pytest.FixtureRequest, tmp_path_factory: Any) -> Path:
    """autograd's tests/ folder, extracted from the verified sdist into the cache."""
    cache = getattr(request.config, "cache", None)
    root = cache.mkdir(f"autograd-{VERSION}") if cache else tmp_path_factory.mktemp("autograd")
    tests = Path(root) / "tests"
    done = tests / ".sha256"
    if not done.exists() or done.read_text() != SHA256:
        prefix = f"autograd-{VERSION}/tests/"
        with tarfile.open(fileobj=io.BytesIO(_download()), mode="r:gz") as tar:
            members = [m for m in tar.getmembers() if m.name.startswith(prefix) and m.isfile()]
            for m in members:
                m.name = m.name[len(prefix) :]
            tar.extractall(tests, members=members, filter="data")
        done.write_text(SHA256)
    return tests


def _run_suite(tests: Path, report: Path) -> subprocess.CompletedProcess[str]:
    ini = report.with_name("pytest.ini")
    ini.write_text("[pytest]\n")  # autograd's tests under plain pytest, not our settings
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(SHIM), str(tests)]),
        "CHAINRULE_PEER_REPORT": str(report),
    }
    cmd = [sys.executable, "-m", "pytest", *RUN, "-c", str(ini), "--rootdir", str(tests)]
    cmd += ["-p", "chainrule_peer_plugin", "-p", "no:cacheprovider", "-q", "-W", "ignore"]
    return subprocess.run(
        cmd, cwd=tests, env=env, capture_output=True, text=True, timeout=600, check=False
    )


def test_autograd_suite_runs_on_chainrule_without_a_wrong_value(
    autograd_tests: Path, tmp_path: Path, peer_summary: list[str]
) -> None:
    report = tmp_path / "report.json"
    proc = _run_suite(autograd_tests, report)
    assert proc.returncode in (0, 1) and report.exists(), proc.stdout[-3000:] + proc.stderr
    results = json.loads(report.read_text())
    outcomes = collections.Counter(r["outcome"] for r in results)
    reasons = collections.Counter(r["reason"] for r in results if r["outcome"] == "skipped")
    partial = collections.Counter(
        n for r in results if r["outcome"] == "passed" for n in r["notes"]
    )
    summary = peer_summary
    # real-valued: every case but complex differentiation, which chainrule has no form of
    real = len(results) - sum(1 for r in results if r["reason"] == COMPLEX_DIFFERENTIATION)
    share = outcomes["passed"] / real
    summary.append(
        f"autograd {VERSION} ({len(RUN)} of its test files): {outcomes['passed']} passed, "
        f"{outcomes['skipped']} skipped, {outcomes['failed']} failed; "
        f"{outcomes['passed']} of {real} real-valued cases pass ({share:.1%})"
    )
    summary += [f"  passed, but {note}: {n}" for note, n in partial.most_common()]
    lacks = "chainrule has no numpy."
    missing = [(r[len(lacks) :], n) for r, n in reasons.most_common() if r.startswith(lacks)]
    summary.append(
        f"  skipped {sum(n for _, n in missing)} for NumPy functions chainrule lacks: "
        + ", ".join(f"{name} ({n})" for name, n in missing)
    )
    summary += [f"  skipped {n}: {r}" for r, n in reasons.most_common() if not r.startswith(lacks)]
    summary.append("  files not run (autograd's own machinery): " + ", ".join(NOT_RUN))
    failed = [f"{r['test']}: {r['message']}" for r in results if r["outcome"] == "failed"]
    assert not failed, "autograd's tests found wrong values:\n" + "\n".join(failed)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert share >= 0.9, f"issue 11 asks >= 90% of the real-valued cases, {share:.1%} pass"


def test_offline_skips_and_a_wrong_digest_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    check_offline_and_tampered(monkeypatch, _download, "autograd")
