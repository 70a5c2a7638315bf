"""The benchmark suite's process hygiene: run.py times in a child process whose environment it
builds (OpenBLAS's kernel pin lifted, thread counts set), and never changes the caller's
environment; the target verdicts state their margins."""

from __future__ import annotations

import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import machine, report, run  # noqa: E402

PIN = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}


@pytest.mark.parametrize("policy", [None, "ACTIVE", "PASSIVE"])
@pytest.mark.parametrize("keep_pin", [False, True])
@pytest.mark.parametrize("threads", [1, 2])
def test_timing_env_is_a_copy_with_the_pin_lifted(
    keep_pin: bool, threads: int, policy: str | None
) -> None:
    given = {"PATH": "/bin", **PIN, **({"OMP_WAIT_POLICY": policy} if policy else {})}
    before = dict(given)
    env = machine.timing_env(given, threads, keep_pin, "0.73")
    assert given == before
    assert all(env[v] == str(threads) for v in machine.THREAD_VARS)
    # the peers' own wait policy: never set for them, an explicit choice of the caller kept
    assert env.get("OMP_WAIT_POLICY") == policy
    assert machine.wait_policy(env) == (
        f"{policy} (set by the caller)" if policy else "each library's default (unset)"
    )
    assert env[machine.LOAD] == "0.73"
    if keep_pin:
        assert all(env[k] == v for k, v in PIN.items()) and env[machine.LIFTED] == ""
    else:
        assert not set(PIN) & set(env)
        assert env[machine.LIFTED] == "OPENBLAS_CORETYPE=Haswell,OPENBLAS_L2_SIZE=512"
        pinned, label = machine.pinned_env(env)
        assert all(pinned[k] == v for k, v in PIN.items()) and "Haswell" in label


def test_bad_arguments_fail_in_the_caller_without_touching_its_environment(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = dict(os.environ)
    assert run.main(["--only", "W1,W99", "--no-write"]) == 2
    assert run.main(["--threads", "0", "--no-write"]) == 2
    err = capsys.readouterr().err
    assert "unknown workload(s) ['W99']" in err and "--threads must be >= 1, got 0" in err
    assert dict(os.environ) == before


def test_the_timing_process_runs_without_the_pin() -> None:
    """End to end: run.py reports the kernel and GEMM peak of its child, which started without
    the pin, and the pinned kernel's for comparison."""
    env = {**os.environ, **PIN}
    env.pop(machine.LIFTED, None)
    before = dict(os.environ)
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--machine", "--threads", "1"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    assert dict(os.environ) == before
    rows = dict(line.split(": ", 1) for line in out.splitlines())
    assert rows["OpenBLAS pin lifted for timing"] == (
        "OPENBLAS_CORETYPE=Haswell,OPENBLAS_L2_SIZE=512"
    )
    assert float(rows["float32 GEMM 256x784x512 peak, best of 100"].split()[0]) > 0
    assert "GFLOP/s with OPENBLAS_CORETYPE=Haswell" in rows["the same GEMM, pinned kernel"]
    if importlib.util.find_spec("threadpoolctl") is not None:
        assert "1 threads" in rows["BLAS kernel of the timing process"]
        openblas = rows["BLAS kernel of the timing process"].startswith("openblas")
        if openblas and platform.machine() in ("x86_64", "AMD64"):  # a core type it knows
            assert "kernel Haswell" in rows["the same GEMM, pinned kernel"]


@pytest.mark.parametrize(
    ("value", "bound", "cmp", "want"),
    [
        (0.9, 1.0, "<=", "met (10% to spare)"),
        (1.23, 1.0, "<=", "MISSED by 23%"),
        (1.8, 1.2, "<=", "MISSED by 50%"),
        (100.0, 50.0, ">=", "met (50% to spare)"),
        (25.0, 50.0, ">=", "MISSED by 100%"),
    ],
)
def test_verdict_states_the_margin(value: float, bound: float, cmp: str, want: str) -> None:
    assert report.verdict(value, bound, cmp) == want


@pytest.mark.parametrize(
    ("load", "cores", "want"),
    [
        ("0.42", 2, False),
        ("1.00", 2, False),
        ("1.05", 2, True),
        ("3.9", 8, False),
        ("4.1", 8, True),
        ("unknown", 2, False),
    ],
)
def test_a_run_is_loaded_when_half_the_cores_were_busy(load: str, cores: int, want: bool) -> None:
    assert machine.loaded(load, cores) is want


def test_a_loaded_run_says_so_above_its_targets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    assert run.load_warning("0.40", 2) is None
    warning = run.load_warning("3.50", 2)
    assert warning is not None and "load average 3.50 on 2 cores" in warning
    assert "spinning OpenMP workers" in warning
    one = run.load_warning("3.50", 1)
    assert one is not None and "spinning" not in one and "--threads 1" not in one
    args = run.parse(["--quick", "--no-write"])
    text = report.markdown([], [("cores", "2")], args, 1.0, None, warning)
    targets = text.index("## Targets")
    assert text.index("**Warning:** The machine was loaded") > targets
    assert "Warning" not in report.markdown([], [("cores", "2")], args, 1.0, None, None)
