"""Benchmark (not a test): server time per playground interaction on the seeds' examples.

Each request goes through the whole server (Host check, limits, a worker process, JSON) via
Starlette's test client, so only the network is left out. Targets (issue 13): a slider move
under 100 ms, a new expression under 300 ms.

Run: python benchmarks/bench_playground.py [--runs N]   (prints median and 90th percentile)

Wall time through the server swings with the machine's load, so each interaction is also timed
in CPU seconds (``time.process_time``): the same view called in this process, warmed up as a
worker is (``views.warm``), with the arguments the server fills in. The verdict is on CPU time.
``--cpu-json`` prints only those CPU times, as JSON (``--against`` runs it on both trees).

``--against REF`` compares this tree with the git revision REF on a loaded machine: both are
served by ``chainrule serve --workers 1`` (REF from ``git archive``), and one client process
sends every request to the two servers alternately (the order swapped each round), so load
that comes and goes falls on both alike. It also times a fresh worker's first request: a
hostile expression makes the server kill and replace its worker, then a new expression is timed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from chainrule.web.views import EXAMPLES

# the seeds' worked single-variable examples (seed 001 §1.2-1.3, seed 003 §3-4)
SEED_EXPRESSIONS = ["(x^2+1)^3", "sqrt(1+x^2)", "x^2*e^x", "x^2/(x+1)", "e^(x^2)", "1/(1+e^(-x))"]
# longer than any budget: the server kills the worker and forks a new one
HOSTILE = "(x^2+3*x+1)^90/(x^3-2)^87 + (x+1)^99/(x-1)^95 + (x^5+1)^60/(2x-1)^70"
ROOT = Path(__file__).resolve().parents[1]

Post = Callable[[str, dict[str, Any]], Any]  # (path, body) -> response with .status_code


def interactions(runs: int) -> Iterator[tuple[str, float, Callable[[Post, int], Any]]]:
    """(label, target in s, one request given a poster and the run's index)."""
    for name, ex in EXAMPLES.items():
        first = next(iter(ex["at"]))

        def slide(post: Post, i: int, ex: dict[str, Any] = ex, first: str = first) -> Any:
            at = {**ex["at"], first: ex["at"][first] + 0.01 * (i + 1)}
            return post("/api/graph", {"program": ex["program"], "at": at})

        yield f"slider move, {name}", 0.100, slide

    def new_expr(post: Post, i: int) -> Any:  # a new expression each time: never a cached one
        return post("/api/derive", {"expr": SEED_EXPRESSIONS[i % 6] + f" + {i + 2}*x"})

    yield "new expression (seed examples)", 0.300, new_expr

    def drag(post: Post, i: int) -> Any:
        return post("/api/point", {"expr": "sin(x^2)", "x": 0.1 + 0.01 * i})

    yield "drag the point (f' three ways)", 0.100, drag

    def check(post: Post, i: int) -> Any:
        answer = ["3*(x^2+1)^2", "6*x*(x^2+1)^2", "3*(x^2+1)^3*2*x", "3*(x^2+1)^2*x"][i % 4]
        return post("/api/check", {"expr": "(x^2+1)^3", "answer": answer})

    yield "check my answer, (x^2+1)^3", 0.300, check


def _timed(
    post: Post,
    call: Callable[[Post, int], Any],
    i: int,
    clock: Callable[[], float] = time.perf_counter,
) -> float:
    """Seconds of `clock` (wall by default; time.process_time for CPU) one request takes."""
    start = clock()
    response = call(post, i)
    elapsed = clock() - start
    assert response.status_code == 200, response.text
    return elapsed


def _in_process() -> Post:
    """A poster that calls each request's view here, as a worker would, with the defaults
    the server fills in (``wrt`` x, ``lang`` en), after the worker's warm-up."""
    from chainrule.limits import applied
    from chainrule.web import views
    from chainrule.web.limits import LIBRARY_LIMITS

    views.warm()

    def post(path: str, body: dict[str, Any]) -> _Reply:
        name = path.removeprefix("/api/")
        kwargs = body if name == "graph" else {"wrt": "x", "lang": "en", **body}
        with applied(LIBRARY_LIMITS):
            views.VIEWS[name](**kwargs)
        return _Reply(200, "")

    return post


def cpu_times(runs: int) -> dict[str, list[float]]:
    """CPU seconds of each interaction's view, ``runs`` times each, in this process."""
    post = _in_process()
    return {
        label: [_timed(post, call, i, time.process_time) for i in range(runs)]
        for label, _, call in interactions(runs)
    }


def _stats(times: list[float]) -> tuple[float, float]:
    p90 = statistics.quantiles(times, n=10)[-1] if len(times) > 1 else times[0]
    return statistics.median(times), p90


def main(runs: int) -> None:
    from starlette.testclient import TestClient

    from chainrule.web.app import create_app

    with TestClient(create_app({"testserver"}), base_url="http://testserver") as c:

        def post(path: str, body: dict[str, Any]) -> Any:
            return c.post(path, json=body)

        post("/api/derive", {"expr": "x"})  # both workers answered once
        post("/api/derive", {"expr": "x"})
        post("/api/derive", {"expr": "sin(x^2)"})
        wall = {
            label: [_timed(post, call, i) for i in range(runs)]
            for label, _, call in interactions(runs)
        }
    cpu = cpu_times(runs)
    print(f"{'interaction (ms)':<38} {'wall p50/p90':>15} {'CPU p50/p90':>15} {'target':>7}")
    for label, target, _ in interactions(runs):
        ok = "ok" if _stats(cpu[label])[1] < target else "MISSED"
        print(f"{label:<38} {_ms(wall[label]):>15} {_ms(cpu[label]):>15} {target * 1e3:7.0f} {ok}")


# -- this tree against a git revision ----------------------------------------------------------


class _Reply:
    def __init__(self, status: int, text: str) -> None:
        self.status_code, self.text = status, text


class _Server:
    """``chainrule serve`` from ``src`` in a subprocess."""

    def __init__(self, src: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "PYTHONPATH": str(src)}
        cmd = [sys.executable, "-m", "chainrule", "serve", "--no-browser", "--workers", "1"]
        self.proc = subprocess.Popen(
            [*cmd, "--port", str(self.port)], env=env, stdout=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 120
        while True:
            try:
                self.post("/api/derive", {"expr": "x"})
                return
            except (ConnectionError, http.client.HTTPException):
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.2)

    def post(self, path: str, body: dict[str, Any]) -> _Reply:
        """One request on its own connection (a kept-alive one may have timed out meanwhile)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            conn.request("POST", path, body=json.dumps(body), headers={"Host": self.host})
            r = conn.getresponse()
            return _Reply(r.status, r.read().decode())
        finally:
            conn.close()

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


@contextmanager
def _revision(ref: str) -> Iterator[Path]:
    """The ``src`` folder of git revision ``ref``, unpacked in a temporary folder."""
    with tempfile.TemporaryDirectory() as tmp:
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", ref, "src"], check=True, capture_output=True
        ).stdout
        path = Path(tmp) / "rev.tar"
        path.write_bytes(archive)
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
        yield Path(tmp) / "src"


def _fresh_expr(post: Post, i: int) -> Any:
    return post("/api/derive", {"expr": SEED_EXPRESSIONS[i % 6] + f" + {i + 50}*x"})


def _ms(times: list[float]) -> str:
    med, p90 = _stats(times)
    return f"{med * 1e3:.0f} / {p90 * 1e3:.0f}"


def compare(ref: str, runs: int, fresh: int) -> None:
    with ExitStack() as stack:
        src = stack.enter_context(_revision(ref))
        servers = {ref: _Server(src), "this tree": _Server(ROOT / "src")}
        for server in servers.values():
            stack.callback(server.close)
        rows: list[tuple[str, float, dict[str, list[float]]]] = []
        for label, target, call in interactions(runs):
            times: dict[str, list[float]] = {name: [] for name in servers}
            for i in range(runs):
                order = list(servers) if i % 2 == 0 else list(reversed(servers))
                for name in order:
                    times[name].append(_timed(servers[name].post, call, i))
            rows.append((label, target, times))
        times = {name: [] for name in servers}
        for i in range(fresh):  # the budget kills the worker; the next request meets its successor
            for name in servers if i % 2 == 0 else reversed(servers):
                killed = servers[name].post("/api/derive", {"expr": HOSTILE})
                assert killed.status_code == 503, killed.text
                times[name].append(_timed(servers[name].post, _fresh_expr, i))
        rows.append(("new expression, fresh worker", 0.300, times))
        cpu = {n: _cpu_of(path, runs) for n, path in ((ref, src), ("this tree", ROOT / "src"))}
    names = list(servers)
    head = "".join(f"{n[:14] + ' wall':>20}" for n in names)
    head += "".join(f"{n[:14] + ' CPU':>20}" for n in names)
    print(f"{'interaction, p50 / p90 (ms)':<38}{head}  target")
    for label, target, times in rows:
        cells = "".join(f"{_ms(times[n]):>20}" for n in names)
        cells += "".join(f"{_ms(cpu[n][label]) if label in cpu[n] else '-':>20}" for n in names)
        print(f"{label:<38}{cells}  {target * 1e3:.0f}")


def _cpu_of(src: Path, runs: int) -> dict[str, list[float]]:
    """``cpu_times`` of the chainrule in ``src``, measured in a child process."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [sys.executable, __file__, "--cpu-json", "--runs", str(runs)]
    out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True).stdout
    times: dict[str, list[float]] = json.loads(out)
    return times


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--against", metavar="REF", help="a git revision to compare with")
    parser.add_argument("--fresh", type=int, default=6, help="fresh-worker samples (--against)")
    parser.add_argument("--cpu-json", action="store_true", help="CPU times only, as JSON")
    args = parser.parse_args()
    if args.cpu_json:
        print(json.dumps(cpu_times(args.runs)))
    elif args.against:
        compare(args.against, args.runs, args.fresh)
    else:
        main(args.runs)
