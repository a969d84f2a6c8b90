"""Remake the embedded Fashion-MNIST subset: 1,000 train and 200 test images per class.

Run from the repository root with the full Fashion-MNIST available (Debian's
`dataset-fashion-mnist`, or `python -m dyndnn fetch fashion-mnist`):

    .venv/bin/python data/fashion-mnist-mini/make_subset.py

The images are a seeded, class-balanced random draw, stored in a random order so that any
prefix (``train_limit``) is close to balanced too. It prints the SHA-256 of each uncompressed
file, which dyndnn.data.FASHION_MNIST_MINI_SHA256 pins.
"""

import gzip
import hashlib
from pathlib import Path

import numpy as np

from dyndnn.data import IDX_FILES, load_dataset, write_idx

SEED = 2019  # the year of the paper; any fixed value makes the subset reproducible
PER_CLASS = {"train": 1000, "test": 200}
HERE = Path(__file__).resolve().parent


def balanced_subset(labels: np.ndarray, per_class: int, rng: np.random.Generator) -> np.ndarray:
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
             for c in np.unique(labels)]
    return rng.permutation(np.concatenate(picks))


def main() -> None:
    full = load_dataset("fashion-mnist")
    rng = np.random.default_rng(SEED)
    for split, (images_name, labels_name) in IDX_FILES.items():
        x, y = (t.numpy() for t in full.split(split))
        idx = balanced_subset(y, PER_CLASS[split], rng)
        write_idx(HERE / f"{images_name}.gz", x[idx, 0])
        write_idx(HERE / f"{labels_name}.gz", y[idx].astype(np.uint8))
        for name in (images_name, labels_name):
            with gzip.open(HERE / f"{name}.gz", "rb") as f:
                print(f'"{name}": "{hashlib.sha256(f.read()).hexdigest()}",')


if __name__ == "__main__":
    main()
