"""The training loop and the `chainrule train` / `chainrule evaluate` commands."""

import json

import numpy as np
import pytest

from chainrule import nn
from chainrule.cli import main
from chainrule.serialization import load
from chainrule.training import TrainConfig, fit, load_checkpoint

QUICK = TrainConfig(hidden=(32,), epochs=3, batch_size=64, lr=1e-2)


def _arrays(state):
    return {k: v.data for k, v in state.items()}


def test_digits_model_learns_in_a_few_epochs():
    run = fit(QUICK)
    assert run.history[-1]["test_accuracy"] > 0.9
    losses = [r["train_loss"] for r in run.history]
    assert losses[0] > losses[-1]


def test_same_seed_gives_bit_identical_runs_and_another_seed_does_not():
    a, b = fit(QUICK), fit(QUICK)
    assert [r["train_loss"] for r in a.history] == [r["train_loss"] for r in b.history]
    for (k, x), (_, y) in zip(
        _arrays(a.model.state_dict()).items(), _arrays(b.model.state_dict()).items()
    ):
        np.testing.assert_array_equal(x, y, err_msg=k)
    c = fit(TrainConfig(**{**QUICK.__dict__, "seed": 1}))
    assert c.history[-1]["train_loss"] != a.history[-1]["train_loss"]


class Crash(Exception):
    pass


def _crash_after(epoch):
    def on_epoch(record):
        if record["epoch"] == epoch:
            raise Crash  # the checkpoint of this epoch is already on disk

    return on_epoch


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_resume_equals_uninterrupted(tmp_path, optimizer):
    lr = 0.01 if optimizer == "adam" else 0.05
    config = TrainConfig(
        hidden=(32,), epochs=4, batch_size=64, dropout=0.3, optimizer=optimizer, lr=lr
    )
    full = fit(config)
    ckpt = tmp_path / "ckpt.npz"
    with pytest.raises(Crash):
        fit(config, ckpt, on_epoch=_crash_after(2))
    assert load(ckpt)["epoch"] == 2
    resumed = fit(config, ckpt, resume=load_checkpoint(ckpt))
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    for (k, x), (_, y) in zip(
        _arrays(full.model.state_dict()).items(), _arrays(resumed.model.state_dict()).items()
    ):
        np.testing.assert_array_equal(x, y, err_msg=k)
    assert load(ckpt)["epoch"] == 4


def test_extending_a_finished_run_stretches_the_schedule(tmp_path):
    ckpt = tmp_path / "ckpt.npz"
    fit(TrainConfig(dataset="moons", hidden=(8,), epochs=2, lr=0.01), ckpt)
    longer = fit(
        TrainConfig(dataset="moons", hidden=(8,), epochs=4, lr=0.01),
        ckpt,
        resume=load_checkpoint(ckpt),
    )
    assert [r["lr"] for r in longer.history][2:] == pytest.approx([0.005, 0.01 * (2 - 2**0.5) / 4])


def _cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_train_writes_checkpoint_metrics_and_plot(tmp_path, capsys):
    out_dir = tmp_path / "run"
    rc, out, _ = _cli(
        capsys,
        "train",
        "--hidden",
        "32",
        "--epochs",
        "2",
        "--batch-size",
        "64",
        "--out",
        str(out_dir),
        "--quiet",
    )
    assert rc == 0 and "test accuracy" in out
    metrics = json.loads((out_dir / "metrics.json").read_text())
    assert {"test_accuracy", "test_loss", "history", "wall_time_s"} <= metrics.keys()
    assert len(metrics["history"]) == 2 and metrics["config"]["hidden"] == [32]
    assert (out_dir / "curves.png").read_bytes()[:4] == b"\x89PNG"
    rc, out, _ = _cli(capsys, "evaluate", str(out_dir / "checkpoint.npz"), "--json")
    result = json.loads(out)
    assert rc == 0 and result["accuracy"] == metrics["test_accuracy"] and result["epoch"] == 2
    # resume to a later epoch, in the same directory
    rc, _, _ = _cli(
        capsys, "train", "--resume", str(out_dir / "checkpoint.npz"), "--epochs", "3", "--quiet"
    )
    assert rc == 0
    assert len(json.loads((out_dir / "metrics.json").read_text())["history"]) == 3


def test_resume_with_another_architecture_names_keys_and_shapes(tmp_path, capsys):
    ckpt = tmp_path / "checkpoint.npz"
    fit(TrainConfig(dataset="moons", hidden=(8,), epochs=1), ckpt)
    before = ckpt.read_bytes()
    rc, _, err = _cli(
        capsys, "train", "--resume", str(ckpt), "--hidden", "16", "--epochs", "2", "--quiet"
    )
    assert rc == 2
    assert "0.weight: checkpoint (8, 2) vs model (16, 2)" in err and "Traceback" not in err
    assert ckpt.read_bytes() == before


def test_bad_cli_values_list_the_valid_ones(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--optimizer", "lbfgs"])
    assert exc.value.code == 2
    assert "choose from 'adam', 'adamw', 'sgd'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "--hidden", "64,zero"])
    assert "comma-separated positive layer sizes" in capsys.readouterr().err
    bad = tmp_path / "checkpoint.npz"
    bad.write_bytes(b"PK\x03\x04 truncated")
    rc, _, err = _cli(capsys, "evaluate", str(bad))
    assert rc == 2 and "not a readable chainrule checkpoint" in err
    rc, _, err = _cli(capsys, "train", "--resume", str(bad), "--quiet")
    assert rc == 2 and bad.read_bytes() == b"PK\x03\x04 truncated"


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path, capsys, monkeypatch):
    real = nn.functional.cross_entropy
    calls = {"n": 0}

    def poisoned(logits, target, **kw):
        calls["n"] += 1
        loss = real(logits, target, **kw)
        return (
            loss * float("nan") if calls["n"] == 25 + 1 + 5 else loss
        )  # epoch 2, step 5 (+1: the eval)

    monkeypatch.setattr(nn.functional, "cross_entropy", poisoned)
    out_dir = tmp_path / "run"
    rc, _, err = _cli(
        capsys,
        "train",
        "--dataset",
        "moons",
        "--hidden",
        "8",
        "--epochs",
        "3",
        "--out",
        str(out_dir),
        "--quiet",
    )
    assert rc == 1
    assert "loss became nan at epoch 2, step 5" in err and "epoch 1" in err
    assert load(out_dir / "checkpoint.npz")["epoch"] == 1
