"""`save` / `load`: checkpoints as NumPy .npz files that never need pickle.

Owns the on-disk format: every array is one .npz member; the nesting (dicts, lists, tuples), the
scalars and each member's dtype and shape are a JSON manifest stored as a uint8 member. Writes
are atomic (temporary file in the same directory, fsync, os.replace), so a crash mid-save leaves
the previous file intact; the next save to that path removes the temporary files such crashes
leave. `load` treats the file as untrusted input: bounded depth, bounded decompressed size.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import struct
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from chainrule.tensor import Tensor

__all__ = ["DEFAULT_MAX_BYTES", "MAX_DEPTH", "CheckpointError", "load", "save"]

_MANIFEST = "__chainrule__"
_FORMAT = "chainrule-checkpoint"
_VERSION = 2  # 2: array nodes declare their dtype ("d") and shape ("s"); 1 is still read
_SCALARS = (bool, int, float, str, type(None))
_KINDS = "biufc"  # numeric and bool dtypes: never objects, which would need pickle
DEFAULT_MAX_BYTES = 2**30  # 1 GiB decompressed: far above any chainrule model, far below RAM
MAX_DEPTH = 64  # nesting of dicts/lists/tuples; a state_dict needs about 5
MAX_MANIFEST_BYTES = 64 * 2**20
# Arrays per file: the zip count field's own limit. zipfile builds an object per member of
# the central directory before anything can be checked (17 MB of empty members: 110 MB, 28 s).
MAX_MEMBERS = 0xFFFF - 1


class CheckpointError(ValueError):
    """A file that is not a readable chainrule checkpoint (corrupt, truncated, foreign, or
    over a limit); the message is one line naming the member, field or limit."""


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Write nested dicts/lists/tuples of arrays, Tensors and scalars to `path`, atomically.

    Temporary files left in the target's directory by an earlier save to the same path that
    was killed mid-write (their names carry the writer's process id) are removed first.

    Parameters
    ----------
    obj : dict, list, tuple, ndarray, Tensor or scalar
        Dict keys must be str or int. Scalars are bool, int, float, str or None. At most
        MAX_DEPTH levels of nesting.
    path : str or PathLike
        The file to write (used as given: no suffix is added).

    Raises
    ------
    TypeError
        If `obj` contains something else (the message names where).
    ValueError
        If `obj` is nested deeper than MAX_DEPTH.
    OSError
        If the file cannot be written (a full disk, say); the previous file is then intact.

    Examples
    --------
    >>> import os, tempfile, numpy as np, chainrule.serialization as S
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> S.save({"w": np.ones(2), "epoch": 3}, path)
    >>> S.load(path)["epoch"]
    3
    """
    arrays: dict[str, np.ndarray] = {}
    manifest = {"format": _FORMAT, "version": _VERSION, "root": _encode(obj, arrays, "", 0)}
    blob = json.dumps(manifest).encode()
    arrays[_MANIFEST] = np.frombuffer(blob, dtype=np.uint8)
    if len(arrays) > MAX_MEMBERS:
        raise ValueError(
            f"save: {len(arrays) - 1} arrays; a checkpoint holds at most {MAX_MEMBERS - 1}"
        )
    path = Path(path)
    directory = path.parent if str(path.parent) else Path(".")
    _remove_orphans(directory, path.name)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=directory)
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


def _remove_orphans(directory: Path, name: str) -> None:
    """Delete `.NAME.PID.XXXXXXXX.tmp` files of `name` whose writer PID is no longer running:
    what a save killed mid-write (kill -9, power loss) leaves. A live writer's file is kept."""
    pattern = re.compile(re.escape(f".{name}.") + r"(\d+)\.[A-Za-z0-9_]{8}\.tmp")
    try:
        names = [e.name for e in os.scandir(directory)]
    except OSError:
        return
    for match in filter(None, map(pattern.fullmatch, names)):
        pid = int(match[1])
        if pid != os.getpid() and not _running(pid):
            # gone already, or not ours to remove: the save goes on either way
            with contextlib.suppress(OSError):
                os.unlink(directory / match[0])


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, OSError):
        return True  # exists but not ours, or cannot tell: keep its file
    return True


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


