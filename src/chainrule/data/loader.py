"""Dataset, TensorDataset and DataLoader: batches of Tensors, shuffled reproducibly.

Shuffling uses a seed and the epoch number (so resuming at epoch k reproduces epoch k's order),
or the global generator of `chainrule.random` when no seed is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from chainrule import random as _random
from chainrule.tensor import Tensor

__all__ = ["DataLoader", "Dataset", "TensorDataset", "default_collate"]


class Dataset:
    """An indexable collection of samples: define ``__getitem__(i)`` and ``__len__()``."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Samples are the i-th rows of equally long arrays (features, labels, ...).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import TensorDataset
    >>> ds = TensorDataset(np.zeros((4, 2)), np.arange(4))
    >>> len(ds), ds[3][1]
    (4, np.int64(3))
    """

    def __init__(self, *arrays: Any) -> None:
        if not arrays:
            raise ValueError("TensorDataset: needs at least one array")
        self.arrays = tuple(a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        lengths = [len(a) if a.ndim else -1 for a in self.arrays]
        if len(set(lengths)) != 1 or lengths[0] < 0:
            raise ValueError(
                f"TensorDataset: arrays must share their first dimension, got "
                f"shapes {[a.shape for a in self.arrays]}"
            )

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(a[index] for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])


def default_collate(samples: Sequence[Any]) -> Any:
    """Stack a list of samples (tuples of arrays/numbers) into a tuple of batched Tensors."""
    first = samples[0]
    if isinstance(first, (tuple, list)):
        return tuple(default_collate([s[i] for s in samples]) for i in range(len(first)))
    return Tensor(np.stack([s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples]))


class DataLoader:
    """Iterate over a dataset in mini-batches.

    Parameters
    ----------
    dataset : Dataset
        Must not be empty.
    batch_size : int
    shuffle : bool
        Reorder the samples every epoch.
    seed : int, optional
        With `shuffle`, epoch e uses the permutation drawn from ``(seed, e)``: reproducible and
        independent of any other randomness. Without it the global generator is used.
    drop_last : bool
        Skip the final batch when it is smaller than `batch_size`.
    collate_fn : callable, optional
        Turns a list of samples into a batch (default: stack into Tensors).

    Examples
    --------
    >>> import numpy as np
    >>> from chainrule.data import DataLoader, TensorDataset
    >>> ds = TensorDataset(np.arange(10.0).reshape(5, 2), np.arange(5))
    >>> [y.tolist() for _, y in DataLoader(ds, batch_size=2)]
    [[0, 1], [2, 3], [4]]
    >>> len(DataLoader(ds, batch_size=2, drop_last=True))
    2
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int = 1,
        shuffle: bool = False,
        seed: int | None = None,
        drop_last: bool = False,
        collate_fn: Callable[[Sequence[Any]], Any] | None = None,
    ) -> None:
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(
                f"DataLoader: batch_size must be a positive integer, got {batch_size!r}"
            )
        if len(dataset) == 0:
            raise ValueError("DataLoader: the dataset is empty (0 samples); nothing to iterate")
        self.dataset = dataset
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.collate_fn = collate_fn
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Make the next iteration use epoch `epoch`'s order (for resuming a seeded run)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        if self.seed is not None:
            return np.random.default_rng([self.seed, self.epoch]).permutation(n)
        return _random.generator().permutation(n)

    def __iter__(self) -> Iterator[Any]:
        order = self._order()
        self.epoch += 1
        fast = isinstance(self.dataset, TensorDataset) and self.collate_fn is None
        for k in range(len(self)):
            idx = order[k * self.batch_size : (k + 1) * self.batch_size]
            if fast:  # one fancy-index per array instead of a Python loop over samples
                yield tuple(Tensor(a[idx]) for a in self.dataset.arrays)  # type: ignore[attr-defined]
            else:
                collate = self.collate_fn or default_collate
                yield collate([self.dataset[int(i)] for i in idx])
