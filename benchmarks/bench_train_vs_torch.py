"""Train the same MLP with the same hyper-parameters in chainrule and in PyTorch, side by side.

Same data (the bundled digits, same held-out split and standardisation), same architecture,
Adam + cosine schedule, dropout, batch size and epochs; PyTorch is skipped if not installed.
Not a test: run `python benchmarks/bench_train_vs_torch.py [--epochs N] [--seeds K]`.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from chainrule.training import TrainConfig, fit, prepare_data


def train_chainrule(config: TrainConfig) -> tuple[float, float]:
    start = time.perf_counter()
    run = fit(config)
    return run.history[-1]["test_accuracy"], time.perf_counter() - start


def train_torch(config: TrainConfig) -> tuple[float, float]:
    import torch
    from torch import nn

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    X_train, X_test, y_train, y_test = (torch.from_numpy(a) for a in prepare_data(config))
    layers: list[nn.Module] = []
    width = X_train.shape[1]
    for h in config.hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(config.dropout)]
        width = h
    model = nn.Sequential(*layers, nn.Linear(width, int(y_train.max()) + 1))
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=config.epochs)
    loss_fn = nn.CrossEntropyLoss()
    g = torch.Generator().manual_seed(config.seed)
    for _ in range(config.epochs):
        model.train()
        order = torch.randperm(len(X_train), generator=g)
        for k in range(math.ceil(len(order) / config.batch_size)):
            idx = order[k * config.batch_size : (k + 1) * config.batch_size]
            loss = loss_fn(model(X_train[idx]), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    model.eval()
    with torch.no_grad():
        acc = (model(X_test).argmax(1) == y_test).float().mean().item()
    return acc, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=TrainConfig().epochs)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--torch-threads",
        type=int,
        default=1,
        help="intra-op threads for PyTorch (tiny matrices: 1 is fastest)",
    )
    args = parser.parse_args()
    peers = {"chainrule": train_chainrule}
    try:
        import torch

        torch.set_num_threads(args.torch_threads)
        peers[f"torch {torch.__version__} ({torch.get_num_threads()} threads)"] = train_torch
    except ImportError:
        print("PyTorch is not installed: `pip install torch==2.13.0` to compare")
    base = TrainConfig(epochs=args.epochs)
    print(
        f"digits, MLP 64-{'-'.join(map(str, base.hidden))}-10 {base.activation}, dropout "
        f"{base.dropout}, {base.optimizer} lr {base.lr} {base.schedule}, batch {base.batch_size}"
        f", {base.epochs} epochs, seeds 0..{args.seeds - 1}"
    )
    print(f"{'library':<32} {'test accuracy (per seed)':<28} {'mean':>7} {'time/run':>9}")
    for name, train in peers.items():
        accs, times = [], []
        for seed in range(args.seeds):
            acc, seconds = train(TrainConfig(epochs=args.epochs, seed=seed))
            accs.append(acc)
            times.append(seconds)
        per_seed = " ".join(f"{a:.2%}" for a in accs)
        print(f"{name:<32} {per_seed:<28} {np.mean(accs):>7.2%} {statistics.median(times):>8.2f}s")


if __name__ == "__main__":
    main()
