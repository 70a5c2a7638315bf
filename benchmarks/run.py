"""Run the benchmark suite: every workload, chainrule against hand-written NumPy and the peers.

    python benchmarks/run.py [--quick] [--only W1,W3] [--no-write]

Implementations of a workload are timed interleaved in one process (float32, fixed seeds,
warm-up, median of rounds, all cores); the table goes to stdout and, with machine details, to
benchmarks/RESULTS.md. Peers that are not installed are skipped with a note.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

# PyTorch's OpenMP workers spin while waiting for work; on a 2-core machine shared with other
# processes a spinning worker that gets descheduled stalls every parallel op (we measured the
# W6 PyTorch run at 25 s with spinning, 1 s without). Passive waiting is the fair setting; it
# must be set before torch is imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

KEYS = ["W1", "W2", "W3", "W4", "W5", "W6", "W7"]


def parse(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer, shorter rounds (~1 minute)")
    ap.add_argument("--only", default="", help="comma-separated workload keys, e.g. W1,W3")
    ap.add_argument("--no-write", action="store_true", help="do not write benchmarks/RESULTS.md")
    ap.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "RESULTS.md")
    ap.add_argument(
        "--threads",
        type=int,
        default=os.cpu_count() or 1,
        help="BLAS/OpenMP threads for every library (default: all cores)",
    )
    return ap.parse_args(argv)


def _set_threads(n: int) -> None:
    """Before NumPy or torch is imported: their thread pools read these once."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(n)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    keys = {k.strip().upper() for k in args.only.split(",") if k.strip()}
    if keys - set(KEYS):
        print(
            f"run.py: unknown workload(s) {sorted(keys - set(KEYS))}; known: {KEYS}",
            file=sys.stderr,
        )
        return 2
    if args.threads < 1:
        print(f"run.py: --threads must be >= 1, got {args.threads}", file=sys.stderr)
        return 2
    _set_threads(args.threads)
    from benchmarks import machine, report
    from benchmarks.harness import measure
    from benchmarks.workloads import ALL

    machine.configure(args.threads)
    load_before = machine.load()
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
        print(report.workload_text(wl, timings), flush=True)
        print(f"  ({time.perf_counter() - t0:.1f} s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t_start
    print(report.targets_text(results))
    if not args.no_write:
        info = [
            *machine.describe(),
            ("load average (1 min) before / after", f"{load_before} / {machine.load()}"),
        ]
        args.output.write_text(report.markdown(results, info, args, elapsed))
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
