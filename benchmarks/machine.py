"""What the numbers were measured on: CPU, cores, NumPy's BLAS, library versions, allocator.

Owns `configure` (give every library all cores, once, before anything is timed) and `describe`
(the machine table of RESULTS.md). Peers are imported only if installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import subprocess
from pathlib import Path

PEERS = ["torch", "jax", "jaxlib", "autograd", "micrograd"]


def configure(threads: int) -> None:
    """The same thread count for everyone: PyTorch's intra-op pool is set explicitly (BLAS
    and OpenMP read OPENBLAS_NUM_THREADS / OMP_NUM_THREADS, set by run.py)."""
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
