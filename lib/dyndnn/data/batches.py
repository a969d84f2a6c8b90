"""Batches on whole tensors: shuffled by seed, augmented batch-wise, normalised.

>>> from dyndnn.data import load_dataset
>>> ds = load_dataset("fashion-mnist-mini", train_limit=300, test_limit=10)
>>> x, y = next(batches(ds, "train", batch_size=128, augment=True, seed=0))
>>> x.dtype, tuple(x.shape)
(torch.float32, (128, 1, 28, 28))
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from dyndnn.data.sets import DatasetSpec, InMemoryDataset


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Crop every image of a batch at its own random offset after zero padding (batch-wise)."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h))[:, None, :, None].expand(n, c, h, w + 2 * padding)
    out = padded.gather(2, rows)
    cols = (dx[:, None] + torch.arange(w))[:, None, None, :].expand(n, c, h, w)
    return out.gather(3, cols)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Flip a random half of the batch horizontally."""
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def normalise(x_uint8: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """uint8 images -> float32, per-channel standardised."""
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1)
    std = torch.tensor(spec.std).view(1, -1, 1, 1)
    return (x_uint8.float().div_(255) - mean) / std


def batches(ds: InMemoryDataset, split: str, batch_size: int, shuffle: bool | None = None,
            augment: bool = False, seed: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield normalised float batches; the order and augmentation depend only on ``seed``.

    Shuffling defaults to on for ``train`` and off for ``val`` and ``test``. Augmentation is
    applied to the training split only when ``augment`` is true; token ids (text) pass as is.
    """
    text = getattr(ds.spec, "kind", "image") == "text"
    images, labels = ds.split(split)
    shuffle = split == "train" if shuffle is None else shuffle
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(images), generator=generator) if shuffle else None
    for start in range(0, len(images), batch_size):
        if order is None:
            x, y = images[start:start + batch_size], labels[start:start + batch_size]
        else:
            idx = order[start:start + batch_size]
            x, y = images[idx], labels[idx]
        if augment and not text:
            # crop on uint8 before normalising, so the padding is black like the background
            x = random_crop(x, ds.spec.crop_padding, generator)
            if ds.spec.flip:
                x = random_flip(x, generator)
        yield (x, y) if text else (normalise(x, ds.spec), y)
