"""The model families behind `chainrule train --model` and MNIST-1D: the paper's
architectures (parameter counts and forward pass equal to PyTorch builds of them), the bundled
data and its published split, and the command line's dataset preset."""

from __future__ import annotations

import json

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.data import TRAIN_SIZES, load_mnist1d
from chainrule.models import MODELS
from chainrule.training import TrainConfig, fit, prepare_data

# Parameter counts of the paper's models (notebooks/models.py) for 40 inputs and 10 classes:
# MLP 40*100+100 + 100*100+100 + 100*10+10; CNN 25*5+25 + 2*(25*25*3+25) + 125*10+10;
# GRU 2 directions * (18*1 + 18*6 + 2*18) + 480*10+10.
PAPER_PARAMETERS = {"logistic": 410, "mlp": 15210, "cnn": 5210, "gru": 5134}


@pytest.mark.parametrize("name", list(PAPER_PARAMETERS))
def test_paper_models_have_the_papers_parameter_counts(name) -> None:
    model = MODELS[name](40, 10, hidden=(100, 100), residual=True)
    assert model.num_parameters() == PAPER_PARAMETERS[name]
    assert model(cr.ones(3, 40)).shape == (3, 10)


def _torch_twin(name, torch):
    nn = torch.nn
    if name == "cnn":
        return nn.ModuleDict(
            {
                "conv1": nn.Conv1d(1, 25, 5, stride=2, padding=1),
                "conv2": nn.Conv1d(25, 25, 3, stride=2, padding=1),
                "conv3": nn.Conv1d(25, 25, 3, stride=2, padding=1),
                "linear": nn.Linear(125, 10),
            }
        )
    return nn.ModuleDict(
        {"gru": nn.GRU(1, 6, batch_first=True, bidirectional=True), "linear": nn.Linear(480, 10)}
    )


