import hashlib
import pickle

import numpy as np
import pytest
import torch

from dyndnn import data
from dyndnn.data import (
    batches,
    images,
    load_dataset,
    locate,
    random_crop,
    read_cifar_batch,
    read_idx,
    write_idx,
)
from dyndnn.data.images import IDX_FILES
from dyndnn.errors import DatasetError


def write_idx_dataset(folder, n_train=30, n_test=10, gz=True):
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images, labels = IDX_FILES[split]
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{images}{suffix}", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{labels}{suffix}", rng.integers(0, 10, n, dtype=np.uint8))


def write_cifar(folder, n=8):
    rng = np.random.default_rng(1)
    folder.mkdir(parents=True, exist_ok=True)
    sums = {}
    for name in data.CIFAR10_MD5:
        batch = {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, n).tolist(), "batch_label": name}
        path = folder / name
        with open(path, "wb") as f:
            pickle.dump(batch, f)
        sums[name] = hashlib.md5(path.read_bytes()).hexdigest()
    return sums


def test_idx_round_trip_gz_and_raw(tmp_path):
    array = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("a-idx3-ubyte", "a-idx3-ubyte.gz"):
        write_idx(tmp_path / name, array)
        np.testing.assert_array_equal(read_idx(tmp_path / name), array)


def test_truncated_and_corrupt_idx_detected(tmp_path):
    path = tmp_path / "x-idx3-ubyte"
    write_idx(path, np.zeros((4, 5, 5), dtype=np.uint8))
    path.write_bytes(path.read_bytes()[:-7])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_idx(path)
    gz = tmp_path / "y-idx3-ubyte.gz"
    write_idx(gz, np.zeros((4, 5, 5), dtype=np.uint8))
    gz.write_bytes(gz.read_bytes()[:-10])
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_idx(gz)
    write_idx(path, np.zeros((4, 5, 5), dtype=np.uint8))
    with pytest.raises(DatasetError, match="SHA-256"):
        read_idx(path, sha256="0" * 64)
    path.write_bytes(b"\x08\x08\x08\x08junk")
    with pytest.raises(DatasetError, match="bad magic"):
        read_idx(path)


def test_fashion_mnist_layouts_load(tmp_path):
    write_idx_dataset(tmp_path / "FashionMNIST" / "raw", gz=False)
    ds = load_dataset("fashion-mnist", tmp_path, verify=False)
    assert ds.train_x.shape == (30, 1, 28, 28) and ds.train_x.dtype == torch.uint8
    assert ds.test_y.dtype == torch.int64 and len(ds.test_y) == 10
    # full-size checksums are checked by default: the small files do not match them
    with pytest.raises(DatasetError, match="SHA-256"):
        load_dataset("fashion-mnist", tmp_path)


def test_missing_dataset_names_every_place_and_the_fix(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "DEBIAN_FASHION_MNIST", tmp_path / "debian")
    with pytest.raises(DatasetError) as info:
        locate("fashion-mnist", tmp_path)
    text = str(info.value)
    for place in ("FashionMNIST/raw", "fashion-mnist", "debian"):
        assert place in text
    assert "apt-get install dataset-fashion-mnist" in text
    with pytest.raises(DatasetError, match="python -m dyndnn fetch cifar10"):
        locate("cifar10", tmp_path)


def test_cifar_pickles_load_and_corruption_is_detected(tmp_path, monkeypatch):
    folder = tmp_path / images.CIFAR10_FOLDER
    sums = write_cifar(folder)
    monkeypatch.setattr(images, "CIFAR10_MD5", sums)
    ds = load_dataset("cifar10", tmp_path, val_fraction=0.0)
    assert ds.train_x.shape == (40, 3, 32, 32) and ds.test_x.shape == (8, 3, 32, 32)
    x, y = read_cifar_batch(folder / "test_batch")
    np.testing.assert_array_equal(ds.test_x.numpy(), x)
    (folder / "data_batch_3").write_bytes((folder / "data_batch_3").read_bytes()[:100])
    with pytest.raises(DatasetError, match="data_batch_3 is corrupt or truncated"):
        load_dataset("cifar10", tmp_path)
    with pytest.raises(DatasetError, match="truncated or corrupt"):
        read_cifar_batch(folder / "data_batch_3")


