"""The timing harness: a workload is a set of implementations of one task, timed interleaved.

Owns `Impl`, `Workload`, `measure` (round-robin over the implementations, median of rounds,
minor page faults per call) and `peak_bytes` (tracemalloc peak of one call). Knows nothing
about any particular workload or peer library.
"""

from __future__ import annotations

import gc
import math
import resource
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Peers that add seconds of set-up (JAX compiles, autograd traces) and no target: --quick
# leaves them out.
QUICK_SKIP = ("autograd", "jax", "jax-eager", "jax-jit")


@dataclass
class Impl:
    """One implementation of a workload: `step()` does one unit of work (a training step...)."""

    name: str
    step: Callable[[], Any]
    kind: str = "peer"  # "chainrule", "numpy" (the hand-written floor), "torch" or "peer"
    note: str = ""


@dataclass
class Workload:
    """A task, its implementations and how to report a call: `scale` converts seconds per call
    into `unit` (1e3 for ms/step; 1e6 / 1000 for us per op of a 1000-op chain)."""

    key: str
    name: str
    unit: str
    scale: float
    impls: list[Impl]
    notes: list[str] = field(default_factory=list)
    extras: Callable[[dict[str, float]], list[str]] | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # read by the targets
    rounds: int | None = None  # None: the suite's default; long workloads ask for fewer
    warmup: int = 3
    flops: float | None = None  # floating-point operations per call, for GFLOP/s vs the peak


@dataclass
class Timing:
    median: float  # seconds per call
    best: float  # the fastest sample, seconds per call
    spread: float  # (p75 - p25) / median
    faults: float  # minor page faults per call
    calls: int


def _warm(step: Callable[[], Any], calls: int, budget: float = 0.5) -> float:
    """Call `step` up to `calls` times (stopping once `budget` seconds have passed); return
    the duration of the last call (0 if none)."""
    t_end = time.perf_counter() + budget
    one = 0.0
    for _ in range(calls):
        t0 = time.perf_counter()
        step()
        one = time.perf_counter() - t0
        if t0 + one > t_end:
            break
    return one


def measure(impls: list[Impl], rounds: int, target: float, warmup: int = 3) -> dict[str, Timing]:
    """Time every impl in `rounds` interleaved rounds (order rotated each round).

    Each sample is the mean over `inner` back-to-back calls, `inner` chosen so a sample takes
    about `target` seconds (target 0: one call per sample); the result is the median sample.
    The machine may be shared, so `best` (the fastest sample) is kept as well.
    """
    inner = {}
    for impl in impls:
        one = _warm(impl.step, warmup)
        n = math.ceil(target / one) if target and one else 1
        inner[impl.name] = max(1, min(100_000, n))
    samples: dict[str, list[float]] = {impl.name: [] for impl in impls}
    faults = dict.fromkeys(inner, 0)
    for r in range(rounds):
        k = r % len(impls)
        for impl in impls[k:] + impls[:k]:
            n = inner[impl.name]
            gc.collect()
            f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            t0 = time.perf_counter()
            for _ in range(n):
                impl.step()
            dt = time.perf_counter() - t0
            faults[impl.name] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0
            samples[impl.name].append(dt / n)
    out = {}
    for name, s in samples.items():
        q = statistics.quantiles(s, n=4) if len(s) > 1 else [s[0]] * 3
        med = statistics.median(s)
        calls = inner[name] * rounds
        out[name] = Timing(med, min(s), (q[2] - q[0]) / med, faults[name] / calls, calls)
    return out


def peak_bytes(step: Callable[[], Any]) -> int:
    """Peak bytes allocated during one call above what was live before it (tracemalloc).

    NumPy reports its array buffers to tracemalloc, so this counts every temporary array of
    the step; the parameters and data that live across steps are not counted.
    """
    step()  # steady state: lazily created buffers and gradients exist
    gc.collect()
    tracemalloc.start()
    try:
        base, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        step()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - base
