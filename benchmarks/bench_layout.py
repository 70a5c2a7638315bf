"""Benchmark (not a test) of the drawing limit: layout time and peak memory of programs of
100, 300 and 1,000 statements, in two shapes.

- chain:  z_i = tanh(w_i * z_(i-1) + b_i); every edge is short, so it always draws.
- shared: z_i = z_(i-1) * w_i + x; the input x feeds every statement, so its edges cross every
  rank below it: quadratic in layout points, refused past `layout.MAX_POINTS`.

Run: python benchmarks/bench_layout.py  (time: median of 3 runs without tracing; peak: one run
under tracemalloc, which is slower, so its time is not reported)
"""

from __future__ import annotations

import contextlib
import statistics
import time
import tracemalloc

import numpy as np

import chainrule as cr
from chainrule import viz
from chainrule.viz import layout as L


def program(n: int, shape: str) -> cr.Tensor:
    """The output tensor of an n-statement program of the given shape (engine-built)."""

    def leaf(name: str, value: float) -> cr.Tensor:
        return cr.tensor(value, dtype=np.float64, requires_grad=True, name=name)

    x = leaf("x", 0.5)
    z = leaf("w1", 0.9) * x
    for i in range(2, n + 1):
        if shape == "chain":
            z = cr.tanh(leaf(f"w{i}", 0.9) * z + leaf(f"b{i}", 0.1))
        else:
            z = z * leaf(f"w{i}", 0.9) + x
    return z


def measure(n: int, shape: str, runs: int = 3) -> str:
    scene = viz.graph(program(n, shape), backward=True).scene
    args = ([s.size for s in scene.nodes], [(e.src, e.dst) for e in scene.edges])
    labels = [e.label_size for e in scene.edges]
    times, outcome = [], ""
    for _ in range(runs):
        start = time.perf_counter()
        try:
            lay = L.layout(*args, labels)
            outcome = f"drawn, {lay.width:.0f} x {lay.height:.0f} pt"
        except L.DrawingTooLarge as exc:
            outcome = "refused: " + str(exc).split(";")[0].split(": ", 1)[1]
        times.append(time.perf_counter() - start)
    tracemalloc.start()
    with contextlib.suppress(L.DrawingTooLarge):
        L.layout(*args, labels)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return (
        f"{shape:6} {n:5} statements, {len(scene.nodes):5} boxes: "
        f"{statistics.median(times):6.2f} s, peak {peak / 2**20:6.1f} MiB; {outcome}"
    )


def main() -> None:
    print(f"layout limit: {L.MAX_POINTS} points (boxes + edge bends)")
    for shape in ("chain", "shared"):
        for n in (100, 300, 1000):
            print(measure(n, shape))


if __name__ == "__main__":
    main()
