"""Size-aware BLAS threading: small matrix products on one BLAS thread, large ones on all.

Owns the policy (`threads_for`, `configure`, `policy`), the one cached handle on NumPy's BLAS
(through threadpoolctl, imported on first use) and the helper threads that large convolution
kernels split their per-example products over (`split_threads`, `run_split`; started on first
use). `matmul` is the product every matmul and linear kernel of the op table calls. Imports
NumPy only; without threadpoolctl the policy is off.

Why: a second BLAS thread buys nothing on a small product (W2's, MNIST-1D's 100 x 100 x 100)
and costs 2x when another process holds a core, since the product then waits for a descheduled
worker; a large one (W1's 256 x 784 x 512) runs about 1.1-1.3x faster on two cores. Measured on
the 2-core development machine (benchmarks/bench_load.py, docs/performance.md).
"""

from __future__ import annotations

import itertools
import os
import queue
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

# Below this many multiply-adds (m * k * n) a product runs on one thread. Measured with
# float32 GEMMs on the 2-core development machine, quiet: 128^3 (2.1 M) is 1.4x slower on two
# threads than on one, 100 x 256 x 256 (6.6 M) 1.15x faster; OpenBLAS itself keeps products
# under 0.26 M on one thread.
DEFAULT_THRESHOLD = 2**22
# A convolution kernel (forward, weight gradient) of at least this many multiply-adds
# splits its many small one-thread products over the large count's threads (`run_split`).
# Measured on LeNet's layers (W9, 2 cores, quiet): handing half the work to a helper thread and
# waiting for it costs 50-80 us, so only kernels of a few hundred microseconds gain.
DEFAULT_SPLIT_THRESHOLD = 2**22


@dataclass(frozen=True)
class Policy:
    """What `configure` set: `enabled`, the `threshold` in multiply-adds, `max_threads`, the
    thread count for large products (None: the BLAS's own count when first asked), and
    `split_threshold`, the size from which a conv kernel splits its products over threads."""

    enabled: bool
    threshold: int
    max_threads: int | None
    split_threshold: int = DEFAULT_SPLIT_THRESHOLD


_OFF = ("off", "0", "no", "false")
_ENV_ENABLED = os.environ.get("CHAINRULE_BLAS_POLICY", "on").strip().lower() not in _OFF
_policy = Policy(
    enabled=_ENV_ENABLED,
    threshold=DEFAULT_THRESHOLD,
    max_threads=None,
)
# NumPy's BLAS as threadpoolctl lib controllers (None: not looked up yet; (): none usable).
_libs: tuple[Any, ...] | None = None
# The count the BLAS had when chainrule last found it changed by someone else (the environment,
# threadpool_limits, the user): the ceiling for large products unless max_threads is given.
_found: int | None = None
_current: int | None = None  # the count the BLAS runs on, as chainrule last saw or set it
_big = 0  # the count for large products (0: not known before the first lookup)
_switch = _policy.enabled  # the one flag `matmul` reads
_lo = _hi = 0  # sizes lo <= m * k * n < hi run on the present count (`_update_window`)


def policy() -> Policy:
    """The policy in force (see `configure`)."""
    return _policy


