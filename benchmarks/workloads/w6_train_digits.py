"""W6 train-digits: the default `chainrule train` run end to end, and the same model in PyTorch.

The default run: UCI digits (standardised, 80/20 split), MLP 64-128-64-10 with ReLU and
dropout 0.2, Adam lr 1e-2 with a cosine schedule, 30 epochs of batch 32, test evaluation and
a checkpoint after every epoch. Timed three ways: `chainrule.training.fit` in process, the
CLI (`python -m chainrule train --quiet`, a fresh interpreter: imports, plot and files
included), and the same model and schedule in PyTorch (with a fast index-slicing batcher
rather than torch's DataLoader, which would only slow PyTorch down).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import Impl, Workload

KEY, NAME = "W6", "train-digits"


def chainrule_impl(tmp: Path, acc: dict[str, float]) -> Callable[[], Any]:
    from chainrule.training import TrainConfig, fit

    def run() -> None:
        result = fit(TrainConfig(), tmp / "checkpoint.npz")
        acc["chainrule"] = result.history[-1]["test_accuracy"]

    return run


def cli_impl(tmp: Path, acc: dict[str, float]) -> Callable[[], Any]:
    cmd = [sys.executable, "-m", "chainrule", "train", "--quiet", "--out", str(tmp / "cli")]

    def run() -> None:
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        acc["chainrule-cli"] = float(out.split("test accuracy ")[1].split("%")[0]) / 100

    return run


def torch_impl(tmp: Path, acc: dict[str, float]) -> Callable[[], Any]:
    import torch

    from chainrule.training import TrainConfig, prepare_data

    cfg = TrainConfig()
    x_tr, x_te, y_tr, y_te = (torch.from_numpy(np.ascontiguousarray(a)) for a in prepare_data(cfg))

    def run() -> None:
        torch.manual_seed(cfg.seed)
        layers: list[Any] = []
        width = x_tr.shape[1]
        for h in cfg.hidden:
            layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(cfg.dropout)]
            width = h
        model = torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))
        opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.epochs)
        gen = torch.Generator().manual_seed(cfg.seed)
        for _ in range(cfg.epochs):
            _torch_epoch(model, opt, x_tr, y_tr, cfg.batch_size, gen)
            sched.step()
            with torch.no_grad():
                model.eval()
                logits = model(x_te)
                torch.nn.functional.cross_entropy(logits, y_te).item()
                acc["torch"] = (logits.argmax(1) == y_te).float().mean().item()
            torch.save(model.state_dict(), tmp / "torch.pt")

    return run


def _torch_epoch(model: Any, opt: Any, x: Any, y: Any, batch: int, gen: Any) -> None:
    import torch

    model.train()
    perm = torch.randperm(len(x), generator=gen)
    for i in range(0, len(x), batch):
        idx = perm[i : i + batch]
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        loss.item()  # chainrule's loop reads the loss every step to detect divergence
        opt.zero_grad()
        loss.backward()
        opt.step()


BUILDERS = [
    ("chainrule", "chainrule", chainrule_impl),
    ("chainrule-cli", "peer", cli_impl),
    ("torch", "torch", torch_impl),
]


def build(quick: bool) -> Workload:
    tmp = Path(tempfile.mkdtemp(prefix="chainrule-w6-"))
    acc: dict[str, float] = {}
    impls, notes = [], []
    for name, kind, builder in BUILDERS:
        try:
            impls.append(Impl(name, builder(tmp, acc), kind))
        except ImportError as exc:
            notes.append(f"{name}: skipped ({exc})")

    def extras(medians: dict[str, float]) -> list[str]:
        return [f"{n}: test accuracy {a:.2%} after 30 epochs" for n, a in acc.items()]

    return Workload(
        KEY,
        NAME,
        "s/run",
        1.0,
        impls,
        notes,
        extras,
        rounds=1 if quick else 3,
        warmup=0 if quick else 1,
    )
