"""Heavy calls run in worker processes, each request under a time budget.

SymPy cannot be interrupted from another thread, so one hostile expression could otherwise hold
the server: a worker that overruns its budget is killed and replaced, and the request answers
with one line. Workers are forked from a forkserver that has already imported the views (and
SymPy) and run each kind of interaction once (``preload.py``), so a replacement is ready in
milliseconds and answers its first request as fast as a worker that has been running.
"""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import traceback
from collections.abc import Callable, Mapping
from multiprocessing.connection import Connection
from typing import Any

from chainrule.limits import applied
from chainrule.web.limits import LIBRARY_LIMITS, TIME_BUDGET_S

_PRELOAD = ["chainrule.web.preload"]  # the views, imported and run once (see views.WARM_UP)
MEMORY_GB = 2  # more address space a worker may take: a runaway expansion fails, not swaps


def _limit_memory() -> None:
    """Cap the worker's address space at MEMORY_GB more than it already maps (NumPy's BLAS
    threads map a lot on many-core machines), so the cap never breaks a healthy worker."""
    try:
        import resource
    except ImportError:  # not on POSIX: the time budget alone
        return
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            mapped = next(int(ln.split()[1]) * 1024 for ln in f if ln.startswith("VmSize:"))
    except (OSError, StopIteration, ValueError):  # no /proc (macOS): leave it
        return
    limit = mapped + MEMORY_GB * 1024**3
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


class BudgetExceeded(RuntimeError):
    """The call did not finish within the time budget."""


class WorkerFailed(RuntimeError):
    """The call raised something other than a user error (a bug): one line for the page."""


def _serve(conn: Connection) -> None:
    """A worker's loop: (view name, keyword arguments) in, ``answer(...)`` out."""
    from chainrule.web import views

    _limit_memory()
    while True:
        try:
            name, kwargs = conn.recv()
        except EOFError:
            return
        conn.send(answer(views.VIEWS, name, kwargs))


def answer(table: Mapping[str, Callable[..., Any]], name: str, kwargs: dict[str, Any]) -> Any:
    """("ok", result), or ("input", one line) for the learner's error, or ("bug", one line)."""
    try:
        with applied(LIBRARY_LIMITS):
            return ("ok", table[name](**kwargs))
    except MemoryError:
        return ("input", f"this needs more than the {MEMORY_GB} GB a derivation may use")
    except ValueError as exc:  # ParseError, InputError, the library's own ValueErrors
        return ("input", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except Exception as exc:  # a bug: the page gets one line, the server log the traceback
        traceback.print_exc()
        return ("bug", f"{type(exc).__name__}: {exc}".splitlines()[0])


class _Worker:
    def __init__(self, ctx: Any) -> None:
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_serve, args=(child,), daemon=True)
        self.process.start()
        child.close()

    def kill(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.conn.close()


class WorkerPool:
    """``size`` worker processes; ``await pool.call("derive", expr=...)``.

    Parameters
    ----------
    size : int
        Number of processes (requests beyond that wait for a free one, within their budget).
    budget : float
        Seconds a call may take, waiting included.
    """

    def __init__(self, size: int = 2, budget: float = TIME_BUDGET_S) -> None:
        self.size, self.budget = size, budget
        self._ctx = mp.get_context("forkserver")
        self._ctx.set_forkserver_preload(_PRELOAD)
        self._idle: asyncio.Queue[_Worker] | None = None
        self._all: set[_Worker] = set()

    async def start(self) -> None:
        self._idle = asyncio.Queue()
        for _ in range(self.size):
            w = await asyncio.to_thread(_Worker, self._ctx)
            self._all.add(w)
            self._idle.put_nowait(w)

    async def close(self) -> None:
        for w in list(self._all):
            await asyncio.to_thread(w.kill)
        self._all.clear()

    async def call(self, view: str, budget: float | None = None, **kwargs: Any) -> Any:
        """Run ``views.VIEWS[view](**kwargs)`` in a worker; the page's errors come back as
        ``ValueError`` (user input), ``BudgetExceeded`` or ``WorkerFailed``."""
        assert self._idle is not None, "WorkerPool.start() was not awaited"
        budget = self.budget if budget is None else budget
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget
        try:
            worker = await asyncio.wait_for(self._idle.get(), timeout=budget)
        except TimeoutError:
            raise BudgetExceeded(
                f"the server is busy; try again in a moment ({budget:g} s)"
            ) from None
        try:
            worker.conn.send((view, kwargs))
            left = max(0.0, deadline - loop.time())
            ready = await asyncio.to_thread(worker.conn.poll, left)
            if not ready:
                raise BudgetExceeded(
                    f"this took longer than the {budget:g} s budget; try something smaller"
                )
            status, payload = worker.conn.recv()
        except BaseException as exc:
            # The worker may still be computing (or hold a stale answer): never reuse it. A
            # cancelled request (the tab closed) lands here too.
            self._all.discard(worker)
            worker.kill()
            worker = _Worker(self._ctx)
            self._all.add(worker)
            if isinstance(exc, EOFError | OSError):
                raise WorkerFailed("the worker stopped unexpectedly; try again") from None
            raise
        finally:
            self._idle.put_nowait(worker)
        if status == "input":
            raise ValueError(payload)
        if status == "bug":
            raise WorkerFailed(f"internal error ({payload})")
        return payload
