"""save/load: round trips without pickle, atomic replacement, clear errors on bad files."""

import io
import json
import os
import subprocess
import sys
import time
import tracemalloc
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


# --------------------------------------------------------------- hostile files (issue 10)


def _write(path, manifest, members=()):
    """A zip like `save` writes, with a hand-made manifest (or its raw bytes) and members."""
    blob = manifest if isinstance(manifest, bytes) else json.dumps(manifest).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, arr in [("__chainrule__", np.frombuffer(blob, np.uint8)), *members]:
            with z.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, arr, allow_pickle=True)
    return path


def _manifest(root, version=2):
    return {"format": "chainrule-checkpoint", "version": version, "root": root}


def _array_node(key, arr):
    return {"t": "array", "k": key, "d": arr.dtype.str, "s": list(arr.shape)}


def test_handmade_file_loads(tmp_path):
    arr = np.arange(6.0).reshape(2, 3)
    path = _write(tmp_path / "c.npz", _manifest(_array_node("a0", arr)), [("a0", arr)])
    np.testing.assert_array_equal(load(path), arr)


def test_unreferenced_zip_bomb_member_is_never_decompressed(tmp_path):
    path = tmp_path / "bomb.npz"
    _write(path, _manifest({"t": "scalar", "v": 1}))
    with (
        zipfile.ZipFile(path, "a", zipfile.ZIP_DEFLATED) as z,  # 64 MiB of zeros, ~64 KiB
        z.open("a0.npy", "w", force_zip64=True) as f,
    ):
        np.lib.format.write_array_header_1_0(
            f, {"descr": "<f8", "fortran_order": False, "shape": (2**23,)}
        )
        for _ in range(64):
            f.write(bytes(2**20))
    assert path.stat().st_size < 2**20
    tracemalloc.start()
    try:
        assert load(path) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


@pytest.mark.parametrize(
    ("declared", "header", "max_bytes", "message"),
    [
        ((10**9,), (10**9,), 2**30, r"member 'a0' needs 8000000000 bytes .* max_bytes=1073741824"),
        ((4,), (10**9,), 2**30, r"member 'a0' is float64 \(1000000000,\), but the manifest "),
        ((1000,), (1000,), 4000, r"member 'a0' needs 8000 bytes .* max_bytes=4000"),
    ],
)
def test_declared_and_real_sizes_are_checked_before_decompressing(
    tmp_path, declared, header, max_bytes, message
):
    path = tmp_path / "c.npz"
    node = {"t": "array", "k": "a0", "d": "<f8", "s": list(declared)}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("__chainrule__.npy", _npy(json.dumps(_manifest(node)).encode()))
        # only a header: the data that would follow is never asked for
        z.writestr("a0.npy", _header(header))
    with pytest.raises(CheckpointError, match=message):
        load(path, max_bytes=max_bytes)


def test_version_1_files_without_declared_shapes_are_still_bounded(tmp_path):
    path = tmp_path / "c.npz"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(
            "__chainrule__.npy",
            _npy(json.dumps(_manifest({"t": "array", "k": "a0"}, version=1)).encode()),
        )
        z.writestr("a0.npy", _header((10**9,)))
    with pytest.raises(CheckpointError, match=r"member 'a0' needs 8000000000 bytes"):
        load(path)
    arr = np.ones(3)
    _write(path, _manifest({"t": "array", "k": "a0"}, version=1), [("a0", arr)])
    np.testing.assert_array_equal(load(path), arr)  # files of the previous format still load


def _npy(blob):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.frombuffer(blob, np.uint8))
    return buf.getvalue()


def _header(shape):
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def _deep_text(depth):
    """The manifest of a list nested `depth` deep, as text (json.dumps would recurse)."""
    head = '{"format": "chainrule-checkpoint", "version": 2, "root": '
    inner = '{"t": "list", "items": [' * depth + '{"t": "scalar", "v": 0}' + "]}" * depth
    return (head + inner + "}").encode()


def _deep(depth):
    node = {"t": "scalar", "v": 0}
    for _ in range(depth):
        node = {"t": "list", "items": [node]}
    return node


