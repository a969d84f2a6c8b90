"""What a data set is and holds: its spec, the whole set in memory, the validation split.

Shared by the image and the text data sets (``dyndnn.data.images``, ``dyndnn.data.text``), so
neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from dyndnn.errors import DatasetError


@dataclass(frozen=True)
class DatasetSpec:
    """What a data set is: shape, classes, normalisation and augmentation that suits it."""

    name: str
    channels: int
    image_size: int
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    crop_padding: int  # pixels of zero padding for the random crop
    flip: bool  # horizontal flips: natural images yes; Fashion-MNIST's items all face one way
    fetch_hint: str



@dataclass(frozen=True)
class InMemoryDataset:
    """A whole data set as uint8 image tensors (N, C, H, W) and int64 labels.

    ``val_*`` is carved from the training file (``validation_split``); it may be empty when a
    caller asked for ``val_fraction=0``.
    """

    spec: DatasetSpec
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    source: str  # the folder the files were read from
    val_x: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.uint8))
    val_y: torch.Tensor = field(default_factory=lambda: torch.empty(0, dtype=torch.int64))

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The (images, labels) of ``"train"``, ``"val"`` or ``"test"``."""
        if split == "train":
            return self.train_x, self.train_y
        if split == "val":
            if len(self.val_y) == 0:
                raise DatasetError("this data set has no validation split (val_fraction=0); "
                                   "load it with data.val_fraction > 0")
            return self.val_x, self.val_y
        if split == "test":
            return self.test_x, self.test_y
        raise ValueError(f"split must be 'train', 'val' or 'test'; got {split!r}")


def validation_split(labels: torch.Tensor, fraction: float,
                     seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, val) that hold out ``fraction`` of every class, chosen by ``seed``.

    Stratified by hand (a few lines) rather than with scikit-learn, which nothing else needs.

    >>> labels = torch.tensor([0] * 10 + [1] * 20)
    >>> train, val = validation_split(labels, 0.1)
    >>> labels[val].bincount().tolist(), len(train)
    ([1, 2], 27)
    >>> set(train.tolist()) & set(val.tolist())
    set()
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"val_fraction must be in [0, 1); got {fraction}")
    generator = torch.Generator().manual_seed(seed)
    held = []
    for cls in labels.unique(sorted=True):
        members = (labels == cls).nonzero().flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        held.append(members[:round(fraction * len(members))])
    val = torch.cat(held).sort().values if held else torch.empty(0, dtype=torch.int64)
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val] = False
    return keep.nonzero().flatten(), val