def _encode(obj: Any, arrays: dict[str, np.ndarray], where: str, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise ValueError(f"save: {where!r} is nested deeper than the limit of {MAX_DEPTH} levels")
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
        return {"t": kind, "k": key, "d": arr.dtype.str, "s": list(arr.shape)}
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
            items.append([k, _encode(v, arrays, f"{where}/{k}", depth + 1)])
        return {"t": "dict", "items": items}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {
            "t": kind,
            "items": [_encode(v, arrays, f"{where}/{i}", depth + 1) for i, v in enumerate(obj)],
        }
    raise TypeError(
        f"save: cannot store a {type(obj).__name__} at {where or '<root>'!r} "
        "(supported: dict, list, tuple, ndarray, Tensor, bool, int, float, str, None)"
    )


def load(path: str | os.PathLike[str], *, max_bytes: int | None = DEFAULT_MAX_BYTES) -> Any:
    """Read a file written by `save`; arrays come back as ndarrays and Tensors as Tensors.

    The file is treated as untrusted: the manifest is checked (types, nesting depth, version)
    before any array is read, only the members it references are read, and each member's
    .npy header (dtype, shape) is checked against the manifest and against `max_bytes`
    before a byte of it is decompressed.

    Parameters
    ----------
    path : str or PathLike
        A file written by `save`.
    max_bytes : int or None, default DEFAULT_MAX_BYTES (1 GiB)
        The most memory the arrays and the manifest may take once decompressed; None for no
        bound. `chainrule evaluate` and `chainrule train --resume` use the default.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    CheckpointError
        If the file is truncated, corrupt, not a chainrule checkpoint, or larger than
        `max_bytes`; the one-line message names the member, field or limit.

    Examples
    --------
    >>> import os, tempfile, numpy as np, chainrule.serialization as S
    >>> path = os.path.join(tempfile.mkdtemp(), "ckpt.npz")
    >>> S.save({"w": np.zeros((1000, 1000))}, path)
    >>> S.load(path, max_bytes=10**6)
    Traceback (most recent call last):
    ...
    chainrule.serialization.CheckpointError: load: ... member 'a0' needs 8000000 bytes ... \
over the limit of max_bytes=1000000
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"load: no checkpoint file at {str(path)!r}")
    limit = math.inf if max_bytes is None else max_bytes
    where = f"load: {str(path)!r}"
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise CheckpointError(
                f"{where} is not a chainrule checkpoint (not an .npz archive; "
                "empty, truncated at the start, or another format)"
            )
        count = _member_count(f)
        if count is not None and count > MAX_MEMBERS:
            raise CheckpointError(
                f"{where} has {count} or more members; a checkpoint has at most {MAX_MEMBERS}"
            )
        f.seek(0)
        try:
            with zipfile.ZipFile(f) as archive:
                reader = _Reader(archive, where, limit)
                manifest = _read_manifest(reader)
                members = _check_manifest(manifest, reader, where)
                arrays = {key: reader.array(key, spec) for key, spec in members.items()}
        except CheckpointError:
            raise
        except Exception as exc:  # any other failure to parse an untrusted file is "corrupt"
            raise CheckpointError(
                f"{where} is not a readable chainrule checkpoint "
                f"(corrupt or truncated file?): {_one_line(exc)}"
            ) from None
    return _decode(manifest["root"], arrays)


def _member_count(f: Any) -> int | None:
    """The member count of the zip's end-of-central-directory record (0xFFFF: that many or
    more), read from the file's tail; None if there is no such record."""
    size = f.seek(0, os.SEEK_END)
    tail_len = min(size, 22 + 0xFFFF)  # the record, then a comment of up to 64 KiB
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or len(tail) - at < 22:
        return None
    return int(struct.unpack_from("<H", tail, at + 10)[0])