@pytest.mark.parametrize("name", ["cnn", "gru"])
def test_cnn_and_gru_compute_what_the_papers_torch_models_compute(name, rng) -> None:
    torch = pytest.importorskip("torch")
    model = MODELS[name](40, 10)
    twin = _torch_twin(name, torch)
    twin.load_state_dict({k: torch.tensor(v.data) for k, v in model.state_dict().items()})
    x = rng.standard_normal((4, 40)).astype(np.float32)
    t = torch.tensor(x)
    with torch.no_grad():
        if name == "cnn":
            h = t[:, None]
            for k in ("conv1", "conv2", "conv3"):
                h = twin[k](h).relu()
        else:
            h = twin["gru"](t[..., None])[0]
        expected = twin["linear"](h.flatten(1)).numpy()
    np.testing.assert_allclose(model(cr.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def test_mnist1d_is_bundled_with_its_published_split() -> None:
    X, y = load_mnist1d()
    assert (
        X.shape == (5000, 40)
        and X.dtype == np.float32
        and sorted(set(y.tolist())) == list(range(10))
    )
    assert abs(float(X.mean())) < 0.05 and abs(float(X.std()) - 1) < 0.05  # as generated
    X_train, _, _, y_test = prepare_data(TrainConfig.preset("mnist1d"))
    n = TRAIN_SIZES["mnist1d"]
    np.testing.assert_array_equal(X_train, X[:n])  # no standardisation, no reshuffled split
    np.testing.assert_array_equal(y_test, y[n:])


def test_mnist1d_preset_is_the_papers_recipe() -> None:
    c = TrainConfig.preset("mnist1d")
    assert (c.lr, c.batch_size, c.optimizer, c.schedule, c.epochs) == (
        1e-2,
        100,
        "adam",
        "none",
        200,
    )
    assert c.hidden == (100, 100) and c.residual and c.dropout == 0.0
    assert TrainConfig.preset(None) == TrainConfig()


def test_cnn_learns_mnist1d_in_a_few_epochs() -> None:
    config = TrainConfig.from_dict(
        {**TrainConfig.preset("mnist1d").to_dict(), "model": "cnn", "epochs": 4}
    )
    history = fit(config).history
    assert history[-1]["test_accuracy"] > 0.5  # chance is 0.1; the paper's CNN ends near 0.94
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_train_command_takes_dataset_and_model(tmp_path, capsys) -> None:
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "mnist1d",
            "--model",
            "gru",
            "--epochs",
            "1",
            "--quiet",
            "--out",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    config = json.loads((out / "metrics.json").read_text())["config"]
    assert (config["model"], config["lr"], config["batch_size"]) == ("gru", 0.01, 100)


def test_unknown_model_is_named() -> None:
    with pytest.raises(
        ValueError, match="unknown model 'rnn'; choose from mlp, logistic, cnn, gru"
    ):
        TrainConfig(model="rnn").validate()
    with pytest.raises(ValueError, match="40 features are not a square image"):
        MODELS["cnn2d"](40, 10)


def test_cnn2d_computes_what_torch_computes(rng) -> None:
    torch = pytest.importorskip("torch")
    model = MODELS["cnn2d"](64, 10, dropout=0.2).eval()
    assert model.num_parameters() == (16 * 9 + 16) + (32 * 16 * 9 + 32) + (32 * 16 * 10 + 10)
    tn = torch.nn
    twin = tn.ModuleDict(
        {
            "conv1": tn.Conv2d(1, 16, 3, padding=1),
            "conv2": tn.Conv2d(16, 32, 3, padding=1),
            "linear": tn.Linear(512, 10),
        }
    )
    twin.load_state_dict({k: torch.tensor(v.data) for k, v in model.state_dict().items()})
    x = rng.standard_normal((3, 64)).astype(np.float32)
    with torch.no_grad():
        h = twin["conv2"](twin["conv1"](torch.tensor(x).reshape(3, 1, 8, 8)).relu()).relu()
        expected = twin["linear"](tn.functional.max_pool2d(h, 2).flatten(1)).numpy()
    np.testing.assert_allclose(model(cr.tensor(x)).data, expected, rtol=1e-4, atol=1e-5)


def _idx(path, array, gz):
    import gzip

    header = bytes([0, 0, 8, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    blob = header + array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(blob) if gz else blob)


def test_mnist_is_read_from_the_users_own_idx_files(tmp_path, monkeypatch, rng) -> None:
    from chainrule.data import load_dataset, load_mnist

    with pytest.raises(FileNotFoundError, match="set CHAINRULE_MNIST"):
        monkeypatch.delenv("CHAINRULE_MNIST", raising=False)
        load_mnist()
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\(\.gz\) is missing"):
        load_mnist(tmp_path)
    train, test = rng.integers(0, 256, (5, 28, 28)), rng.integers(0, 256, (2, 28, 28))
    _idx(tmp_path / "train-images-idx3-ubyte.gz", train, gz=True)
    _idx(tmp_path / "train-labels-idx1-ubyte", np.arange(5), gz=False)
    _idx(tmp_path / "t10k-images-idx3-ubyte", test, gz=False)
    _idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([7, 9]), gz=True)
    monkeypatch.setenv("CHAINRULE_MNIST", str(tmp_path))
    X, y = load_dataset("mnist")
    assert X.shape == (7, 784) and X.dtype == np.float32 and y.tolist() == [0, 1, 2, 3, 4, 7, 9]
    np.testing.assert_allclose(X[5], test[0].reshape(-1) / 255, rtol=1e-6)
    assert MODELS["cnn2d"](784, 10)(cr.tensor(X)).shape == (7, 10)


def test_train_without_the_users_mnist_fails_with_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("CHAINRULE_MNIST", raising=False)
    out = tmp_path / "run"
    assert main(["train", "--dataset", "mnist", "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("chainrule train: error: MNIST is not bundled") and "\n" not in err
    assert not out.exists()  # nothing written for a run that could not start


def test_a_model_preset_sits_between_the_dataset_and_explicit_options() -> None:
    from chainrule.cli import build_parser
    from chainrule.commands.train import resolve

    assert TrainConfig.preset("digits", "cnn2d").dropout == 0.5  # chosen on a validation split
    assert TrainConfig.preset("digits", "mlp").dropout == TrainConfig().dropout
    assert TrainConfig.preset(None, "cnn2d").model == "cnn2d"
    parse = build_parser().parse_args
    assert resolve(parse(["train", "--model", "cnn2d", "--out", "/tmp/x"]))[0].dropout == 0.5
    given = parse(["train", "--model", "cnn2d", "--dropout", "0.1", "--out", "/tmp/x"])
    assert resolve(given)[0].dropout == 0.1