def test_embedded_mini_is_balanced_and_verified():
    ds = load_dataset("fashion-mnist-mini", val_fraction=0.0)
    assert len(ds.train_y) == 10_000 and len(ds.test_y) == 2_000
    assert ds.train_y.bincount().tolist() == [1000] * 10
    assert ds.test_y.bincount().tolist() == [200] * 10


def test_batches_are_seeded_normalised_and_cover_the_split(mini_dataset):
    a = list(batches(mini_dataset, "train", 100, augment=True, seed=3))
    b = list(batches(mini_dataset, "train", 100, augment=True, seed=3))
    c = list(batches(mini_dataset, "train", 100, augment=True, seed=4))
    assert all(torch.equal(x1, x2) for (x1, _), (x2, _) in zip(a, b, strict=True))
    assert not torch.equal(a[0][0], c[0][0])
    labels = torch.cat([y for _, y in a])
    assert sorted(labels.tolist()) == sorted(mini_dataset.train_y.tolist())
    test = torch.cat([x for x, _ in batches(mini_dataset, "test", 64)])
    assert abs(test.mean().item()) < 0.2 and 0.8 < test.std().item() < 1.2


def test_random_crop_shifts_each_image_independently():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).view(2, 1, 6, 6) + 1
    out = random_crop(x, 2, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    for i in range(2):  # every crop is a shifted window of the zero-padded image
        padded = torch.nn.functional.pad(x[i], (2, 2, 2, 2))
        windows = [padded[:, dy:dy + 6, dx:dx + 6] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(out[i], w) for w in windows)


def test_validation_split_is_disjoint_class_balanced_and_seeded():
    full = load_dataset("fashion-mnist-mini", val_fraction=0.0)
    ds = load_dataset("fashion-mnist-mini", val_fraction=0.1)
    # disjoint from train, and the union is the training file (nothing lost, nothing added)
    assert len(ds.train_y) + len(ds.val_y) == len(full.train_y)
    key = lambda x: {bytes(img.numpy().tobytes()) for img in x}  # noqa: E731
    train, val, test = key(ds.train_x), key(ds.val_x), key(ds.test_x)
    assert not train & val and not val & test
    assert train | val == key(full.train_x)
    # class-balanced: 10 % of every class (the mini set's training file has 1000 per class)
    assert ds.val_y.bincount(minlength=10).tolist() == [100] * 10
    # seeded: the same split again, another with another seed
    again = load_dataset("fashion-mnist-mini", val_fraction=0.1)
    other = load_dataset("fashion-mnist-mini", val_fraction=0.1, val_seed=1)
    assert torch.equal(again.val_x, ds.val_x) and not torch.equal(other.val_x, ds.val_x)


def test_validation_split_of_a_limited_training_file_keeps_the_fraction_per_class():
    ds = load_dataset("fashion-mnist-mini", train_limit=500, val_fraction=0.2)
    whole = load_dataset("fashion-mnist-mini", train_limit=500, val_fraction=0.0)
    expected = [round(0.2 * n) for n in whole.train_y.bincount(minlength=10).tolist()]
    assert ds.val_y.bincount(minlength=10).tolist() == expected


def test_no_validation_split_is_refused_by_name():
    ds = load_dataset("fashion-mnist-mini", train_limit=100, val_fraction=0.0)
    with pytest.raises(DatasetError, match="no validation split"):
        ds.split("val")
    with pytest.raises(ValueError, match="val_fraction"):
        load_dataset("fashion-mnist-mini", train_limit=100, val_fraction=1.0)