def _one_line(exc: BaseException) -> str:
    return _short(" ".join(str(exc).split()) or type(exc).__name__, quote=False)


def _short(value: Any, quote: bool = True, limit: int = 80) -> str:
    """A crafted name can be megabytes long: messages show at most `limit` characters."""
    text = repr(value) if quote else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Reader:
    """Reads .npy members of an open zip, refusing what would exceed the byte budget."""

    def __init__(self, archive: zipfile.ZipFile, where: str, limit: float) -> None:
        self.archive, self.where, self.left, self.limit = archive, where, limit, limit

    def header(self, key: str) -> tuple[np.dtype[Any], tuple[int, ...], bool, Any]:
        """The member's open stream positioned at its data, with dtype, shape, order."""
        try:
            info = self.archive.getinfo(key + ".npy")
        except KeyError:
            raise CheckpointError(
                f"{self.where}: the manifest references member {_short(key)}, "
                "which the archive does not contain"
            ) from None
        stream = self.archive.open(info)
        try:
            version = np.lib.format.read_magic(stream)
            if version not in ((1, 0), (2, 0)):
                raise CheckpointError(
                    f"{self.where}: member {_short(key)} has .npy version {version}"
                )
            read = np.lib.format.read_array_header_1_0
            if version == (2, 0):
                read = np.lib.format.read_array_header_2_0
            shape, fortran, dtype = read(stream)  # a bounded header: never the data
            if dtype.kind not in _KINDS or dtype.hasobject or dtype.fields is not None:
                raise CheckpointError(
                    f"{self.where}: member {_short(key)} has dtype {dtype}; only numeric and bool "
                    "arrays are read (never objects, which would need pickle)"
                )
        except BaseException:
            stream.close()
            raise
        return dtype, tuple(shape), fortran, stream

    def spend(self, key: str, nbytes: int) -> None:
        if nbytes > self.left:
            total = self.limit - self.left + nbytes
            raise CheckpointError(
                f"{self.where}: member {_short(key)} needs {nbytes} bytes once decompressed "
                f"({total:.0f} with what was read before it), over the limit of "
                f"max_bytes={self.limit:.0f}"
            )
        self.left -= nbytes

    def array(self, key: str, spec: tuple[str, list[int]] | None) -> np.ndarray:
        dtype, shape, fortran, stream = self.header(key)
        with stream:
            if spec is not None and (dtype.str, list(shape)) != (spec[0], spec[1]):
                raise CheckpointError(
                    f"{self.where}: member {_short(key)} is {dtype} {shape}, but the manifest "
                    f"declares {spec[0]} {tuple(spec[1])}"
                )
            nbytes = math.prod(shape) * dtype.itemsize
            self.spend(key, nbytes)
            arr = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
            view = arr.reshape(-1, order="A").view(np.uint8).data if nbytes else None
            got = stream.readinto(view) if view is not None else 0
            while view is not None and 0 < got < nbytes:  # readinto may return short reads
                more = stream.readinto(view[got:])
                if not more:
                    break
                got += more
            if got != nbytes or stream.read(1):  # reading to the end checks the zip CRC
                raise CheckpointError(
                    f"{self.where}: member {_short(key)} does not hold the {nbytes} bytes its "
                    "header declares (corrupt or truncated file?)"
                )
        return arr


