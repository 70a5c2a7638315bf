"""Crafted training checkpoints, a full disk, orphaned files: `train --resume` and `evaluate`
answer with one line and exit 2, and never overwrite the checkpoint (issue 10)."""

import errno
import os

import numpy as np
import pytest

from chainrule import serialization
from chainrule.cli import main
from chainrule.serialization import load, save
from chainrule.training import TrainConfig, fit, load_checkpoint


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """A real 1-epoch checkpoint (moons, one hidden layer of 8): each `load` of it is a fresh
    copy to tamper with (copy.deepcopy would leave __slotnames__ on the Tensor class)."""
    path = tmp_path_factory.mktemp("good") / "checkpoint.npz"
    fit(TrainConfig(dataset="moons", hidden=(8,), epochs=1), path)
    return path


def _set(*keys, value):
    def mutate(state):
        node = state
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value

    return mutate


def _drop(*keys):
    def mutate(state):
        node = state
        for k in keys[:-1]:
            node = node[k]
        del node[keys[-1]]

    return mutate


# (what is crafted, the words the one-line error must contain)
CRAFTED = {
    "epoch a string": (_set("epoch", value="abc"), "field 'epoch' is 'abc'; expected an integer"),
    "epoch negative": (_set("epoch", value=-1), "field 'epoch' is -1"),
    "epoch a bool": (_set("epoch", value=True), "field 'epoch' is True"),
    "epoch past config": (_set("epoch", value=7), "field 'epoch' is 7"),
    "config an int": (_set("config", value=5), "field 'config' is 5; expected a dict"),
    "config lr a string": (_set("config", "lr", value="fast"), "field 'config.lr' is 'fast'"),
    "config lr huge int": (_set("config", "lr", value=10**400), "field 'config.lr' is 1000"),
    "config epochs 0": (_set("config", "epochs", value=0), "epochs must be >= 1, got 0"),
    "config hidden huge": (
        _set("config", "hidden", value=[10**9]),
        "field 'config.hidden' is [1000000000]; expected the model's layer widths [8]",
    ),
    "config dataset": (_set("config", "dataset", value="nope"), "unknown dataset 'nope'"),
    "config test_size": (_set("config", "test_size", value=1.5), "test_size must be in (0, 1)"),
    "config seed": (_set("config", "seed", value=-3), "seed must be >= 0, got -3"),
    "history short": (_set("history", value=[]), "field 'history' has 0 records; expected 1"),
    "history junk": (_set("history", value=[{"epoch": 1}]), "field 'history[0].train_loss'"),
    "history not a list": (_set("history", value=5), "field 'history' is 5"),
    "T_max 0": (_set("scheduler", "T_max", value=0), "field 'scheduler.T_max' is 0"),
    "scheduler extra key": (
        _set("scheduler", "optimizer", value=5),
        "field 'scheduler' is ['optimizer']; expected the fields",
    ),
    "scheduler base_lrs": (_set("scheduler", "base_lrs", value="x"), "'scheduler.base_lrs'"),
    "model wrong shape": (
        _set("model", "0.weight", value=np.ones((8, 3), np.float32)),
        "0.weight: checkpoint (8, 3) vs model (8, 2)",
    ),
    "model a string": (_set("model", "0.bias", value="abc"), "field 'model.0.bias' is 'str'"),
    "model missing key": (_drop("model", "3.bias"), "3.bias"),
    "optimizer lr string": (
        lambda s: s["optimizer"]["param_groups"][0].update(lr="abc"),
        "field 'optimizer.param_groups[0].lr' is 'abc'",
    ),
    "optimizer betas": (
        lambda s: s["optimizer"]["param_groups"][0].update(betas=5),
        "field 'optimizer.param_groups[0].betas' is 5",
    ),
    "optimizer state shape": (
        lambda s: s["optimizer"]["state"][0].update(exp_avg=np.ones(7, np.float32)),
        "state 'exp_avg' of parameter 0 has shape (7,)",
    ),
    "optimizer state string": (
        lambda s: s["optimizer"]["state"][0].update(step="x"),
        "field 'optimizer.state[0].step' is 'x'",
    ),
    "rng foreign": (_set("rng", "bit_generator", value=3), "field 'rng.bit_generator' is 3"),
    "rng missing": (_drop("rng", "state"), "field 'rng' is ['state']"),
    "not a run": (_set("kind", value="other"), "not a training checkpoint"),
}


