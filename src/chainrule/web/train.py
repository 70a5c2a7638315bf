"""The Train view: small MLPs on 2-D data, trained in the background with the loop behind
`chainrule train` (``training.setup`` and ``training.train_epoch``), streamed to the page as
Server-Sent Events (``Trainer.events``).

Each run is a thread (the model is small; NumPy releases the GIL in its kernels) that checks
for pause and stop between epochs. Limits keep a tab from hogging the machine: a few layers of
at most 64 units, at most ``MAX_EPOCHS`` epochs or ``MAX_SECONDS``, ``MAX_JOBS`` runs at once
(starting another stops the oldest), at most ``MAX_STREAMS`` open event streams.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from chainrule import training
from chainrule.data import DATASETS
from chainrule.tensor import Tensor, no_grad
from chainrule.web.limits import InputError

MAX_JOBS = 4
MAX_STREAMS = 8  # open event streams (a tab holds one while a run lasts)
STREAM_TICK_S = 0.05  # how often a stream looks for a new epoch (the thread paces at PACE_S)
HEARTBEAT_S = 10.0  # a comment line this often, so a stream whose reader left gets noticed
MAX_EPOCHS = 200
MAX_SECONDS = 120.0
MAX_LAYERS, MAX_UNITS = 4, 64
PACE_S = 0.04  # a pause between epochs, so the page can show the boundary moving
GRID = 40  # the decision boundary is sampled on GRID x GRID points
POINTS_SHOWN = 300
DATASETS_2D = tuple(name for name in ("moons", "circles", "spirals") if name in DATASETS)
ACTIVATIONS = ("tanh", "relu", "sigmoid")


@dataclass
class Job:
    id: str
    config: training.TrainConfig
    status: str = "running"
    history: list[dict[str, Any]] = field(default_factory=list)
    boundary: dict[str, Any] | None = None
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    resume: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)


def config_from(body: Mapping[str, Any]) -> training.TrainConfig:
    """A TrainConfig from the page's fields; InputError names the bad one."""
    dataset = body.get("dataset", "moons")
    if dataset not in DATASETS_2D:
        raise InputError(f"dataset: choose one of {', '.join(DATASETS_2D)}")
    hidden = body.get("hidden", [16, 16])
    if (
        not isinstance(hidden, list)
        or not 1 <= len(hidden) <= MAX_LAYERS
        or not all(isinstance(h, int) and not isinstance(h, bool) for h in hidden)
        or not all(1 <= h <= MAX_UNITS for h in hidden)
    ):
        raise InputError(f"hidden layers: 1 to {MAX_LAYERS} sizes of 1 to {MAX_UNITS}, e.g. 16,16")
    activation = body.get("activation", "tanh")
    if activation not in ACTIVATIONS:
        raise InputError(f"activation: choose one of {', '.join(ACTIVATIONS)}")
    lr = body.get("lr", 0.01)
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not 1e-5 <= lr <= 1.0:
        raise InputError(f"learning rate: a number from 0.00001 to 1, got {lr!r}")
    epochs = body.get("epochs", 60)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
        raise InputError(f"epochs: 1 to {MAX_EPOCHS}, got {epochs!r}")
    return training.TrainConfig(
        dataset=dataset,
        hidden=tuple(hidden),
        activation=activation,
        optimizer="adam",
        lr=float(lr),
        epochs=epochs,
        batch_size=32,
        dropout=0.0,
        schedule="none",
        seed=0,
    )


class StreamsBusy(RuntimeError):
    """Every event-stream slot is taken (the page shows the line, the server answers 503)."""


