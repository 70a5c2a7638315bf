"""Run the benchmark suite: every workload, chainrule against hand-written NumPy and the peers.

    python benchmarks/run.py [--quick] [--only W1,W3] [--threads 1] [--no-write] [--keep-pin]

Implementations of a workload are timed interleaved in one process (float32, fixed seeds,
warm-up, median of rounds, all cores unless --threads); the table goes to stdout and, with
machine details, to benchmarks/RESULTS.md (RESULTS-1thread.md with --threads 1). Peers that
are not installed are skipped with a note.

The timing runs in a child process started with its own environment (`machine.timing_env`):
the thread count, and OpenBLAS free to pick the CPU's best kernel (the OPENBLAS_CORETYPE /
OPENBLAS_L2_SIZE pins are lifted for that process only; --keep-pin keeps them). The caller's
environment is never modified. PyTorch and JAX keep their own OpenMP wait policy; the load
average is measured before the child starts, and a run on a loaded machine says so in its
table and in RESULTS.md instead of slowing the peers' threads down to suit the load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import machine  # noqa: E402  (imports no NumPy: safe before the child starts)

KEYS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7", "W8", "W9", "W10"]
RESULTS = ROOT / "benchmarks"


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds (a few minutes)")
    ap.add_argument("--only", default="", help="comma-separated workload keys, e.g. W1,W3")
    ap.add_argument("--no-write", action="store_true", help="do not write the results file")
    ap.add_argument(
        "--output",
        type=Path,
        default=None,
        help="results file (default: benchmarks/RESULTS.md, or RESULTS-1thread.md with "
        "--threads 1)",
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="BLAS/OpenMP threads for every library (default: all cores)",
    )
    ap.add_argument(
        "--keep-pin",
        action="store_true",
        help="time with the environment's OpenBLAS kernel pin instead of lifting it",
    )
    ap.add_argument(
        "--machine",
        action="store_true",
        help="print the machine table (BLAS kernel, GEMM peaks) and run no workload",
    )
    args = ap.parse_args(argv)
    if args.output is None:
        name = "RESULTS-1thread.md" if args.threads == 1 else "RESULTS.md"
        args.output = RESULTS / name
    return args


def _keys(args: argparse.Namespace) -> set[str] | str:
    """The selected workload keys, or the error message."""
    keys = {k.strip().upper() for k in args.only.split(",") if k.strip()}
    if keys - set(KEYS):
        return f"run.py: unknown workload(s) {sorted(keys - set(KEYS))}; known: {KEYS}"
    if args.threads < 1:
        return f"run.py: --threads must be >= 1, got {args.threads}"
    return keys


def main(argv: list[str] | None = None) -> int:
    """Check the arguments, then time everything in a child process of its own environment."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse(argv)
    keys = _keys(args)
    if isinstance(keys, str):
        print(keys, file=sys.stderr)
        return 2
    env = machine.timing_env(os.environ, args.threads, args.keep_pin, machine.load())
    # the child runs in the repository root: a relative --output means the caller's directory
    child = [sys.executable, "-m", "benchmarks.run", *argv, "--output", str(args.output.resolve())]
    return subprocess.run(child, env=env, cwd=ROOT).returncode


def machine_rows() -> tuple[list[tuple[str, str]], float]:
    """The kernel this process runs, its GEMM peak, and the pinned kernel's for comparison."""
    kernel = machine.blas_kernel()
    peak = machine.gemm_peak()
    env, label = machine.pinned_env(os.environ)
    try:
        pinned = machine.probe(env)
        pinned_text = (
            f"{pinned['peak']:.0f} GFLOP/s with {label} ({machine.kernel_text(pinned['kernel'])})"
        )
    except (OSError, subprocess.CalledProcessError, ValueError) as exc:
        pinned_text = f"not measured ({exc})"
    lifted = os.environ.get(machine.LIFTED)
    m, k, n = machine.GEMM_SHAPE
    return [
        ("BLAS kernel of the timing process", machine.kernel_text(kernel)),
        ("OpenBLAS pin lifted for timing", lifted or "(none set, or --keep-pin)"),
        ("OpenMP wait policy (PyTorch's worker threads)", machine.wait_policy(os.environ)),
        (f"float32 GEMM {m}x{k}x{n} peak, best of 100", f"{peak:.0f} GFLOP/s (this process)"),
        ("the same GEMM, pinned kernel", pinned_text),
    ], peak


def load_warning(load_before: str, threads: int) -> str | None:
    """What a run on a loaded machine must say next to its numbers (None when quiet)."""
    if not machine.loaded(load_before, os.cpu_count()):
        return None
    advice = " Rerun on a quiet machine (or compare with --threads 1) before reading the targets."
    if threads > 1:
        advice = (
            f" With {threads} threads every library's parallel ops wait for descheduled workers "
            "(PyTorch's spinning OpenMP workers most), so the peer ratios are unreliable in "
            f"either direction.{advice}"
        )
    else:  # one thread: nothing waits on a worker, but every time is inflated
        advice = " One thread each: the ratios hold up better than the times; rerun quiet."
    return (
        f"The machine was loaded: load average {load_before} on {os.cpu_count()} cores before "
        f"the run.{advice}"
    )


def timing_main(argv: list[str]) -> int:
    """The timing process: NumPy, torch and the workloads are imported only here."""
    args = parse(argv)
    keys = _keys(args)
    assert not isinstance(keys, str)  # checked by main
    from benchmarks import report
    from benchmarks.harness import measure
    from benchmarks.workloads import ALL

    machine.configure(args.threads)
    load_before = os.environ.get(machine.LOAD, "unknown")  # measured by main, before the child
    warning = load_warning(load_before, args.threads)
    if warning:
        print(f"warning: {warning}", file=sys.stderr, flush=True)
    kernel_rows, peak = machine_rows()
    if args.machine:
        print("\n".join(f"{k}: {v}" for k, v in kernel_rows))
        return 0
    rounds, target = (5, 0.005) if args.quick else (21, 0.02)
    results = []
    t_start = time.perf_counter()
    for mod in ALL:
        if keys and mod.KEY not in keys:
            continue
        t0 = time.perf_counter()
        print(f"{mod.KEY} {mod.NAME} ...", file=sys.stderr, flush=True)
        wl = mod.build(args.quick)
        timings = {}
        if wl.impls:
            long = wl.rounds is not None
            timings = measure(wl.impls, wl.rounds or rounds, 0 if long else target, wl.warmup)
        results.append((wl, timings))
        print(report.workload_text(wl, timings, peak), flush=True)
        print(f"  ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t_start
    print(report.targets_text(results))
    if warning:
        print(f"warning: {warning}")
    if not args.no_write:
        info = [
            *machine.describe(),
            *kernel_rows,
            ("load average (1 min) before / after", f"{load_before} / {machine.load()}"),
        ]
        args.output.write_text(report.markdown(results, info, args, elapsed, peak, warning))
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if machine.LIFTED in os.environ:  # started by main() with the timing environment
        sys.exit(timing_main(sys.argv[1:]))
    sys.exit(main())