@pytest.mark.parametrize("case", CRAFTED, ids=str)
@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_crafted_checkpoint_is_one_line_exit_2_and_left_untouched(
    tmp_path, capsys, good, case, command
):
    mutate, words = CRAFTED[case]
    state = load(good)
    mutate(state)
    ckpt = tmp_path / "checkpoint.npz"
    save(state, ckpt)
    before = ckpt.read_bytes()
    argv = ["train", "--resume", str(ckpt), "--epochs", "2", "--quiet"]
    rc = main(argv if command == "train" else ["evaluate", str(ckpt)])
    out, err = capsys.readouterr()
    assert rc == 2, (out, err)
    assert words in err and "Traceback" not in err
    assert err.count("\n") == 1 and err.startswith(f"chainrule {command}: error: ")
    assert ckpt.read_bytes() == before
    assert os.listdir(tmp_path) == ["checkpoint.npz"]


def test_the_good_checkpoint_passes_every_check(tmp_path, capsys, good):
    ckpt = tmp_path / "checkpoint.npz"
    save(load(good), ckpt)
    assert main(["evaluate", str(ckpt)]) == 0
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", "--quiet"]) == 0
    assert load_checkpoint(ckpt)["epoch"] == 2


def test_max_bytes_bounds_a_training_checkpoint(tmp_path, good):
    ckpt = tmp_path / "checkpoint.npz"
    save(load(good), ckpt)
    with pytest.raises(serialization.CheckpointError, match=r"over the limit of max_bytes=100"):
        load_checkpoint(ckpt, max_bytes=100)


def test_explicit_lr_with_resume_is_used(tmp_path, good):
    ckpt = tmp_path / "checkpoint.npz"
    save(load(good), ckpt)
    base = TrainConfig(dataset="moons", hidden=(8,), epochs=2, schedule="none")
    resumed = fit(TrainConfig(**{**base.__dict__, "lr": 0.5}), resume=load_checkpoint(ckpt))
    assert resumed.history[-1]["lr"] == 0.5
    cosine = fit(TrainConfig(dataset="moons", hidden=(8,), epochs=3, lr=0.5), resume=load(good))
    assert cosine.optimizer.param_groups[0]["initial_lr"] == 0.5
    assert cosine.history[1]["lr"] == pytest.approx(0.5 * (1 + np.cos(np.pi / 3)) / 2)


def test_full_disk_stops_with_one_line_and_keeps_the_last_good_checkpoint(
    tmp_path, capsys, monkeypatch
):
    real = np.savez
    calls = {"n": 0}

    def savez_until_full(file, **arrays):
        calls["n"] += 1
        if calls["n"] <= 2:  # epochs 0 and 1 fit on the disk
            return real(file, **arrays)
        file.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "savez", savez_until_full)
    out_dir = tmp_path / "run"
    argv = ["train", "--dataset", "moons", "--hidden", "8", "--epochs", "3"]
    rc = main([*argv, "--out", str(out_dir), "--quiet"])
    _, err = capsys.readouterr()
    assert rc == 2 and "Traceback" not in err and err.count("\n") == 1
    assert "No space left on device" in err and "(epoch 1) is kept at" in err
    assert load_checkpoint(out_dir / "checkpoint.npz")["epoch"] == 1
    assert os.listdir(out_dir) == ["checkpoint.npz"]  # the partial temporary file is gone


@pytest.mark.parametrize(
    ("option", "value", "check"),
    [
        ("--optimizer", "sgd", lambda s: "momentum" in s["optimizer"]["param_groups"][0]),
        ("--schedule", "step", lambda s: s["scheduler"]["step_size"] == 1),  # 2 epochs // 3
        (
            "--weight-decay",
            "0.25",
            lambda s: s["optimizer"]["param_groups"][0]["weight_decay"] == 0.25,
        ),
        ("--lr", "0.125", lambda s: s["optimizer"]["param_groups"][0]["initial_lr"] == 0.125),
    ],
)
def test_options_given_on_resume_win_over_the_checkpoint(tmp_path, good, option, value, check):
    ckpt = tmp_path / "checkpoint.npz"
    save(load(good), ckpt)
    assert main(["train", "--resume", str(ckpt), "--epochs", "2", option, value, "--quiet"]) == 0
    state = load_checkpoint(ckpt)
    assert state["epoch"] == 2 and check(state)


@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_max_mib_bounds_the_checkpoint_a_command_reads(tmp_path, good, capsys, command):
    ckpt = tmp_path / "checkpoint.npz"
    save(load(good), ckpt)
    before = ckpt.read_bytes()
    argv = [str(ckpt)] if command == "evaluate" else ["--resume", str(ckpt), "--quiet"]
    assert main([command, *argv, "--max-mib", "0.0001"]) == 2
    err = capsys.readouterr().err
    assert "over the limit of max_bytes=104" in err and len(err.strip().splitlines()) == 1
    assert ckpt.read_bytes() == before
    for bad in ("-1", "x"):  # argparse's own error: usage, one line naming the option, exit 2
        with pytest.raises(SystemExit) as exit_:
            main([command, *argv, "--max-mib", bad])
        assert exit_.value.code == 2
        assert "argument --max-mib:" in capsys.readouterr().err