def configure(
    enabled: bool | None = None,
    threshold: int | None = None,
    max_threads: int | None = None,
    split_threshold: int | None = None,
) -> Policy:
    """Set the whole policy: on or off, the thresholds and the count for large products.

    Every argument left out takes its default, so one call states the whole policy and
    ``configure()`` restores the defaults.

    Parameters
    ----------
    enabled : bool, optional
        False leaves the BLAS's thread count to the user (and gives back the count it had
        before chainrule changed it). Default: on, unless the environment says
        ``CHAINRULE_BLAS_POLICY=off``.
    threshold : int, optional
        Products of at least this many multiply-adds (m * k * n) run on the large count,
        smaller ones on one thread; 0 puts every product on the large count. Default:
        `DEFAULT_THRESHOLD`.
    max_threads : int, optional
        The count for large products. Default: the BLAS's own count as chainrule found it
        (``OPENBLAS_NUM_THREADS``, a surrounding ``threadpool_limits``, or all cores).
        It is also the most threads a convolution kernel splits its products over, so
        ``max_threads=1`` keeps every kernel on the calling thread.
    split_threshold : int, optional
        Convolution kernels (forward, weight gradient) of at least this many
        multiply-adds, made of products that run on one BLAS thread, split those products
        over the large count's threads; 0 splits every such kernel. The numbers do not
        depend on it or on the thread count. Default: `DEFAULT_SPLIT_THRESHOLD`.

    Returns
    -------
    Policy
        The previous policy, to restore with ``configure(**vars(old))``.

    Raises
    ------
    ValueError
        If `threshold` or `split_threshold` is negative or `max_threads` is below 1.

    Examples
    --------
    >>> from chainrule import blas
    >>> old = blas.configure(enabled=False)   # leave BLAS threading to the user
    >>> blas.policy().enabled
    False
    >>> _ = blas.configure(**vars(old))
    """
    global _policy, _switch, _current, _big
    if threshold is not None and threshold < 0:
        raise ValueError(f"blas.configure: threshold must be >= 0 multiply-adds, got {threshold}")
    if max_threads is not None and max_threads < 1:
        raise ValueError(f"blas.configure: max_threads must be >= 1, got {max_threads}")
    if split_threshold is not None and split_threshold < 0:
        raise ValueError(
            f"blas.configure: split_threshold must be >= 0 multiply-adds, got {split_threshold}"
        )
    old = _policy
    _policy = Policy(
        enabled=_ENV_ENABLED if enabled is None else bool(enabled),
        threshold=DEFAULT_THRESHOLD if threshold is None else int(threshold),
        max_threads=max_threads,
        split_threshold=(
            DEFAULT_SPLIT_THRESHOLD if split_threshold is None else int(split_threshold)
        ),
    )
    if _current is not None and _found is not None and _current != _found:
        _set(_found)  # give the BLAS back as chainrule found it; the next product decides anew
    _current = None
    _big = _policy.max_threads or _found or 0
    _switch = _policy.enabled
    _update_window()
    return old


def threads_for(work: int) -> int:
    """The thread count the policy gives a product of `work` multiply-adds (m * k * n).

    Examples
    --------
    >>> from chainrule import blas
    >>> blas.threads_for(100 * 100 * 100)
    1
    """
    if work < _policy.threshold:
        return 1
    if _policy.max_threads:
        return _policy.max_threads
    if _found is None:
        blas_threads()  # looks the BLAS up, which sets _found
    return _found or os.cpu_count() or 1


def split_threads(work: int, product: int) -> int:
    """How many threads a kernel of `work` multiply-adds, made of independent products of
    `product` multiply-adds each, runs on: the large count when the policy is on, the kernel
    is at least `split_threshold` and each product is small enough for one BLAS thread (two
    threads each calling a multi-threaded BLAS would oversubscribe the cores), but no more
    than the cores other processes leave free; else 1.

    Examples
    --------
    >>> from chainrule import blas
    >>> blas.split_threads(100, 10)  # far too small to be worth a handoff
    1
    """
    if not _switch or work < _policy.split_threshold or product >= _policy.threshold:
        return 1
    if not _big and blas_threads() is None:
        return 1  # no BLAS to put on one thread per product
    return _free_cores(_big or threads_for(_policy.threshold))


# A split waits for its helpers. When other processes keep the cores busy, a helper is
# descheduled in the middle of its chunk and the caller waits for it: W9's step went from 7.9
# to 9.8 ms (medians) with two other busy processes on the 2-core development machine. So a
# kernel splits only over the cores nobody else is running on, counted from the kernel's
# instantaneous count of runnable threads (/proc/loadavg's fourth field, which includes the
# thread asking), read at most every _LOAD_EVERY seconds (the read is ~13 us).
_LOAD_EVERY = 0.25
_load_at = -1.0  # when /proc/loadavg was last read (time.monotonic)
_load_free: int | None = None  # cores free of other threads then (None: unknown, all)


def _free_cores(count: int) -> int:
    """`count`, or fewer if other processes are running on the cores (never below 1)."""
    global _load_at, _load_free
    now = time.monotonic()
    if now - _load_at > _LOAD_EVERY:
        _load_at = now
        running = _running()
        _load_free = None if running is None else _cores() - (running - 1)
    return count if _load_free is None else max(1, min(count, _load_free))


