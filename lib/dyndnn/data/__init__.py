"""Data sets by name, loaded once into memory as uint8 tensors and batched on tensors.

>>> ds = load_dataset("fashion-mnist-mini")          # the embedded default, committed in data/
>>> ds.train_x.shape, ds.train_x.dtype                # 10 % of the training file is validation
(torch.Size([9000, 1, 28, 28]), torch.uint8)
>>> len(ds.val_y), len(ds.test_y)
(1000, 2000)
>>> for x, y in batches(ds, "train", batch_size=128, augment=True, seed=0):
...     pass                                          # x: float32, normalised, augmented

The validation split is carved from the training file, seeded and class-balanced (the same
fraction of every class, ``validation_split``): it chooses every setting, and the test split is
read once, for the final tables. Augmentation (random crop with zero padding, horizontal flip
where it suits the data) runs on whole batches, never image by image.

One module a concept: ``sets`` (what a data set is: spec, in-memory set, validation split),
``images`` (IDX and CIFAR files, finding and loading), ``text`` (WordNet supersenses),
``batches`` (batching, augmentation, normalisation). ``load_dataset`` picks by name.
"""

from __future__ import annotations

from pathlib import Path

from dyndnn.data.batches import batches, normalise, random_crop, random_flip
from dyndnn.data.images import (
    CIFAR10_MD5,
    FASHION_MNIST_SHA256,
    SPECS,
    candidate_folders,
    fetch,
    load_images,
    locate,
    parse_idx,
    read_cifar_batch,
    read_idx,
    write_idx,
)
from dyndnn.data.sets import DatasetSpec, InMemoryDataset, validation_split
from dyndnn.data.text import TEXT_SPECS, TextDataset, load_text_dataset
from dyndnn.errors import DatasetError

__all__ = ["CIFAR10_MD5", "FASHION_MNIST_SHA256", "SPECS", "TEXT_SPECS", "DatasetSpec",
           "InMemoryDataset", "TextDataset", "batches", "candidate_folders", "fetch",
           "load_dataset", "locate", "normalise", "parse_idx", "random_crop", "random_flip",
           "read_cifar_batch", "read_idx", "validation_split", "write_idx"]


def load_dataset(name: str, root: str | Path = "data", train_limit: int = 0,
                 test_limit: int = 0, verify: bool = True, val_fraction: float = 0.1,
                 val_seed: int = 0) -> InMemoryDataset:
    """Load data set ``name`` into memory once; ``*_limit`` keep only the first N items.

    ``val_fraction`` of every class of the (limited) training file becomes the validation
    split, chosen by ``val_seed`` (fixed by default, so runs with different training seeds
    are chosen on the same images). ``verify`` checks the published checksums where they are
    known (full-size files only). A text data set (``TEXT_SPECS``) gives a ``TextDataset``:
    the same interface, token ids.
    """
    if name in TEXT_SPECS:
        return load_text_dataset(name, root, train_limit=train_limit, verify=verify,
                                 test_limit=test_limit, val_fraction=val_fraction,
                                 split_seed=val_seed)
    if name not in SPECS:
        raise DatasetError(f"unknown data set {name!r}; known: {', '.join([*SPECS, *TEXT_SPECS])}")
    return load_images(name, root, train_limit, test_limit, verify, val_fraction, val_seed)
