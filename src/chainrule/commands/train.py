"""`chainrule train`: fit an MLP (the UCI digits by default) with a progress bar.

Writes the checkpoint, metrics.json and curves.png under --out. tqdm and matplotlib are
imported inside `run`, so `chainrule --help` stays fast.
"""

from __future__ import annotations

import argparse
import datetime
import importlib.util
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from chainrule.commands import add_max_bytes

HELP = "train an MLP (default: handwritten digits) and save checkpoint, metrics and plot"
CHECKPOINT_NAME = "checkpoint.npz"


def hidden_sizes(text: str) -> tuple[int, ...]:
    """Parse "128,64" into (128, 64); "" or "none" means no hidden layer."""
    if text.strip().lower() in ("", "none"):
        return ()
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        sizes = ()
    if not sizes or any(s < 1 for s in sizes):
        raise argparse.ArgumentTypeError(
            f"expected comma-separated positive layer sizes like 128,64, got {text!r}"
        )
    return sizes


def _positive(kind: type) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not value > 0:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value

    parse.__name__ = kind.__name__
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from chainrule.data import DATASETS
    from chainrule.models import MODELS
    from chainrule.training import ACTIVATIONS, OPTIMIZERS, SCHEDULES, TrainConfig

    d = TrainConfig()
    parser.add_argument(
        "--dataset", choices=list(DATASETS), help=f"training data (default {d.dataset})"
    )
    parser.add_argument(
        "--model",
        choices=list(MODELS),
        help=f"model family (default {d.model}; mnist1d: the MNIST-1D paper's models and recipe)",
    )
    parser.add_argument(
        "--hidden",
        type=hidden_sizes,
        help=f"hidden layer sizes, comma-separated (default {','.join(map(str, d.hidden))})",
    )
    parser.add_argument(
        "--activation",
        choices=list(ACTIVATIONS),
        help=f"hidden activation (default {d.activation})",
    )
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), help=f"default {d.optimizer}")
    parser.add_argument("--lr", type=_positive(float), help=f"learning rate (default {d.lr})")
    parser.add_argument("--epochs", type=_positive(int), help=f"default {d.epochs}")
    parser.add_argument("--batch-size", type=_positive(int), help=f"default {d.batch_size}")
    parser.add_argument("--seed", type=int, help=f"initialisation and shuffling (default {d.seed})")
    parser.add_argument(
        "--dropout", type=float, help=f"dropout after each hidden layer (default {d.dropout})"
    )
    parser.add_argument("--weight-decay", type=float, help="default: the optimizer's")
    parser.add_argument(
        "--schedule", choices=list(SCHEDULES), help=f"learning-rate schedule (default {d.schedule})"
    )
    parser.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue a run from its checkpoint (up to --epochs in total)",
    )
    add_max_bytes(parser)
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="output directory (default "
        "runs/<timestamp>; with --resume, the checkpoint's directory)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


_CONFIG_ARGS = (
    "dataset",
    "model",
    "hidden",
    "activation",
    "optimizer",
    "lr",
    "epochs",
    "batch_size",
    "seed",
    "dropout",
    "weight_decay",
    "schedule",
)


def resolve(args: argparse.Namespace) -> tuple[Any, dict[str, Any] | None, Path]:
    """The run's config (defaults < checkpoint < explicit options), resume state and out dir."""
    from chainrule.training import TrainConfig, load_checkpoint

    state = load_checkpoint(args.resume, max_bytes=args.max_bytes) if args.resume else None
    base = (
        TrainConfig.from_dict(state["config"])
        if state
        else TrainConfig.preset(args.dataset, args.model)
    )
    given = {k: getattr(args, k) for k in _CONFIG_ARGS if getattr(args, k) is not None}
    config = TrainConfig.from_dict({**base.to_dict(), **given})
    config.validate()
    if state is not None and state["epoch"] >= config.epochs:
        raise ValueError(
            f"the checkpoint is already at epoch {state['epoch']}; pass --epochs "
            f"greater than {state['epoch']} to train further"
        )
    if args.out:
        out = Path(args.out)
    elif args.resume:
        out = Path(args.resume).parent
    else:
        out = Path("runs") / datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        k = 1
        while out.exists():
            out, k = out.with_name(f"{out.name.split('_')[0]}_{k}"), k + 1
    return config, state, out