@pytest.mark.parametrize(
    ("manifest", "message"),
    [
        (_manifest(_deep(1), version="1"), r"field 'version' is '1'; expected an integer"),
        (_manifest(_deep(1), version=None), r"field 'version' is None"),
        (_manifest(_deep(1), version=True), r"field 'version' is True"),
        (_manifest(_deep(1), version=0), r"field 'version' is 0"),
        (_manifest(_deep(1), version=99), r"format version 99; this chainrule reads up to"),
        ({"format": "chainrule-checkpoint", "version": 2}, r"no field 'root'"),
        (["format"], r"not a chainrule checkpoint"),
        (_deep_text(500), r"nested deeper than the limit of 64 levels"),
        (_manifest({"t": "set", "items": []}), r"node at '<root>' has an unknown .* 'set'"),
        (_manifest({"t": "list", "items": 5}), r"unknown or malformed type 'list'"),
        (_manifest({"t": "dict", "items": [[True, _deep(0)]]}), r"item 0 is not a \[str or int"),
        (_manifest({"t": "scalar", "v": [1]}), r"field 'v' is not a bool, number, str or null"),
        (_manifest({"t": "array", "k": 5}), r"field 'k' is 5; expected a new member name"),
        (_manifest({"t": "array", "k": "a9", "d": "<f8", "s": [1]}), r"member 'a9', which"),
        (_manifest({"t": "array", "k": "a0", "d": "|O", "s": [1]}), r"fields 'd'/'s' are '\|O'"),
        (_manifest({"t": "array", "k": "a0", "d": "<f8", "s": [-1]}), r"'d'/'s' are '<f8'/\[-1\]"),
        (
            _manifest({"t": "list", "items": [_array_node("a0", np.ones(1))] * 2}),
            r"node at '/[01]': field 'k' is 'a0'; expected a new member name",
        ),
    ],
)
def test_malformed_manifests_are_named(tmp_path, manifest, message):
    path = _write(tmp_path / "c.npz", manifest, [("a0", np.ones(1))])
    with pytest.raises(CheckpointError, match=message):
        load(path)


def test_manifest_too_deep_for_json_is_a_checkpoint_error(tmp_path):
    path = _write(tmp_path / "c.npz", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(CheckpointError, match=r"(nested deeper|damaged manifest)"):
        load(path)


def test_object_members_are_refused_without_unpickling(tmp_path):
    arr = np.array([{"x": 1}, None], dtype=object)
    node = {"t": "array", "k": "a0", "d": "<f8", "s": [2]}
    path = _write(tmp_path / "c.npz", _manifest(node), [("a0", arr)])
    with pytest.raises(CheckpointError, match=r"member 'a0' has dtype object; only numeric"):
        load(path)


def test_save_refuses_nesting_that_load_would_refuse(tmp_path):
    deep: list = []
    for _ in range(100):
        deep = [deep]
    with pytest.raises(ValueError, match=r"nested deeper than the limit of 64 levels"):
        save(deep, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_next_save_removes_orphans_of_dead_writers_only(tmp_path):
    path = tmp_path / "ckpt.npz"
    dead, alive = _dead_pid(), os.getppid()
    orphan = tmp_path / f".ckpt.npz.{dead}.abc_1234.tmp"
    keep = [
        tmp_path / f".ckpt.npz.{alive}.abcd1234.tmp",  # a writer still running
        tmp_path / f".other.npz.{dead}.abcd1234.tmp",  # another target's
        tmp_path / f".ckpt.npz.{dead}.abcd1234.tmp.bak",  # not our pattern
        tmp_path / "notes.tmp",
    ]
    for p in [orphan, *keep]:
        p.write_bytes(b"partial")
    save({"w": np.ones(2)}, path)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in [path, *keep])


_SAVER = """
import sys, numpy as np
from chainrule.serialization import save
state = {"w": np.random.default_rng(0).normal(size=(1000, 1000)), "epoch": 0}
while True:
    state["epoch"] += 1
    save(state, sys.argv[1])
    print(state["epoch"], flush=True)
"""


def test_kill_9_mid_save_leaves_nothing_after_the_next_save(tmp_path):
    path = tmp_path / "ckpt.npz"
    orphans_seen = 0
    for attempt, delay in enumerate([0.0, 0.05, 0.11] * 4):  # until one kill lands mid-save
        if attempt >= 3 and orphans_seen:
            break
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(path)], stdout=subprocess.PIPE, text=True
        )
        try:
            proc.stdout.readline()  # one complete save is on disk: the next is under way
            time.sleep(delay)
        finally:
            proc.kill()  # SIGKILL: no cleanup handler runs
            proc.wait(timeout=60)
            proc.stdout.close()
        orphans_seen += sum(name.endswith(".tmp") for name in os.listdir(tmp_path))
        epoch = load(path)["epoch"]  # the last complete save is intact
        assert epoch >= 1
        save({"epoch": -1}, path)
        assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert orphans_seen >= 1  # the kills did land mid-save, so the cleanup was exercised


def test_a_megabyte_long_crafted_name_gives_a_short_line(tmp_path):
    node = {"t": "array", "k": "k" * 2**20, "d": "<f8", "s": [1]}
    path = _write(tmp_path / "c.npz", _manifest(node))
    with pytest.raises(CheckpointError) as info:
        load(path)
    assert len(str(info.value)) < 300 and "\n" not in str(info.value)
    assert "which the archive does not contain" in str(info.value)


def test_a_zip_of_too_many_members_is_refused_before_its_directory_is_read(tmp_path):
    path = _write(tmp_path / "c.npz", _manifest(_deep(0)))
    with zipfile.ZipFile(path, "a") as z:
        for i in range(0xFFFF):  # each ~100 bytes on disk, ~550 bytes as a ZipInfo
            z.writestr(f"{i}", b"")
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"65535 or more members; .* at most 65534"):
            load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**20
    save([np.zeros(0)] * 100, path)  # well under the limit: fine
    assert len(load(path)) == 100
