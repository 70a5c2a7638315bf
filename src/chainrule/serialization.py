"""`save` / `load`: checkpoints as NumPy .npz files that never need pickle.

Owns the on-disk format: every array is one .npz member; the nesting (dicts, lists, tuples) and
the scalars are a JSON manifest stored as a uint8 member. Writes are atomic (temporary file in
the same directory, fsync, os.replace), so a crash mid-save leaves the previous file intact.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.tensor import Tensor

__all__ = ["CheckpointError", "load", "save"]

_MANIFEST = "__chainrule__"
_FORMAT = "chainrule-checkpoint"
_VERSION = 1
_SCALARS = (bool, int, float, str, type(None))


class CheckpointError(ValueError):
    """A file that is not a readable chainrule checkpoint (corrupt, truncated, foreign)."""


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write nested dicts/lists/tuples of arrays, Tensors and scalars to `path`, atomically.

    Parameters
    ----------
    obj : dict, list, tuple, ndarray, Tensor or scalar
        Dict keys must be str or int. Scalars are bool, int, float, str or None.
    path : str or PathLike
        The file to write (used as given: no suffix is added).

    Raises
    ------
    TypeError
        If `obj` contains something else (the message names where).

    Examples
    --------
    >>> import os, tempfile, numpy as np, chainrule.serialization as S
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> S.save({"w": np.ones(2), "epoch": 3}, path)
    >>> S.load(path)["epoch"]
    3
    """
    arrays: dict[str, np.ndarray] = {}
    manifest = {"format": _FORMAT, "version": _VERSION, "root": _encode(obj, arrays, "")}
    blob = json.dumps(manifest).encode()
    arrays[_MANIFEST] = np.frombuffer(blob, dtype=np.uint8)
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes it 0600; a checkpoint is an ordinary file
        with os.fdopen(fd, "wb") as f:
            # numpy's stub fears a key named allow_pickle; ours are paths and _MANIFEST
            np.savez(f, **arrays)  # type: ignore[arg-type]
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows), so best effort.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    if isinstance(obj, (Tensor, np.ndarray, np.generic)):
        arr = np.asarray(obj.data if isinstance(obj, Tensor) else obj)
        if arr.dtype.kind not in "biufc":
            raise TypeError(
                f"save: array at {where or '<root>'!r} has dtype {arr.dtype}; "
                "only numeric and bool arrays can be stored without pickle"
            )
        key = f"a{len(arrays)}"
        arrays[key] = arr
        kind = (
            "tensor"
            if isinstance(obj, Tensor)
            else "array"
            if arr.ndim or isinstance(obj, np.ndarray)
            else "npscalar"
        )
        return {"t": kind, "k": key}
    if isinstance(obj, _SCALARS):
        return {"t": "scalar", "v": obj}
    if isinstance(obj, dict):
        items = []
        for k, v in obj.items():
            if isinstance(k, bool) or not isinstance(k, (str, int)):
                raise TypeError(
                    f"save: dict key {k!r} at {where or '<root>'!r} is a "
                    f"{type(k).__name__}; only str and int keys can be stored"
                )
            items.append([k, _encode(v, arrays, f"{where}/{k}")])
        return {"t": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {"t": kind, "items": [_encode(v, arrays, f"{where}/{i}") for i, v in enumerate(obj)]}
    raise TypeError(
        f"save: cannot store a {type(obj).__name__} at {where or '<root>'!r} "
        "(supported: dict, list, tuple, ndarray, Tensor, bool, int, float, str, None)"
    )


def load(path: str | os.PathLike[str]) -> Any:
    """Read a file written by `save`; arrays come back as ndarrays and Tensors as Tensors.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is truncated, corrupt or not a chainrule checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load: no checkpoint file at {str(path)!r}")
    arrays = _read_members(path)
    if _MANIFEST not in arrays:
        raise CheckpointError(f"load: {str(path)!r} is an .npz file but not a chainrule checkpoint")
    try:
        manifest = json.loads(arrays.pop(_MANIFEST).tobytes().decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"load: {str(path)!r} has a damaged manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise CheckpointError(f"load: {str(path)!r} is an .npz file but not a chainrule checkpoint")
    if manifest.get("version", 0) > _VERSION:
        raise CheckpointError(
            f"load: {str(path)!r} has format version {manifest['version']}; "
            f"this chainrule reads up to version {_VERSION}"
        )
    try:
        return _decode(manifest["root"], arrays)
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"load: {str(path)!r} has a damaged manifest ({exc!r})") from None


def _read_members(path: Path) -> dict[str, np.ndarray]:
    # Open the file ourselves: np.load(path) leaks its handle when the zip is unreadable.
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(
                f"load: {str(path)!r} is not a chainrule checkpoint (not an .npz archive; "
                "empty, truncated at the start, or another format)"
            )
        f.seek(0)
        try:
            with np.load(f, allow_pickle=False) as npz:
                members = {name: npz[name] for name in npz.files}
            bad = [name for name, value in members.items() if not isinstance(value, np.ndarray)]
            if bad:
                raise ValueError(f"members {bad} are not .npy arrays")
            return members
        except Exception as exc:  # any parse failure of an untrusted file is "corrupt"
            raise CheckpointError(
                f"load: {str(path)!r} is not a readable chainrule checkpoint "
                f"(corrupt or truncated file?): {exc}"
            ) from None


def _decode(node: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    kind = node["t"]
    if kind == "scalar":
        return node["v"]
    if kind in ("array", "npscalar", "tensor"):
        arr = arrays[node["k"]]
        if kind == "tensor":
            return Tensor(arr)
        return arr[()] if kind == "npscalar" else arr
    if kind == "dict":
        return {k: _decode(v, arrays) for k, v in node["items"]}
    if kind in ("list", "tuple"):
        items = [_decode(v, arrays) for v in node["items"]]
        return items if kind == "list" else tuple(items)
    raise ValueError(f"unknown node type {kind!r}")