class Trainer:
    """The runs of one server: start, poll, pause, resume, stop."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.streams = 0
        self.closing = False  # set by the server's Ctrl+C handler: every stream ends at once

    def close_streams(self) -> None:
        """End every event stream at its next tick, so that a server shutting down does not
        wait for them and then cancel them (a traceback each). Only sets a flag: it is called
        from a signal handler, which must not wait for a lock."""
        self.closing = True

    def start(self, config: training.TrainConfig) -> str:
        job = Job(id=f"run{next(self._ids)}", config=config)
        job.resume.set()
        with self._lock:
            running = [j for j in self.jobs.values() if j.status in ("running", "paused")]
            for old in running[: max(0, len(running) - MAX_JOBS + 1)]:
                self._stop(old)
            for old_id in [k for k, j in self.jobs.items() if j.status in ("stopped", "done")][:-8]:
                del self.jobs[old_id]
            self.jobs[job.id] = job
        threading.Thread(target=self._run, args=(job,), daemon=True).start()
        return job.id

    def job(self, job_id: str) -> Job:
        try:
            return self.jobs[job_id]
        except KeyError:
            raise InputError(f"no training run {job_id[:20]!r} (reset and start again)") from None

    def poll(self, job_id: str, since: int) -> dict[str, Any]:
        job = self.job(job_id)
        with job.lock:
            return self._snapshot(job, since)

    @staticmethod
    def _snapshot(job: Job, since: int) -> dict[str, Any]:
        """What the page draws: the epochs after ``since``, the boundary, status (lock held)."""
        return {
            "id": job.id,
            "status": job.status,
            "epochs": job.config.epochs,
            "history": job.history[max(0, since) :],
            "boundary": job.boundary,
            "error": job.error,
        }

    def open_stream(self, job_id: str) -> Job:
        """Count a new event stream of ``job_id``; InputError past ``MAX_STREAMS``."""
        job = self.job(job_id)
        with self._lock:
            if self.streams >= MAX_STREAMS:
                raise StreamsBusy(
                    f"{MAX_STREAMS} training streams are open already; close a tab and retry"
                )
            self.streams += 1
        return job

    async def events(self, job: Job, since: int) -> AsyncIterator[str]:
        """The run as Server-Sent Events: one ``progress`` event per change (new epochs, pause,
        the end), each with the epochs after ``since``; ends after ``done`` or ``stopped``. The
        stream's slot is given back however it ends (a closed tab cancels the generator; the
        server's shutdown ends it, ``close_streams``)."""
        try:
            sent: tuple[int, str] | None = None
            quiet = 0.0
            while not self.closing:
                with job.lock:
                    state = (len(job.history), job.status)
                    if state != sent:
                        data = self._snapshot(job, since)
                if state != sent:
                    sent, since, quiet = state, state[0], 0.0
                    yield f"id: {state[0]}\nevent: progress\ndata: {json.dumps(data)}\n\n"
                    if state[1] in ("done", "stopped"):
                        return
                elif quiet >= HEARTBEAT_S:
                    quiet = 0.0
                    yield ": still here\n\n"
                await asyncio.sleep(STREAM_TICK_S)
                quiet += STREAM_TICK_S
        finally:
            with self._lock:
                self.streams -= 1

    def pause(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        with job.lock:
            if job.status == "running":
                job.resume.clear()
                job.status = "paused"
        return {"status": job.status}

    def resume(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        with job.lock:
            if job.status == "paused":
                job.status = "running"
                job.resume.set()
        return {"status": job.status}

    def stop(self, job_id: str) -> dict[str, Any]:
        job = self.job(job_id)
        self._stop(job)
        return {"status": job.status}

    def stop_all(self) -> None:
        for job in list(self.jobs.values()):
            self._stop(job)

    @staticmethod
    def _stop(job: Job) -> None:
        with job.lock:
            if job.status in ("running", "paused"):
                job.status = "stopped"
            job.stop.set()
            job.resume.set()

    def _run(self, job: Job) -> None:
        try:
            run = training.setup(job.config)
            view = _View(run.data[0], run.data[2])
            while run.epoch < job.config.epochs:
                job.resume.wait()
                if job.stop.is_set():
                    return
                if time.monotonic() - job.started > MAX_SECONDS:
                    job.error = f"stopped after the {MAX_SECONDS:g} s limit of a run"
                    break
                record = training.train_epoch(run)
                run.history.append(record)
                boundary = view.boundary(run.model)
                with job.lock:
                    job.history.append({k: record[k] for k in _KEEP})
                    job.boundary = boundary
                time.sleep(PACE_S)
            with job.lock:
                if job.status in ("running", "paused"):
                    job.status = "done"
        except (ValueError, FloatingPointError) as exc:  # TrainingDiverged, a bad config
            with job.lock:
                job.status, job.error = "stopped", str(exc).splitlines()[0]


_KEEP = ("epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy")


class _View:
    """The plane the page draws: a grid over the (standardised) training data and some points."""

    def __init__(self, X: np.ndarray, y: np.ndarray) -> None:
        lo, hi = X.min(axis=0) - 0.5, X.max(axis=0) + 0.5
        self.extent = [float(lo[0]), float(hi[0]), float(lo[1]), float(hi[1])]
        gx = np.linspace(lo[0], hi[0], GRID)
        gy = np.linspace(lo[1], hi[1], GRID)
        xx, yy = np.meshgrid(gx, gy)  # row i is y = gy[i]
        self.grid = np.stack([xx.ravel(), yy.ravel()], 1).astype(X.dtype)
        pick = np.random.default_rng(0).permutation(len(X))[:POINTS_SHOWN]
        self.points = [[round(float(a), 3), round(float(b), 3), int(k)] for (a, b), k in
                       zip(X[pick], y[pick])]  # fmt: skip

    @no_grad()
    def boundary(self, model: Any) -> dict[str, Any]:
        model.eval()
        logits = model(Tensor(self.grid)).data
        model.train()
        z = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
        return {
            "size": GRID,
            "extent": self.extent,
            "classes": p.argmax(axis=1).tolist(),
            "confidence": np.round(2 * p.max(axis=1) - 1, 3).tolist(),
            "points": self.points,
        }
