"""What the numbers were measured on: CPU, cores, NumPy's BLAS kernel and its GEMM peak,
library versions, allocator.

Owns `timing_env` (the environment of the timing process: the machine's own best BLAS kernel,
the thread count, the OpenMP wait policy left to the libraries), `loaded` (was the machine
busy before the run), `configure` (give every library the same threads, once, before anything is
timed), `blas_kernel` and `gemm_peak` (what threadpoolctl reports and the float32 GEMM rate,
also run as `python -m benchmarks.machine` in a process of a given environment) and
`describe` (the machine table of RESULTS.md). Peers are imported only if installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PEERS = ["torch", "jax", "jaxlib", "autograd", "micrograd"]
ROOT = Path(__file__).resolve().parent.parent

# Variables that pin OpenBLAS to an older kernel than the CPU supports (set on this machine
# for compatibility: float32 GEMM runs ~234 GFLOP/s with the Haswell pin, ~415 without).
# PyTorch and JAX bring their own kernels, so timing NumPy-based engines under the pin
# compares them unfairly; the timing process runs without these.
PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# The pin compared against when the environment sets none (the one this machine ships with).
DEFAULT_PIN = {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "512"}
# Set in the timing process's environment: the pins it was started without ("" if none).
LIFTED = "CHAINRULE_BENCH_LIFTED"
# Set in the timing process's environment: the 1-minute load average before the run.
LOAD = "CHAINRULE_BENCH_LOAD"
LOADED_SHARE = 0.5  # a load average above this share of the cores marks a run as loaded
GEMM_SHAPE = (256, 784, 512)  # W1's first layer: (batch, in) @ (in, out)
THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def timing_env(
    environ: Mapping[str, str], threads: int, keep_pin: bool, load_before: str = "unknown"
) -> dict[str, str]:
    """A copy of `environ` for the timing process: the OpenBLAS pins removed (unless
    `keep_pin`), `threads` BLAS/OpenMP threads, and the load average measured before the run
    (`LOAD`, for the machine table). `environ` itself is not modified: BLAS reads these once,
    when NumPy is imported, so only a new process can change them.

    The OpenMP wait policy is left to each library (an OMP_WAIT_POLICY the caller sets is
    kept). PyTorch's workers spin between parallel regions by default; passive waiting made
    its two-thread small ops several times slower on a quiet machine (W2 1.15 ms against
    0.25 ms on one thread), a handicap in chainrule's favour. On a loaded machine spinning
    stalls instead (W6 in PyTorch: 25 s against 1 s), so a loaded run is flagged in the
    results (`loaded`) rather than timed under a policy that slows the peers down.
    """
    env = dict(environ)
    lifted = [] if keep_pin else [f"{k}={env.pop(k)}" for k in PINS if k in env]
    env.update(dict.fromkeys(THREAD_VARS, str(threads)))
    env[LIFTED] = ",".join(lifted)
    env[LOAD] = load_before
    return env


def wait_policy(environ: Mapping[str, str]) -> str:
    """The OpenMP wait policy the timing process runs under, in words."""
    given = environ.get("OMP_WAIT_POLICY")
    return f"{given} (set by the caller)" if given else "each library's default (unset)"


def loaded(load_before: str, cores: int | None) -> bool:
    """True when other processes kept at least half the cores busy before the run (1-minute
    load average above cores / 2): multi-threaded timings, PyTorch's spinning workers most,
    are then unreliable."""
    try:
        return float(load_before) > LOADED_SHARE * (cores or 1)
    except ValueError:  # "unknown": the platform has no load average
        return False


def pinned_env(environ: Mapping[str, str]) -> tuple[dict[str, str], str]:
    """The timing environment with the pins put back (those lifted, else DEFAULT_PIN), and a
    label saying which."""
    env = dict(environ)
    lifted = env.get(LIFTED, "")
    pins = dict(kv.split("=", 1) for kv in lifted.split(",") if kv) or DEFAULT_PIN
    env.update(pins)
    label = ", ".join(f"{k}={v}" for k, v in pins.items())
    return env, label + ("" if lifted else " (not set here; applied for comparison)")


def blas_kernel() -> dict[str, str]:
    """NumPy's BLAS as threadpoolctl reports it at run time (the kernel OpenBLAS chose)."""
    import numpy  # noqa: F401  (loads the BLAS library threadpoolctl inspects)

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return {"internal_api": "unknown (pip install threadpoolctl)"}
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            keys = ("internal_api", "version", "architecture", "num_threads", "threading_layer")
            return {k: str(info.get(k)) for k in keys}
    return {"internal_api": "none found"}


def kernel_text(k: Mapping[str, str]) -> str:
    if "architecture" not in k:
        return k.get("internal_api", "unknown")
    return (
        f"{k['internal_api']} {k['version']}, kernel {k['architecture']}, "
        f"{k['num_threads']} threads ({k['threading_layer']})"
    )


def gemm_peak(repeats: int = 100, shape: tuple[int, int, int] = GEMM_SHAPE) -> float:
    """GFLOP/s of float32 `(m, k) @ (k, n)` in NumPy, best of `repeats` (the hardware limit
    the step workloads are compared with)."""
    import numpy as np

    m, k, n = shape
    rng = np.random.default_rng(0)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    out = np.empty((m, n), np.float32)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - t0)
    return 2 * m * k * n / best / 1e9


def probe(env: Mapping[str, str]) -> dict[str, Any]:
    """The BLAS kernel and GEMM peak of a fresh process started with `env`."""
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.machine"],
        env=dict(env),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out))


def configure(threads: int) -> None:
    """The same thread count for everyone: PyTorch's intra-op pool is set explicitly (BLAS
    and OpenMP read OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, set by `timing_env`)."""
    if importlib.util.find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)


def load() -> str:
    """The 1-minute load average: above ~0.5 other processes share the cores, and
    multi-threaded BLAS suffers most (a descheduled worker stalls every GEMM)."""
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "unknown"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _blas() -> str:
    import numpy as np

    try:
        cfg = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        return f"{cfg.get('name')} {cfg.get('version')} ({cfg.get('openblas configuration', '')})"
    except Exception as exc:  # the config layout varies across NumPy versions
        return f"unknown ({exc})"


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "src"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).parent,
            check=True,
        ).stdout
        return out.stdout.strip() + (" (src/ modified)" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def describe() -> list[tuple[str, str]]:
    import numpy as np

    rows = [
        ("CPU", _cpu_model()),
        ("cores", str(os.cpu_count())),
        ("OS", f"{platform.system()} {platform.release()}, {' '.join(platform.libc_ver())}"),
        ("Python", platform.python_version()),
        ("NumPy", f"{np.__version__}, BLAS: {_blas()}"),
        ("chainrule", f"{_version('chainrule')} at commit {_git_commit()}"),
    ]
    rows += [(p, _version(p)) for p in PEERS]
    if importlib.util.find_spec("torch") is not None:
        import torch

        rows.append(("torch threads", str(torch.get_num_threads())))
    env = {
        k: v
        for k, v in os.environ.items()
        if k.startswith(("MALLOC_", "OMP_", "OPENBLAS_", "MKL_", "CHAINRULE_"))
    }
    rows.append(("environment", ", ".join(f"{k}={v}" for k, v in env.items()) or "(none set)"))
    return rows


if __name__ == "__main__":  # `probe`: one process's kernel and peak, as JSON on stdout
    print(json.dumps({"kernel": blas_kernel(), "peak": gemm_peak()}))
