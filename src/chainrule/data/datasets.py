"""Datasets that need no internet: the bundled UCI digits and synthetic moons, spirals, circles.

Every loader returns (X float32 of shape (n, features), y int64 of shape (n,)).
"""

from __future__ import annotations

import gzip
import os
from importlib import resources
from pathlib import Path

import numpy as np

__all__ = [
    "DATASETS",
    "TRAIN_SIZES",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "load_mnist1d",
    "make_circles",
    "make_moons",
    "make_spirals",
    "train_test_split",
]


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """The UCI optical handwritten digits: 1,797 images of 8x8 pixels, 10 classes.

    Pixels (0..16) are scaled to [0, 1]. Bundled with chainrule (CC BY 4.0, see
    `chainrule/datasets/README.md`); the copy is the one scikit-learn ships.

    Examples
    --------
    >>> from chainrule.data import load_digits
    >>> X, y = load_digits()
    >>> X.shape, y.shape, int(y.max())
    ((1797, 64), (1797,), 9)
    """
    blob = resources.files("chainrule.datasets").joinpath("digits.csv.gz").read_bytes()
    table = np.loadtxt(gzip.decompress(blob).decode().splitlines(), delimiter=",", dtype=np.float32)
    return table[:, :-1] / np.float32(16.0), table[:, -1].astype(np.int64)


def load_mnist1d() -> tuple[np.ndarray, np.ndarray]:
    """MNIST-1D (Greydanus 2020): 5,000 signals of length 40, 10 classes; training part first.

    The paper's default data (`mnist1d.data.make_dataset()` of the mnist1d package with its
    default arguments, seed 42), generated once and bundled (see `chainrule/datasets/README.md`):
    the first 4,000 rows are its training part, the last 1,000 its test part (`TRAIN_SIZES`).

    Examples
    --------
    >>> from chainrule.data import load_mnist1d
    >>> X, y = load_mnist1d()
    >>> X.shape, y.shape, int(y.max())
    ((5000, 40), (5000,), 9)
    """
    with resources.files("chainrule.datasets").joinpath("mnist1d.npz").open("rb") as f:
        d = np.load(f)
        X = np.concatenate([d["x"], d["x_test"]]).astype(np.float32)
        y = np.concatenate([d["y"], d["y_test"]]).astype(np.int64)
    return X, y


MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def _read_idx(path: Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, optionally gzipped) as a uint8 array."""
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{path}: not an IDX file of unsigned bytes")
    ndim = raw[3]
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, the file holds {data.size} values")
    return data.reshape(dims)


def load_mnist(root: str | os.PathLike[str] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """MNIST from the user's own copy (never downloaded): 70,000 images of 28x28, 10 classes.

    `root` (default: the CHAINRULE_MNIST environment variable) is a directory holding the four
    IDX files (`train-images-idx3-ubyte` ... `t10k-labels-idx1-ubyte`, gzipped or not).
    Pixels are scaled to [0, 1] and flattened to 784 features; the 60,000 training images come
    first (`TRAIN_SIZES["mnist"]`), then the 10,000 test images.

    Raises
    ------
    FileNotFoundError
        Naming the directory and the missing file, if the copy is not there.
    """
    where = root if root is not None else os.environ.get("CHAINRULE_MNIST")
    if not where:
        raise FileNotFoundError(
            "MNIST is not bundled and never downloaded: put its four IDX files in a directory "
            "and set CHAINRULE_MNIST to it (or pass root=)"
        )
    parts = []
    for name in MNIST_FILES:
        found = [p for p in (Path(where) / name, Path(where) / f"{name}.gz") if p.is_file()]
        if not found:
            raise FileNotFoundError(f"MNIST: {name}(.gz) is missing from {where}")
        parts.append(_read_idx(found[0]))
    images = np.concatenate([parts[0], parts[2]])
    labels = np.concatenate([parts[1], parts[3]])
    if len(images) != len(labels):
        raise ValueError(f"MNIST: {len(images)} images but {len(labels)} labels in {where}")
    X = images.reshape(len(images), -1).astype(np.float32) / np.float32(255)
    return X, labels.astype(np.int64)


def make_moons(
    n_samples: int = 1000, noise: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (2 features, 2 classes), with Gaussian noise.

    Examples
    --------
    >>> from chainrule.data import make_moons
    >>> X, y = make_moons(10)
    >>> X.shape, sorted(set(y.tolist()))
    ((10, 2), [0, 1])
    """
    _check_n(n_samples, "make_moons")
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, np.pi, n_out)
    t_in = np.linspace(0, np.pi, n_in)
    X = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], 1),
            np.stack([1 - np.cos(t_in), 0.5 - np.sin(t_in)], 1),
        ]
    )
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    X = X + rng.normal(0.0, noise, X.shape)
    return X.astype(np.float32), y


