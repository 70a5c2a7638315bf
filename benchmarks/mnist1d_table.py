"""The MNIST-1D paper's table (Greydanus 2020): logistic, MLP, CNN, GRU test accuracy, trained
by chainrule (`chainrule.training.fit`, as `chainrule train --dataset mnist1d --model M` does)
and by PyTorch with the same architectures and recipe (Adam, lr 1e-2, batch 100, 200 epochs
of the 4,000 training signals = 8,000 steps, reshuffled each epoch, float32, one thread each).

Usage: python benchmarks/mnist1d_table.py [--seeds 0 1 2] [--models logistic mlp cnn gru]
       [--lib chainrule torch] [--out benchmarks/results/mnist1d.jsonl]
Each finished run appends one JSON line; `--report FILE` prints the Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")

import numpy as np  # noqa: E402

PAPER = {"logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}


def run_chainrule(model: str, seed: int) -> float:
    from chainrule.training import TrainConfig, fit

    config = TrainConfig.from_dict(
        {**TrainConfig.preset("mnist1d").to_dict(), "model": model, "seed": seed}
    )
    return fit(config).history[-1]["test_accuracy"]


def _torch_model(name: str, torch):  # type: ignore[no-untyped-def]
    nn = torch.nn

    class MLP(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.l1, self.l2, self.l3 = nn.Linear(40, 100), nn.Linear(100, 100), nn.Linear(100, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            h = self.l1(x).relu()
            return self.l3(h + self.l2(h).relu())

    class CNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.c1 = nn.Conv1d(1, 25, 5, stride=2, padding=1)
            self.c2 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.c3 = nn.Conv1d(25, 25, 3, stride=2, padding=1)
            self.linear = nn.Linear(125, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            h = self.c3(self.c2(self.c1(x[:, None]).relu()).relu()).relu()
            return self.linear(h.flatten(1))

    class GRU(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gru = nn.GRU(1, 6, batch_first=True, bidirectional=True)
            self.linear = nn.Linear(2 * 6 * 40, 10)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.linear(self.gru(x[..., None])[0].flatten(1))

    return {"logistic": lambda: nn.Linear(40, 10), "mlp": MLP, "cnn": CNN, "gru": GRU}[name]()


def run_torch(model: str, seed: int) -> float:
    import torch

    from chainrule.data import TRAIN_SIZES, load_mnist1d

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    X, y = load_mnist1d()
    n = TRAIN_SIZES["mnist1d"]
    xt, yt = torch.tensor(X[:n]), torch.tensor(y[:n])
    xs, ys = torch.tensor(X[n:]), torch.tensor(y[n:])
    net = _torch_model(model, torch)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(200):
        for idx in torch.randperm(n, generator=gen).split(100):
            loss = torch.nn.functional.cross_entropy(net(xt[idx]), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():  # evaluated every epoch, as chainrule's fit does
            acc = (net(xs).argmax(1) == ys).float().mean().item()
    return acc


def report(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = [
        "| model | paper | chainrule (mean ± sd over seeds) | PyTorch, same recipe | "
        "wall time per run: chainrule / PyTorch |",
        "|---|---|---|---|---|",
    ]
    for m in PAPER:
        cells = []
        for lib in ("chainrule", "torch"):
            rs = [r for r in rows if r["model"] == m and r["lib"] == lib]
            accs = [r["test_accuracy"] for r in rs]
            sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
            cells.append(
                f"{100 * np.mean(accs):.1f}% ± {100 * sd:.1f} (n={len(accs)})" if accs else "-"
            )
            cells.append(f"{np.mean([r['wall_s'] for r in rs]):.0f} s" if rs else "-")
        out.append(
            f"| {m} | {100 * PAPER[m]:.0f}% | {cells[0]} | {cells[2]} | {cells[1]} / {cells[3]} |"
        )
    return "\n".join(out)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", default=list(PAPER), choices=list(PAPER))
    p.add_argument("--lib", nargs="+", default=["chainrule", "torch"])
    p.add_argument("--out", type=Path, default=Path("benchmarks/results/mnist1d.jsonl"))
    p.add_argument("--report", type=Path, help="print the table from this JSON-lines file")
    args = p.parse_args()
    if args.report:
        print(report(args.report))
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    runners = {"chainrule": run_chainrule, "torch": run_torch}
    for model in args.models:
        for seed in args.seeds:
            for lib in args.lib:
                start = time.perf_counter()
                acc = runners[lib](model, seed)
                row = {
                    "model": model,
                    "lib": lib,
                    "seed": seed,
                    "test_accuracy": acc,
                    "wall_s": time.perf_counter() - start,
                    "load_avg": os.getloadavg()[0],
                }
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
                print(json.dumps(row), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
