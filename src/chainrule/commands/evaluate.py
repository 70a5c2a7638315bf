"""`chainrule evaluate CHECKPOINT`: accuracy and loss of a saved model on its held-out split.

The checkpoint stores the run's config, so the same data split and architecture are rebuilt.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from chainrule.commands import add_max_bytes

HELP = "report the accuracy of a model saved by `chainrule train`"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="a checkpoint.npz file")
    parser.add_argument(
        "--split",
        choices=["test", "train"],
        default="test",
        help="which part of the data to evaluate on (default test)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_max_bytes(parser)


def run(args: argparse.Namespace) -> int:
    from chainrule.serialization import CheckpointError
    from chainrule.training import TrainConfig, evaluate, load_checkpoint, setup

    try:
        state = load_checkpoint(args.checkpoint, max_bytes=args.max_bytes)
        config = TrainConfig.from_dict(state["config"])
        model_run = setup(config, state)
    except (ValueError, OSError, CheckpointError) as exc:
        print(f"chainrule evaluate: error: {exc}", file=sys.stderr)
        return 2
    X_train, X_test, y_train, y_test = model_run.data
    X, y = (X_test, y_test) if args.split == "test" else (X_train, y_train)
    loss, accuracy = evaluate(model_run.model, X, y)
    result: dict[str, Any] = {
        "checkpoint": args.checkpoint,
        "epoch": model_run.epoch,
        "dataset": config.dataset,
        "split": args.split,
        "samples": len(y),
        "accuracy": accuracy,
        "loss": loss,
    }
    if args.json:
        print(json.dumps(result))
    else:
        arch = "-".join(str(n) for n in [X.shape[1], *config.hidden, int(y.max()) + 1])
        model = (
            f"MLP {arch} ({config.activation})"
            if config.model == "mlp"
            else f"{config.model} ({model_run.model.num_parameters()} parameters)"
        )
        print(
            f"{args.checkpoint}: {model} on {config.dataset}, "
            f"epoch {model_run.epoch}\n{args.split} accuracy {accuracy:.2%} on {len(y)} "
            f"samples, loss {loss:.4f}"
        )
    return 0
