"""W2 mlp-small: one SGD step of MLP 64-128-10 (ReLU), batch 32: digits-sized, so the time
is mostly per-op overhead rather than arithmetic."""

from __future__ import annotations

from benchmarks.harness import Workload
from benchmarks.workloads.mlp import Problem, build_impls

KEY, NAME = "W2", "mlp-small"


def build(quick: bool) -> Workload:
    impls, notes = build_impls(Problem.make((64, 128, 10), 32), quick)
    return Workload(KEY, NAME, "ms/step", 1e3, impls, notes)