def run(args: argparse.Namespace) -> int:
    from chainrule.serialization import CheckpointError
    from chainrule.training import TrainingDiverged, fit

    start = time.perf_counter()
    try:
        config, state, out = resolve(args)
        bar = _progress(config, state, args.quiet)  # loads the data: a missing set fails here
    except (ValueError, OSError, CheckpointError) as exc:
        return _fail(exc)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        bar.close()
        return _fail(exc)
    checkpoint = out / CHECKPOINT_NAME
    try:
        result = fit(config, checkpoint, resume=state, on_step=bar.step, on_epoch=bar.epoch)
    except TrainingDiverged as exc:
        bar.close()
        print(
            f"chainrule train: training diverged: {exc}; stopped. The last good checkpoint "
            f"(epoch {_saved_epoch(checkpoint)}) is kept at {checkpoint}",
            file=sys.stderr,
        )
        return 1
    except ValueError as exc:  # e.g. --resume with a checkpoint of another architecture
        bar.close()
        return _fail(exc)
    except OSError as exc:  # a full disk: save() removed its partial file, the old one stays
        bar.close()
        return _fail(
            f"cannot write {checkpoint}: {exc.strerror or exc}; stopped. The last good "
            f"checkpoint (epoch {_saved_epoch(checkpoint)}) is kept at {checkpoint}"
        )
    bar.close()
    try:
        metrics = write_outputs(result, out, time.perf_counter() - start)
    except OSError as exc:
        return _fail(f"cannot write metrics or plot in {out}: {exc.strerror or exc}")
    curves = importlib.util.find_spec("matplotlib") is not None  # else plot_curves skipped
    print(
        f"test accuracy {metrics['test_accuracy']:.2%} (test loss {metrics['test_loss']:.4f}) "
        f"after {result.epoch} epochs in {metrics['wall_time_s']:.1f} s\n"
        f"wrote {checkpoint}, {out / 'metrics.json'}"
        + (
            f", {out / 'curves.png'}"
            if curves
            else " (no curves.png: pip install 'chainrule[all]')"
        )
    )
    return 0


def _fail(exc: BaseException | str) -> int:
    message = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
    print(f"chainrule train: error: {message}", file=sys.stderr)
    return 2


def _saved_epoch(checkpoint: Path) -> Any:
    from chainrule.serialization import load

    try:
        return load(checkpoint)["epoch"]
    except Exception:  # the message is informative only; never mask the divergence report
        return "?"


class _Progress:
    """A tqdm bar over all mini-batch steps, showing loss and accuracy and, once an epoch has
    been evaluated, that epoch's test accuracy. Without tqdm (`pip install chainrule` with no
    extras) it prints one plain line per epoch instead."""

    def __init__(self, total: int, initial: int, epochs: int, quiet: bool) -> None:
        self.epochs = epochs
        self.quiet = quiet
        self.train = ""
        self.test = ""
        try:
            from tqdm.auto import tqdm
        except ImportError:
            self.bar: Any = None
            return
        self.bar = tqdm(
            total=total,
            initial=initial,
            unit="step",
            file=sys.stderr,
            disable=quiet,
            dynamic_ncols=True,
            leave=True,
        )

    def step(self, epoch: int, step: int, loss: float, acc: float) -> None:
        self.train = f"loss={loss:.4f} acc={acc:.3f}"
        if self.bar is None:
            return
        self.bar.set_description(f"epoch {epoch}/{self.epochs}", refresh=False)
        self.bar.set_postfix_str(f"{self.train}{self.test}", refresh=False)
        self.bar.update(1)

    def epoch(self, record: dict[str, Any]) -> None:
        # shown now: the next refresh happens during the next epoch, which would pair its
        # steps with the accuracy of the epoch before
        self.test = f" test_acc={record['test_accuracy']:.3f}"
        if self.bar is not None:
            self.bar.set_postfix_str(f"{self.train}{self.test}", refresh=True)
        elif not self.quiet:
            print(f"epoch {record['epoch']}/{self.epochs} {self.train}{self.test}", file=sys.stderr)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _progress(config: Any, state: dict[str, Any] | None, quiet: bool) -> _Progress:
    from chainrule.training import prepare_data

    n_train = len(prepare_data(config)[0])
    per_epoch = n_train // config.batch_size + (n_train % config.batch_size > 0)
    done = state["epoch"] if state else 0
    return _Progress(per_epoch * config.epochs, per_epoch * done, config.epochs, quiet)


def write_outputs(result: Any, out: Path, wall_time: float) -> dict[str, Any]:
    """metrics.json (final numbers, config, per-epoch history) and curves.png."""
    last = result.history[-1]
    metrics = {
        "test_accuracy": last["test_accuracy"],
        "test_loss": last["test_loss"],
        "train_accuracy": last["train_accuracy"],
        "train_loss": last["train_loss"],
        "epochs": result.epoch,
        "wall_time_s": wall_time,
        "train_time_s": sum(r["time_s"] for r in result.history),
        "n_parameters": result.model.num_parameters(),
        "config": result.config.to_dict(),
        "history": result.history,
    }
    tmp = out / "metrics.json.tmp"
    tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    os.replace(tmp, out / "metrics.json")
    plot_curves(result.history, out / "curves.png")
    return metrics


def plot_curves(history: list[dict[str, Any]], path: Path) -> bool:
    """Loss and accuracy per epoch as a PNG; False (nothing written) without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return False

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, label in [
        (ax_loss, "loss", "cross-entropy loss"),
        (ax_acc, "accuracy", "accuracy"),
    ]:
        ax.plot(epochs, [r[f"train_{key}"] for r in history], label="train")
        ax.plot(epochs, [r[f"test_{key}"] for r in history], label="test")
        ax.set_xlabel("epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_yscale("log")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
