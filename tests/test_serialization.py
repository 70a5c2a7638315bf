"""save/load: round trips without pickle, atomic replacement, clear errors on bad files."""

import os
import zipfile

import numpy as np
import pytest

import chainrule as cr
from chainrule.serialization import CheckpointError, load, save


def test_round_trip_of_nested_state(tmp_path):
    state = {
        "model": {"0.weight": cr.tensor(np.eye(3, dtype=np.float32)), "0.bias": np.zeros(3)},
        "optimizer": {
            "state": {0: {"step": 4, "exp_avg": np.ones(2)}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0]}],
        },
        "epoch": 7,
        "name": "run",
        "flag": True,
        "none": None,
        "big": 2**100,
        "scalar": np.float32(1.5),
        "labels": np.arange(3, dtype=np.int64),
    }
    save(state, tmp_path / "ckpt.npz")
    back = load(tmp_path / "ckpt.npz")
    assert isinstance(back["model"]["0.weight"], cr.Tensor)
    np.testing.assert_array_equal(back["model"]["0.weight"].data, np.eye(3))
    assert back["optimizer"]["state"][0]["step"] == 4  # int keys survive
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert back["epoch"] == 7 and back["flag"] is True and back["none"] is None
    assert back["big"] == 2**100 and back["scalar"] == np.float32(1.5)
    assert back["labels"].dtype == np.int64


def test_file_is_a_plain_npz_without_pickle(tmp_path):
    save({"w": np.ones(2)}, tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        assert "__chainrule__" in npz.files


def test_unsupported_values_are_named(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store a set at '/a/b'"):
        save({"a": {"b": {1, 2}}}, tmp_path / "x.npz")
    with pytest.raises(TypeError, match="dtype object"):
        save({"a": np.array([None])}, tmp_path / "x.npz")
    assert not (tmp_path / "x.npz").exists()
    assert os.listdir(tmp_path) == []  # no temporary file left behind


def test_crash_between_write_and_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save({"epoch": 1, "w": np.zeros(4)}, path)
    before = path.read_bytes()

    def crash(src, dst):
        raise OSError("simulated power loss before the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="simulated"):
        save({"epoch": 2, "w": np.ones(4)}, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["ckpt.npz"]


@pytest.mark.parametrize("cut", [0, 10, 200, -30])
def test_truncated_file_is_a_clear_error(tmp_path, cut):
    path = tmp_path / "ckpt.npz"
    save({"w": np.arange(1000.0)}, path)
    data = path.read_bytes()
    path.write_bytes(data[:cut])
    with pytest.raises(CheckpointError, match=r"not a (readable )?chainrule checkpoint"):
        load(path)


def test_corrupt_bytes_are_detected(tmp_path):
    path = tmp_path / "ckpt.npz"
    save({"w": np.arange(1000.0)}, path)
    data = bytearray(path.read_bytes())
    data[500] ^= 0xFF  # inside the array member: the zip CRC catches it
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        load(path)


def test_foreign_npz_and_missing_file(tmp_path):
    np.savez(tmp_path / "other.npz", w=np.ones(2))
    with pytest.raises(CheckpointError, match="not a chainrule checkpoint"):
        load(tmp_path / "other.npz")
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load(tmp_path / "missing.npz")
    with zipfile.ZipFile(tmp_path / "z.npz", "w") as z:
        z.writestr("__chainrule__.npy", b"junk")
    with pytest.raises(CheckpointError):
        load(tmp_path / "z.npz")