def make_spirals(
    n_samples: int = 900, n_classes: int = 3, noise: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """`n_classes` interleaved spiral arms in the plane (CS231n's classic non-linear toy set).

    Examples
    --------
    >>> from chainrule.data import make_spirals
    >>> X, y = make_spirals(30, n_classes=3)
    >>> X.shape, sorted(set(y.tolist()))
    ((30, 2), [0, 1, 2])
    """
    _check_n(n_samples, "make_spirals")
    rng = np.random.default_rng(seed)
    per = np.full(n_classes, n_samples // n_classes)
    per[: n_samples % n_classes] += 1
    xs, ys = [], []
    for k, m in enumerate(per):
        r = np.linspace(0.0, 1.0, m)
        theta = np.linspace(k * 4.0, (k + 1) * 4.0, m) + rng.normal(0.0, noise, m)
        xs.append(np.stack([r * np.sin(theta), r * np.cos(theta)], 1))
        ys.append(np.full(m, k, np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def make_circles(
    n_samples: int = 1000, factor: float = 0.5, noise: float = 0.08, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """A circle of radius `factor` (class 1) inside one of radius 1 (class 0), with noise.

    Examples
    --------
    >>> from chainrule.data import make_circles
    >>> X, y = make_circles(10)
    >>> X.shape, sorted(set(y.tolist()))
    ((10, 2), [0, 1])
    """
    _check_n(n_samples, "make_circles")
    if not 0.0 < factor < 1.0:
        raise ValueError(f"make_circles: factor must be in (0, 1), got {factor}")
    rng = np.random.default_rng(seed)
    n_out = n_samples // 2
    n_in = n_samples - n_out
    t_out = np.linspace(0, 2 * np.pi, n_out, endpoint=False)
    t_in = np.linspace(0, 2 * np.pi, n_in, endpoint=False)
    X = np.concatenate(
        [
            np.stack([np.cos(t_out), np.sin(t_out)], 1),
            factor * np.stack([np.cos(t_in), np.sin(t_in)], 1),
        ]
    )
    y = np.concatenate([np.zeros(n_out, np.int64), np.ones(n_in, np.int64)])
    X = X + rng.normal(0.0, noise, X.shape)
    return X.astype(np.float32), y


def _check_n(n: int, name: str) -> None:
    if n < 2:
        raise ValueError(f"{name}: n_samples must be at least 2, got {n}")


DATASETS = {
    "digits": load_digits,
    "moons": make_moons,
    "spirals": make_spirals,
    "circles": make_circles,
    "mnist1d": load_mnist1d,
    "mnist": load_mnist,
}
# Datasets with a published train/test split: the first n samples are the training part.
TRAIN_SIZES = {"mnist1d": 4000, "mnist": 60000}


def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Load one of `DATASETS` by name (an unknown name lists the valid ones)."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose from {', '.join(DATASETS)}")
    return DATASETS[name]()


def train_test_split(
    X: np.ndarray, y: np.ndarray, test_size: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Stratified split: each class keeps its share in both parts; fixed by `seed`.

    Returns X_train, X_test, y_train, y_test.

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import train_test_split
    >>> X, y = np.arange(20).reshape(10, 2), np.array([0] * 5 + [1] * 5)
    >>> _, _, _, y_test = train_test_split(X, y, test_size=0.4)
    >>> sorted(y_test.tolist())
    [0, 0, 1, 1]
    """
    if len(X) != len(y):
        raise ValueError(f"train_test_split: X has {len(X)} samples, y has {len(y)}")
    if not 0.0 < test_size < 1.0:
        raise ValueError(f"train_test_split: test_size must be in (0, 1), got {test_size}")
    rng = np.random.default_rng(seed)
    test = []
    for label in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == label))
        test.append(members[: round(test_size * len(members))])
    mask = np.zeros(len(y), bool)
    mask[np.concatenate(test)] = True
    if mask.all() or not mask.any():
        raise ValueError(
            f"train_test_split: {len(y)} samples are too few for test_size="
            f"{test_size} (one side would be empty)"
        )
    return X[~mask], X[mask], y[~mask], y[mask]
