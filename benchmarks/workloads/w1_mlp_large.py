"""W1 mlp-large: one SGD step of MLP 784-512-512-10 (ReLU), batch 256, softmax cross-entropy.

Large enough that BLAS should dominate: besides time, it reports the GFLOP/s each library
achieves against the GEMM peak and against NumPy's rate on the step's own GEMMs, and the peak
memory of a step against NumPy's.
"""

from __future__ import annotations

import time

import numpy as np

from benchmarks.harness import Workload, peak_bytes
from benchmarks.workloads.mlp import Problem, build_impls

KEY, NAME = "W1", "mlp-large"


def gemm_rate(problem: Problem, repeats: int = 20) -> float:
    """GFLOP/s of NumPy on this step's own GEMMs (forward, dW, dX), best of `repeats`."""
    rng = np.random.default_rng(1)
    b = problem.batch
    shapes = []
    for i, o in zip(problem.sizes[:-1], problem.sizes[1:]):
        shapes += [((b, i), (i, o)), ((i, b), (b, o))]  # forward, dW = a^T delta
        if i != problem.sizes[0]:
            shapes.append(((b, o), (o, i)))  # dX = delta W^T
    mats = [
        (rng.standard_normal(s).astype(np.float32), rng.standard_normal(t).astype(np.float32))
        for s, t in shapes
    ]
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for a, c in mats:
            a @ c
        best = min(best, time.perf_counter() - t0)
    return problem.flops() / best / 1e9


def build(quick: bool) -> Workload:
    p = Problem.make((784, 512, 512, 10), 256)
    impls, notes = build_impls(p, quick)
    rate = gemm_rate(p)
    peaks = {
        i.name: peak_bytes(i.step)
        for i in impls
        if i.name in ("numpy", "chainrule", "chainrule-nn")
    }

    def extras(medians: dict[str, float]) -> list[str]:
        lines = [
            f"GEMM rate of NumPy on this step's matrices: {rate:.0f} GFLOP/s "
            f"({p.flops() / 1e9:.3f} GFLOP per step)"
        ]
        lines += [
            f"{name}: {p.flops() / t / 1e9 / rate:.0%} of NumPy's rate on these matrices"
            for name, t in medians.items()
        ]
        base = peaks.get("numpy")
        for name, b in peaks.items():
            ratio = f" = {b / base:.2f}x NumPy's" if base else ""
            lines.append(f"peak memory of one step, {name}: {b / 2**20:.1f} MiB{ratio}")
        return lines

    metrics = {}
    if "numpy" in peaks and "chainrule" in peaks:
        metrics["peak_ratio"] = peaks["chainrule"] / peaks["numpy"]
    return Workload(KEY, NAME, "ms/step", 1e3, impls, notes, extras, metrics, flops=p.flops())
