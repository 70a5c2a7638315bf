"""Benchmark (not a test): time `explain` on an expression of about 50 nodes; target < 1 s.

Run: python benchmarks/bench_explain.py  (prints the median of several runs)
"""

from __future__ import annotations

import statistics
import time

import sympy as sp

from chainrule.symbolic import explain, parse

# a two-layer network's loss plus a few textbook pieces: about 50 expression-tree nodes
TEXT = "0.5*(sigmoid(w2*tanh(w1*x + b1) + b2) - t)^2 + x^2 e^x + sqrt(1 + x^2)"
TEXT += " + ln(x^2 + 1)/(x + 1) + sin(x)^2"


def main(runs: int = 7) -> None:
    nodes = sum(1 for _ in sp.preorder_traversal(parse(TEXT)))
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        d = explain(TEXT)
        d.to_text(), d.to_latex()
        times.append(time.perf_counter() - start)
    print(f"explain + render, {nodes} nodes: median {statistics.median(times):.3f} s "
          f"over {runs} runs (min {min(times):.3f} s); target < 1 s")  # fmt: skip


if __name__ == "__main__":
    main()
