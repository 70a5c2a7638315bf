"""Datasets, TensorDataset, DataLoader batching and reproducible shuffling."""

import numpy as np
import pytest

from chainrule.data import (
    DataLoader,
    Dataset,
    TensorDataset,
    load_dataset,
    load_digits,
    make_moons,
    make_spirals,
    train_test_split,
)
from chainrule.random import manual_seed


def _ds(n=10):
    return TensorDataset(np.arange(n * 2, dtype=np.float32).reshape(n, 2), np.arange(n))


def test_batches_cover_every_sample_once():
    batches = list(DataLoader(_ds(), batch_size=4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    assert np.concatenate([y.data for _, y in batches]).tolist() == list(range(10))
    x0, _ = batches[0]
    assert x0.shape == (4, 2) and x0.dtype == np.float32 and not x0.requires_grad


def test_drop_last():
    loader = DataLoader(_ds(), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [len(y) for _, y in loader] == [4, 4]


def test_seeded_shuffle_is_reproducible_and_changes_per_epoch():
    a = DataLoader(_ds(), batch_size=10, shuffle=True, seed=3)
    b = DataLoader(_ds(), batch_size=10, shuffle=True, seed=3)
    first_a, second_a = [next(iter(a))[1].data.tolist() for _ in range(2)]
    assert first_a == next(iter(b))[1].data.tolist()
    assert first_a != second_a and sorted(first_a) == list(range(10))
    b.set_epoch(1)  # resuming at epoch 1 repeats epoch 1's order
    assert next(iter(b))[1].data.tolist() == second_a


def test_unseeded_shuffle_follows_manual_seed():
    manual_seed(5)
    a = next(iter(DataLoader(_ds(), batch_size=10, shuffle=True)))[1].data.tolist()
    manual_seed(5)
    assert a == next(iter(DataLoader(_ds(), batch_size=10, shuffle=True)))[1].data.tolist()


def test_generic_dataset_is_collated():
    class Squares(Dataset):
        def __len__(self):
            return 5

        def __getitem__(self, i):
            return np.array([i, i * i], dtype=np.float32), i % 2

    x, y = next(iter(DataLoader(Squares(), batch_size=3)))
    assert x.data.tolist() == [[0, 0], [1, 1], [2, 4]] and y.data.tolist() == [0, 1, 0]


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="dataset is empty"):
        DataLoader(TensorDataset(np.zeros((0, 3)), np.zeros(0)), batch_size=2)
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        DataLoader(_ds(), batch_size=0)
    with pytest.raises(ValueError, match=r"share their first dimension.*\(3, 2\).*\(4,\)"):
        TensorDataset(np.zeros((3, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="choose from digits, moons, spirals"):
        load_dataset("cifar10")


def test_digits_are_bundled():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float32
    assert X.min() >= 0.0 and X.max() == 1.0
    assert np.bincount(y).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]


def test_synthetic_sets_are_seeded():
    for make in (make_moons, make_spirals):
        X, y = make(200)
        assert X.shape == (200, 2) and len(y) == 200
        np.testing.assert_array_equal(X, make(200)[0])
        assert not np.array_equal(X, make(200, seed=1)[0])
    assert set(make_spirals(30, n_classes=5)[1].tolist()) == set(range(5))


def test_split_is_stratified_disjoint_and_fixed():
    X, y = load_digits()
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, seed=0)
    assert len(y_tr) + len(y_te) == 1797
    np.testing.assert_allclose(np.bincount(y_te) / np.bincount(y), 0.2, atol=0.01)
    rows = {r.tobytes() for r in X_te}
    assert sum(r.tobytes() in rows for r in X_tr) <= 5  # the data has a few duplicate images
    np.testing.assert_array_equal(y_te, train_test_split(X, y, seed=0)[3])
    with pytest.raises(ValueError, match="test_size"):
        train_test_split(X, y, test_size=1.5)
