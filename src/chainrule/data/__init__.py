"""chainrule.data: datasets, batching and shuffling (NumPy only, no internet needed)."""

from chainrule.data.datasets import (
    DATASETS,
    TRAIN_SIZES,
    load_dataset,
    load_digits,
    load_mnist,
    load_mnist1d,
    make_circles,
    make_moons,
    make_spirals,
    train_test_split,
)
from chainrule.data.loader import DataLoader, Dataset, TensorDataset, default_collate

__all__ = [
    "DATASETS",
    "TRAIN_SIZES",
    "DataLoader",
    "Dataset",
    "TensorDataset",
    "default_collate",
    "load_dataset",
    "load_digits",
    "load_mnist",
    "load_mnist1d",
    "make_circles",
    "make_moons",
    "make_spirals",
    "train_test_split",
]