def _cores() -> int:
    """The cores this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def _running() -> int | None:
    """How many threads the kernel counts as runnable now, this one included (None where
    there is no /proc/loadavg: then the cores are taken to be free)."""
    try:
        with open("/proc/loadavg") as f:
            return int(f.read().split()[3].split("/")[0])
    except (OSError, ValueError, IndexError):
        return None


def run_split(task: Callable[[int], None], chunks: int, threads: int) -> None:
    """Run ``task(i)`` for every i in range(chunks), on the calling thread and on up to
    ``threads - 1`` helper threads, and return when all have run.

    Chunks are handed out one at a time to whichever thread is free, so a helper that wakes
    late (or is descheduled by a busy machine) takes fewer, and the caller waits only for the
    chunks a helper has started. Each chunk must write its own part of the result: which
    thread runs it must not change a bit. The first exception a chunk raises is raised here.
    """
    if threads <= 1 or chunks <= 1:
        for i in range(chunks):
            task(i)
        return
    job = _Job(task, chunks)
    helpers = _helpers(threads - 1)
    for _ in range(min(threads - 1, chunks - 1)):
        helpers.put(job)
    try:
        job.work()
    finally:
        job.wait()  # even after an error: no helper may still be writing the result


class _Job:
    """One `run_split` call: its chunks, handed out by an atomic counter (itertools.count's
    next is one C call, so the GIL makes it atomic), and how many helpers are inside it."""

    def __init__(self, task: Callable[[int], None], chunks: int) -> None:
        self.task, self.chunks = task, chunks
        self.next = itertools.count().__next__
        self.lock = threading.Lock()  # guards `inside` and `waiting`
        self.inside = 0  # helpers running a chunk of this job
        self.waiting = False  # the caller sleeps on `done` until `inside` is 0
        self.done = threading.Lock()
        self.done.acquire()
        self.error: BaseException | None = None

    def work(self) -> None:
        """Run chunks until none is left (the caller's share)."""
        try:
            i = self.next()
            while i < self.chunks:
                self.task(i)
                i = self.next()
        except BaseException:
            self.chunks = 0  # leave no chunk to the helpers
            raise

    def help(self) -> None:
        """Run chunks until none is left (a helper's share), then wake a waiting caller."""
        with self.lock:
            i = self.next()
            if i >= self.chunks:
                return  # the caller (or another helper) took them all first
            self.inside += 1
        try:
            while i < self.chunks:
                self.task(i)
                i = self.next()
        except BaseException as exc:
            self.error, self.chunks = exc, 0
        finally:
            with self.lock:
                self.inside -= 1
                if self.inside == 0 and self.waiting:
                    self.done.release()

    def wait(self) -> None:
        """Return when no helper runs a chunk of this job; raise a helper's exception."""
        with self.lock:
            sleep = self.inside > 0
            self.waiting = sleep
        if sleep:
            self.done.acquire()
        if self.error is not None:
            raise self.error


_queue: queue.SimpleQueue[_Job] | None = None  # the helpers' inbox (None: none started)
_started = 0  # how many helper threads take jobs from it


def _helpers(count: int) -> queue.SimpleQueue[_Job]:
    """The helpers' job queue, with at least `count` helper threads started (daemons: they
    never hold up the interpreter's exit). They live as long as the process."""
    global _queue, _started
    with _start_lock:
        if _queue is None:
            _queue = queue.SimpleQueue()
        while _started < count:
            threading.Thread(
                target=_serve, args=(_queue,), name=f"chainrule-split-{_started}", daemon=True
            ).start()
            _started += 1
        return _queue


def _serve(inbox: queue.SimpleQueue[_Job]) -> None:
    while True:
        inbox.get().help()


def _forget_helpers() -> None:
    """In a forked child the helper threads are gone: start new ones on first use."""
    global _queue, _started, _start_lock
    _queue, _started, _start_lock = None, 0, threading.Lock()


_start_lock = threading.Lock()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_helpers)


