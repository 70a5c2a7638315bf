"""Benchmark (not a test): server time per playground interaction on the seeds' examples.

Each request goes through the whole server (Host check, limits, a worker process, JSON) via
Starlette's test client, so only the network is left out. Targets (issue 13): a slider move
under 100 ms, a new expression under 300 ms.

Run: python benchmarks/bench_playground.py [--runs N]   (prints median and 90th percentile)
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from starlette.testclient import TestClient

from chainrule.web.app import create_app
from chainrule.web.views import EXAMPLES

# the seeds' worked single-variable examples (seed 001 §1.2-1.3, seed 003 §3-4)
SEED_EXPRESSIONS = ["(x^2+1)^3", "sqrt(1+x^2)", "x^2*e^x", "x^2/(x+1)", "e^(x^2)", "1/(1+e^(-x))"]


def _time(call: Callable[[int], Any], runs: int) -> list[float]:
    out = []
    for i in range(runs):
        start = time.perf_counter()
        response = call(i)
        out.append(time.perf_counter() - start)
        assert response.status_code == 200, response.text
    return out


def main(runs: int) -> None:
    with TestClient(create_app({"testserver"}), base_url="http://testserver") as c:
        c.post("/api/derive", json={"expr": "x"})  # both workers warm (SymPy's caches)
        c.post("/api/derive", json={"expr": "x"})
        rows: list[tuple[str, list[float], float]] = []
        for name, ex in EXAMPLES.items():
            first = next(iter(ex["at"]))

            def slide(i: int, ex: dict[str, Any] = ex, first: str = first) -> Any:
                at = {**ex["at"], first: ex["at"][first] + 0.01 * (i + 1)}
                return c.post("/api/graph", json={"program": ex["program"], "at": at})

            rows.append((f"slider move, {name}", _time(slide, runs), 0.100))

        def new_expr(i: int) -> Any:  # a new expression each time: never a cached derivation
            expr = SEED_EXPRESSIONS[i % len(SEED_EXPRESSIONS)] + f" + {i + 2}*x"
            return c.post("/api/derive", json={"expr": expr})

        rows.append(("new expression (seed examples)", _time(new_expr, runs), 0.300))
        c.post("/api/derive", json={"expr": "sin(x^2)"})

        def drag(i: int) -> Any:
            return c.post("/api/point", json={"expr": "sin(x^2)", "x": 0.1 + 0.01 * i})

        rows.append(("drag the point (f' three ways)", _time(drag, runs), 0.100))

        def check(i: int) -> Any:
            answer = ["3*(x^2+1)^2", "6*x*(x^2+1)^2", "3*(x^2+1)^3*2*x"][i % 3]
            return c.post("/api/check", json={"expr": "(x^2+1)^3", "answer": answer})

        rows.append(("check my answer, (x^2+1)^3", _time(check, runs), 0.300))
    print(f"{'interaction':<38} {'median':>9} {'p90':>9} {'target':>8}")
    for label, times, target in rows:
        med = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else med
        ok = "ok" if med < target else "MISSED"
        print(f"{label:<38} {med * 1e3:7.1f}ms {p90 * 1e3:7.1f}ms {target * 1e3:6.0f}ms {ok}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    main(parser.parse_args().runs)