def _read_manifest(reader: _Reader) -> dict[str, Any]:
    where = reader.where
    if _MANIFEST + ".npy" not in reader.archive.NameToInfo:
        raise CheckpointError(f"{where} is an .npz file but not a chainrule checkpoint")
    dtype, shape, _, stream = reader.header(_MANIFEST)
    stream.close()
    if dtype != np.uint8 or len(shape) != 1 or shape[0] > MAX_MANIFEST_BYTES:
        raise CheckpointError(
            f"{where}: the manifest member is {dtype} {shape}; expected uint8 bytes, "
            f"at most {MAX_MANIFEST_BYTES}"
        )
    blob = reader.array(_MANIFEST, None).tobytes()
    try:
        manifest = json.loads(blob.decode())
    except RecursionError:
        raise CheckpointError(
            f"{where}: the manifest is nested deeper than the limit of {MAX_DEPTH} levels"
        ) from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{where} has a damaged manifest ({_one_line(exc)})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise CheckpointError(f"{where} is an .npz file but not a chainrule checkpoint")
    version = manifest.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise CheckpointError(
            f"{where}: manifest field 'version' is {version!r}; expected an integer >= 1"
        )
    if version > _VERSION:
        raise CheckpointError(
            f"{where} has format version {version}; this chainrule reads up to version {_VERSION}"
        )
    if "root" not in manifest:
        raise CheckpointError(f"{where}: the manifest has no field 'root'")
    return manifest


def _check_manifest(
    manifest: dict[str, Any], reader: _Reader, where: str
) -> dict[str, tuple[str, list[int]] | None]:
    """Walk the manifest without recursion; return the members it references with the
    (dtype, shape) each declares (None in version-1 files, which declare none)."""
    declares = manifest["version"] >= 2
    members: dict[str, tuple[str, list[int]] | None] = {}
    stack: list[tuple[Any, str, int]] = [(manifest["root"], "", 0)]
    while stack:
        node, at, depth = stack.pop()
        bad = f"{where}: manifest node at {_short(at or '<root>')}"
        if depth > MAX_DEPTH:
            raise CheckpointError(f"{bad} is nested deeper than the limit of {MAX_DEPTH} levels")
        kind = node.get("t") if isinstance(node, dict) else None
        if kind == "scalar":
            if "v" not in node or not isinstance(node["v"], _SCALARS):
                raise CheckpointError(f"{bad}: field 'v' is not a bool, number, str or null")
        elif kind in ("array", "npscalar", "tensor"):
            key = node.get("k")
            if not isinstance(key, str) or key == _MANIFEST or key in members:
                raise CheckpointError(
                    f"{bad}: field 'k' is {_short(key)}; expected a new member name"
                )
            spec = (node.get("d"), node.get("s")) if declares else None
            if spec is not None and not _valid_spec(*spec):
                raise CheckpointError(
                    f"{bad}: fields 'd'/'s' are {_short(spec[0])}/{_short(spec[1])}; "
                    "expected a numeric dtype and a list of sizes"
                )
            if spec is not None:  # the declared size alone may already be over the budget
                nbytes = math.prod(spec[1]) * np.dtype(spec[0]).itemsize
                if nbytes > reader.limit:
                    reader.spend(key, nbytes)
            members[key] = spec
        elif kind in ("dict", "list", "tuple") and isinstance(node.get("items"), list):
            for i, item in enumerate(node["items"]):
                if kind == "dict":
                    if not (isinstance(item, list) and len(item) == 2 and _valid_key(item[0])):
                        raise CheckpointError(f"{bad}: item {i} is not a [str or int key, node]")
                    stack.append((item[1], f"{at}/{item[0]}", depth + 1))
                else:
                    stack.append((item, f"{at}/{i}", depth + 1))
        else:
            raise CheckpointError(f"{bad} has an unknown or malformed type {kind!r}")
    return members


def _valid_key(k: Any) -> bool:
    return isinstance(k, (str, int)) and not isinstance(k, bool)


def _valid_spec(dtype: Any, shape: Any) -> bool:
    if not (isinstance(dtype, str) and isinstance(shape, list)):
        return False
    if len(shape) > 32 or not all(type(n) is int and n >= 0 for n in shape):
        return False
    try:
        return np.dtype(dtype).kind in _KINDS and np.dtype(dtype).str == dtype
    except TypeError:
        return False


def _decode(node: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
    # recursion is bounded: _check_manifest has refused anything deeper than MAX_DEPTH
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
    items = [_decode(v, arrays) for v in node["items"]]
    return items if kind == "list" else tuple(items)