def matmul(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """`np.matmul` on the thread count the policy gives its size (when the policy is on).

    The check is inline, not a call of `fit`: it runs on every product of a training step,
    and a small step (benchmarks/ W2) has five of them. It compares the product's size with
    the window of sizes the BLAS's present count suits (`_lo`, `_hi`): two reads and a
    compare, a third of what deciding the count afresh on every call cost.
    """
    if _switch:
        try:  # m * k * n is x.size * n for a matrix y, the common case
            work = x.size * y.shape[1] if y.ndim == 2 else -1
        except AttributeError:  # lists and numbers: left to NumPy, as they are
            return np.matmul(x, y)
        if not _lo <= work < _hi:  # not on this size's count (or -1: a batched product)
            if work < 0:
                fit(x, y)
            else:
                _switch_to(work < _policy.threshold)
    return np.matmul(x, y)


def fit(x: Any, y: Any) -> None:
    """Put the BLAS on the thread count for the product x @ y, if it is not there already.

    A switch is a ctypes call (about 1 us) plus a read of the count (another), so it happens
    only when a product's size crosses the threshold; the check is a few attribute reads.
    """
    x, y = np.asarray(x), np.asarray(y)
    m = x.shape[-2] if x.ndim > 1 else 1
    n = y.shape[-1] if y.ndim > 1 else 1
    fit_work(max(x.size * n, y.size * m))  # m * k * n, times batch axes


def fit_work(work: int) -> None:
    """Put the BLAS on the thread count for one product of `work` multiply-adds (m * k * n):
    `fit` for a kernel that makes many products of one size, known without their arrays.
    Nothing when the policy is off: the count is then the user's."""
    if _switch and not _lo <= work < _hi:
        _switch_to(work < _policy.threshold)


def _switch_to(small: bool) -> None:
    global _switch, _current, _found, _big
    libs = _libs if _libs is not None else _find_libs()
    if not libs:
        _switch = False  # nothing to switch: stop checking
        return
    now = int(libs[0].get_num_threads())
    if now != _current:  # the first switch, or someone else set the count: that is the ceiling
        _found = _current = now
        _big = _policy.max_threads or now
    want = 1 if small else _big
    if want != _current:
        _set(want)
    _update_window()


def _update_window() -> None:
    """The sizes (m * k * n) that need no switch from the count the BLAS is on now: below the
    threshold if it is on one thread, from the threshold up if on the large count (both when
    the large count is 1), none while the count is not known."""
    global _lo, _hi
    small_ok = _current == 1
    big_ok = _current is not None and _current == _big
    _lo = 0 if small_ok else _policy.threshold
    _hi = sys.maxsize if big_ok else (_policy.threshold if small_ok else 0)


def _set(n: int) -> None:
    global _current
    for lib in _libs or ():
        lib.set_num_threads(n)
    _current = n
    _update_window()


def _find_libs() -> tuple[Any, ...]:
    """NumPy's BLAS through threadpoolctl, looked up once (the lookup scans the loaded
    libraries: milliseconds). () when threadpoolctl is missing or finds no BLAS."""
    global _libs
    try:
        with warnings.catch_warnings():  # threadpoolctl warns about odd OpenMP mixes
            warnings.simplefilter("ignore")
            from threadpoolctl import ThreadpoolController

            found = ThreadpoolController().select(user_api="blas").lib_controllers
    except Exception:  # ImportError, or a platform threadpoolctl cannot inspect
        found = []
    mine = [lib for lib in found if "numpy" in str(lib.filepath)]  # not torch's own BLAS
    _libs = tuple(mine or found)
    return _libs


def blas_threads() -> int | None:
    """The thread count NumPy's BLAS runs on now (None without threadpoolctl).

    Examples
    --------
    >>> from chainrule import blas
    >>> n = blas.blas_threads()
    >>> n is None or n >= 1
    True
    """
    global _found
    libs = _libs if _libs is not None else _find_libs()
    if not libs:
        return None
    now = int(libs[0].get_num_threads())
    if _found is None:
        _found = now
    return now


__all__ = [
    "DEFAULT_SPLIT_THRESHOLD",
    "DEFAULT_THRESHOLD",
    "Policy",
    "blas_threads",
    "configure",
    "fit",
    "fit_work",
    "matmul",
    "policy",
    "run_split",
    "split_threads",
    "threads_for",
]
