"""Size-aware BLAS threading (chainrule.blas): which thread count a product gets, that the
switch reaches NumPy's BLAS, and that the user can turn it off or override it. Nothing timed."""

import os
import subprocess
import sys

import numpy as np
import pytest

import chainrule as cr
from chainrule import blas

SMALL = (100, 100, 100)  # the MNIST-1D MLP's hidden layer on a batch of 100
LARGE = (256, 784, 512)  # W1's first layer


@pytest.fixture
def policy():
    """The policy as it was, restored after the test (which gives the BLAS its count back)."""
    old = blas.policy()
    yield old
    blas.configure(**vars(old))


def _product(m: int, k: int, n: int, backward: bool = False) -> None:
    x = cr.tensor(np.ones((m, k), np.float32))
    w = cr.tensor(np.ones((k, n), np.float32), requires_grad=backward)
    y = x @ w
    if backward:
        y.sum().backward()


def _needs_blas() -> None:
    pytest.importorskip("threadpoolctl")
    if blas.blas_threads() is None:
        pytest.skip("threadpoolctl finds no BLAS it can control here")


@pytest.mark.parametrize(
    ("shape", "want"), [(SMALL, 1), ((32, 64, 128), 1), (LARGE, 3), ((512, 512, 512), 3)]
)
def test_small_products_get_one_thread_and_large_ones_all(policy, shape, want):
    blas.configure(max_threads=3)
    assert blas.threads_for(int(np.prod(shape))) == want


def test_the_default_large_count_is_the_blas_own(policy):
    _needs_blas()
    found = blas.blas_threads()
    assert blas.threads_for(int(np.prod(LARGE))) == found


def test_the_switch_reaches_numpys_blas(policy):
    _needs_blas()
    blas.configure(enabled=True, max_threads=2)
    _product(*SMALL, backward=True)
    assert blas.blas_threads() == 1
    _product(*LARGE)
    assert blas.blas_threads() == 2
    _product(*SMALL)
    assert blas.blas_threads() == 1


def test_linear_and_its_gradients_are_sized_too(policy):
    _needs_blas()
    blas.configure(enabled=True, max_threads=2)
    layer = cr.nn.Linear(784, 512)
    layer(cr.tensor(np.ones((256, 784), np.float32))).sum().backward()
    assert blas.blas_threads() == 2  # the weight gradient is as large as the forward
    cr.nn.Linear(40, 100)(cr.tensor(np.ones((100, 40), np.float32))).sum().backward()
    assert blas.blas_threads() == 1


def test_products_of_constants_and_batches_still_work(policy):
    blas.configure(enabled=True, max_threads=2)
    w = cr.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    assert (cr.matmul([[1.0, 0.0]], w).data == [[1.0, 2.0]]).all()  # a list: not sized
    assert (cr.matmul(w, [1.0, 1.0]).data == [3.0, 7.0]).all()
    batch = cr.tensor(np.ones((3, 2, 2), np.float32))
    assert (blas.matmul(batch.data, batch.data) == 2).all()  # 3-D: sized by fit
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 2\) and \(3,\) are not aligned"):
        cr.matmul(w, np.ones(3, np.float32))


def test_turned_off_it_gives_the_count_back_and_leaves_it_alone(policy):
    _needs_blas()
    blas.configure(enabled=True, max_threads=2)
    found = blas._found
    _product(*SMALL)
    assert blas.blas_threads() == 1
    old = blas.configure(enabled=False)
    assert old.enabled and not blas.policy().enabled
    assert blas.blas_threads() == found
    _product(*SMALL)
    assert blas.blas_threads() == found


def test_turned_off_the_conv_kernels_leave_the_count_alone_too(policy):
    """col2im sizes the BLAS for its products through `fit`, which changed the count even with
    the policy off (2 -> 1 after a Conv2d backward) before it went through the switch."""
    _needs_blas()
    from threadpoolctl import threadpool_limits

    blas.configure(enabled=False)
    with threadpool_limits(limits=2, user_api="blas"):
        conv = cr.nn.Conv2d(6, 16, 5)
        x = cr.tensor(np.ones((8, 6, 12, 12), np.float32), requires_grad=True)
        conv(x).sum().backward()
        _product(*SMALL, backward=True)
        assert blas.blas_threads() == 2


def test_the_threshold_and_thread_count_can_be_overridden(policy):
    _needs_blas()
    blas.configure(enabled=True, threshold=0, max_threads=2)
    _product(*SMALL)
    assert blas.blas_threads() == 2  # every product is "large" now
    blas.configure(threshold=10**12)
    _product(*LARGE)
    assert blas.blas_threads() == 1


def test_a_count_set_by_someone_else_is_the_ceiling(policy):
    _needs_blas()
    from threadpoolctl import threadpool_limits

    blas.configure(enabled=True)
    _product(*LARGE)
    with threadpool_limits(1, user_api="blas"):  # set outside chainrule, after its last switch
        _product(*SMALL)
        _product(*LARGE)
        assert blas.blas_threads() == 1


def test_configure_states_the_whole_policy(policy):
    blas.configure(enabled=False, threshold=5, max_threads=2)
    old = blas.configure(threshold=7)
    assert old == blas.Policy(enabled=False, threshold=5, max_threads=2)
    assert blas.policy() == blas.Policy(enabled=policy.enabled, threshold=7, max_threads=None)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"threshold": -1}, "threshold must be >= 0"), ({"max_threads": 0}, "max_threads")],
)
def test_bad_settings_are_refused_by_name(policy, kwargs, message):
    with pytest.raises(ValueError, match=message):
        blas.configure(**kwargs)
    assert blas.policy() == policy


def test_the_environment_can_turn_it_off():
    code = "from chainrule import blas; print(blas.policy().enabled)"
    env = {**os.environ, "CHAINRULE_BLAS_POLICY": "off"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- split kernels
# Convolution kernels hand chunks of their per-example products to helper threads
# (`blas.run_split`); the conv tests check that the floats never depend on it.


@pytest.mark.parametrize(
    ("settings", "work", "product", "want"),
    [
        ({"max_threads": 2, "split_threshold": 100}, 100, 10, 2),  # large kernel, small products
        ({"max_threads": 2, "split_threshold": 101}, 100, 10, 1),  # kernel below the threshold
        ({"max_threads": 2, "split_threshold": 0, "threshold": 10}, 100, 10, 1),  # BLAS-threaded
        ({"max_threads": 1, "split_threshold": 0}, 100, 10, 1),  # --threads 1
        ({"enabled": False, "max_threads": 2, "split_threshold": 0}, 100, 10, 1),  # policy off
        ({"max_threads": 3, "split_threshold": 0}, 100, 10, 3),
    ],
)
def test_a_kernel_splits_only_when_large_with_small_products(
    policy, settings, work, product, want, monkeypatch
):
    _needs_blas()
    monkeypatch.setattr(blas, "_free_cores", lambda count: count)  # whatever the load
    blas.configure(**settings)
    assert blas.split_threads(work, product) == want


def test_the_default_split_count_follows_the_blas_own_count(policy, monkeypatch):
    _needs_blas()
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(blas, "_free_cores", lambda count: count)
    blas.configure(enabled=True, split_threshold=0)
    assert blas.split_threads(10, 1) == blas.threads_for(blas.policy().threshold)
    with threadpool_limits(1, user_api="blas"):  # OPENBLAS_NUM_THREADS=1, run.py --threads 1
        blas.configure(enabled=True, split_threshold=0)
        blas.fit_work(1)  # the next product notices the count set outside chainrule
        assert blas.split_threads(10, 1) == 1


@pytest.mark.parametrize(
    ("cores", "running", "want"),
    [(2, 1, 2), (2, 2, 1), (2, 5, 1), (4, 2, 3), (4, None, 4)],  # running: this thread too
)
def test_a_split_takes_only_the_cores_other_processes_leave_free(
    policy, monkeypatch, cores, running, want
):
    """Helpers on cores that other processes keep busy are descheduled mid-chunk, and the
    caller waits for them: the split count is capped by the free cores (None: unknown)."""
    monkeypatch.setattr(blas, "_cores", lambda: cores)
    monkeypatch.setattr(blas, "_running", lambda: running)
    monkeypatch.setattr(blas, "_load_at", -1e9)  # read now, not from the cache
    assert blas._free_cores(4) == want


def test_the_running_count_is_read_where_the_kernel_gives_it():
    running = blas._running()
    assert running is None or running >= 1  # at least the thread asking


@pytest.mark.parametrize("threads", [1, 2, 3])
@pytest.mark.parametrize("chunks", [1, 2, 7])
def test_run_split_runs_every_chunk_once_and_returns_after_all(threads, chunks):
    import threading
    import time

    ran: list[int] = []
    who: set[str] = set()

    def task(i: int) -> None:
        time.sleep(0.002)  # long enough for a helper to wake and take some
        ran.append(i)
        who.add(threading.current_thread().name)

    blas.run_split(task, chunks, threads)
    assert sorted(ran) == list(range(chunks))
    if threads == 1 or chunks == 1:
        assert who == {threading.current_thread().name}


def test_run_split_raises_a_helpers_error_after_the_others_stop():
    import threading

    main, failed = threading.current_thread(), threading.Event()
    ran: list[int] = []

    def task(i: int) -> None:
        if threading.current_thread() is not main:
            failed.set()
            raise ValueError(f"chunk {i} failed in a helper")
        failed.wait(10)  # the caller's first chunk lasts until a helper has failed
        ran.append(i)

    with pytest.raises(ValueError, match="failed in a helper"):
        blas.run_split(task, 4, 2)
    assert ran == [0]  # the failure stopped the rest from being handed out
    blas.run_split(lambda i: ran.append(i), 2, 2)  # the helpers still serve


def test_importing_chainrule_starts_no_thread():
    code = (
        "import threading, chainrule, chainrule.nn; from chainrule import blas; "
        "print(threading.active_count(), blas._queue is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "True"]


def test_split_threshold_must_not_be_negative(policy):
    with pytest.raises(ValueError, match="split_threshold must be >= 0 multiply-adds, got -1"):
        blas.configure(split_threshold=-1)
