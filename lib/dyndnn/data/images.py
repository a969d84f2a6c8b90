"""Image data sets by name (Fashion-MNIST, its embedded subset, CIFAR-10): files, checks, loading.

>>> ds = load_images("fashion-mnist-mini")           # the embedded default, committed in data/
>>> ds.train_x.shape, ds.train_x.dtype                # 10 % of the training file is validation
(torch.Size([9000, 1, 28, 28]), torch.uint8)
>>> len(ds.val_y), len(ds.test_y)
(1000, 2000)

Files are checked before use: an IDX or CIFAR file that is truncated or corrupt raises
``DatasetError`` instead of being half-loaded, and a missing data set names every place looked
and the command that fetches it.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from pathlib import Path

import numpy as np
import torch

from dyndnn.data.sets import DatasetSpec, InMemoryDataset, validation_split
from dyndnn.errors import DatasetError
from dyndnn.resources import resource_dir

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
IDX_FILES = {  # split -> (images, labels), the names of the original release
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# SHA-256 of the *uncompressed* IDX bytes: the same whether upstream or Debian gzipped them.
FASHION_MNIST_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_MNIST_MINI_SHA256 = {  # made by data/fashion-mnist-mini/make_subset.py
    "train-images-idx3-ubyte": "6ac1589caec4354734e4f42f24e6f270e715f225b8d797919617a6dd7bb849a8",
    "train-labels-idx1-ubyte": "ab29ad0e298bbea475689cbc7f4c83c45f87a4c561faeb294233296db39dcb76",
    "t10k-images-idx3-ubyte": "e9b7f32c9f605e3668485ded8416b7c365f17fab5b436c813a38d792c04e8ee7",
    "t10k-labels-idx1-ubyte": "aa44290fc604029d12632880560905c5aaf756ec2ebb2ab02fdbe1410a82537a",
}
# MD5 of the CIFAR-10 python batches, as published with the data set (and in torchvision).
CIFAR10_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
}
CIFAR10_FOLDER = "cifar-10-batches-py"


SPECS = {
    "fashion-mnist-mini": DatasetSpec(
        "fashion-mnist-mini", 1, 28, FASHION_MNIST_CLASSES, (0.2860,), (0.3530,), 2, False,
        "it is committed with the repository: `git checkout -- data/fashion-mnist-mini`, or "
        "remake it with `python data/fashion-mnist-mini/make_subset.py`"),
    "fashion-mnist": DatasetSpec(
        "fashion-mnist", 1, 28, FASHION_MNIST_CLASSES, (0.2860,), (0.3530,), 2, False,
        "`sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or "
        "`python -m dyndnn fetch fashion-mnist` where a network exists"),
    "cifar10": DatasetSpec(
        "cifar10", 3, 32, CIFAR10_CLASSES, (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616),
        4, True, "`python -m dyndnn fetch cifar10` where a network exists"),
}


# --- file formats -------------------------------------------------------------------------
# IDX by hand: torchvision's reader neither opens gzip nor reports truncation by file name.
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise DatasetError(f"{path} is truncated or corrupt ({exc}); delete it and fetch it "
                           "again") from exc


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode IDX bytes (the MNIST file format) into an array, checking the header and size."""
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise DatasetError(f"{name} is not an IDX file (bad magic number)")
    dtype, ndim = np.dtype(_IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DatasetError(f"{name} is truncated: its IDX header is incomplete")
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + dtype.itemsize * int(np.prod(shape))
    if len(data) != expected:
        raise DatasetError(
            f"{name} is truncated or corrupt: its header says shape {shape} "
            f"({expected} bytes) but it holds {len(data)} bytes; delete it and fetch it again")
    return np.frombuffer(data, dtype=dtype, offset=header).reshape(shape).astype(
        dtype.newbyteorder("="), copy=False)


def read_idx(path: str | Path, sha256: str | None = None) -> np.ndarray:
    """Read an IDX file, gzipped or not; ``sha256`` (of the uncompressed bytes) is checked."""
    path = Path(path)
    data = _read_bytes(path)
    if sha256 is not None:
        digest = hashlib.sha256(data).hexdigest()
        if digest != sha256:
            raise DatasetError(
                f"{path} is corrupt: SHA-256 of its content is {digest}, expected {sha256}; "
                "delete it and fetch it again")
    return parse_idx(data, str(path))


def write_idx(path: str | Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (gzipped when the name ends in .gz)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:  # type: ignore[operator]
        f.write(header + array.tobytes())


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()


def read_cifar_batch(path: str | Path, md5: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch: images (N, 3, 32, 32) uint8 and labels (N,)."""
    path = Path(path)
    if md5 is not None and _md5(path) != md5:
        raise DatasetError(f"{path} is corrupt or truncated: its MD5 is {_md5(path)}, "
                           f"expected {md5}; delete it and fetch it again")
    try:
        with open(path, "rb") as f:
            batch = pickle.load(f, encoding="latin1")  # noqa: S301 (the published format)
        data = np.asarray(batch["data"], dtype=np.uint8)
        labels = np.asarray(batch["labels"], dtype=np.int64)
    except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as exc:
        raise DatasetError(f"{path} is truncated or corrupt ({type(exc).__name__}: {exc}); "
                           "delete it and fetch it again") from exc
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(labels) != len(data):
        raise DatasetError(f"{path} is corrupt: data shape {data.shape}, {len(labels)} labels")
    return data.reshape(-1, 3, 32, 32), labels


# --- finding and loading ------------------------------------------------------------------
def _idx_folder(folder: Path) -> Path | None:
    """``folder`` if it holds the four IDX files (gzipped or not), else None."""
    names = [n for pair in IDX_FILES.values() for n in pair]
    ok = all((folder / n).is_file() or (folder / f"{n}.gz").is_file() for n in names)
    return folder if ok else None


def candidate_folders(name: str, root: str | Path = "data") -> list[Path]:
    """Every folder where data set ``name`` is looked for, in order."""
    root = Path(root)
    if name == "fashion-mnist-mini":
        return [root / "fashion-mnist-mini", resource_dir("data") / "fashion-mnist-mini"]
    if name == "fashion-mnist":
        return [root / "FashionMNIST" / "raw", root / "fashion-mnist", DEBIAN_FASHION_MNIST]
    if name == "cifar10":
        return [root / CIFAR10_FOLDER]
    raise DatasetError(f"unknown data set {name!r}; known: {', '.join(SPECS)}")


def locate(name: str, root: str | Path = "data") -> Path:
    """The folder that holds data set ``name``; a missing one names every place looked."""
    folders = candidate_folders(name, root)
    for folder in folders:
        if name == "cifar10":
            if all((folder / f).is_file() for f in CIFAR10_MD5):
                return folder
        elif _idx_folder(folder):
            return folder
    looked = ", ".join(str(f.resolve()) for f in folders)
    raise DatasetError(  # one line: a fallback's warning quotes its first
        f"data set {name!r} not found (looked in {looked}).\nTo get it: "
        f"{SPECS[name].fetch_hint}.")


def _idx_path(folder: Path, name: str) -> Path:
    return folder / name if (folder / name).is_file() else folder / f"{name}.gz"


def _load_idx_split(folder: Path, split: str, sha: dict[str, str] | None):
    images_name, labels_name = IDX_FILES[split]
    images = read_idx(_idx_path(folder, images_name), (sha or {}).get(images_name))
    labels = read_idx(_idx_path(folder, labels_name), (sha or {}).get(labels_name))
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DatasetError(f"{folder}: {split} images {images.shape} and labels {labels.shape} "
                           "do not match")
    return torch.from_numpy(images.copy()).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def load_images(name: str, root: str | Path = "data", train_limit: int = 0,
                test_limit: int = 0, verify: bool = True, val_fraction: float = 0.1,
                val_seed: int = 0) -> InMemoryDataset:
    """Image data set ``name`` in memory; the arguments are ``dyndnn.data.load_dataset``'s."""
    if name not in SPECS:
        raise DatasetError(f"unknown image data set {name!r}; known: {', '.join(SPECS)}")
    folder = locate(name, root)
    if name == "cifar10":
        parts = [read_cifar_batch(folder / f, CIFAR10_MD5[f] if verify else None)
                 for f in CIFAR10_MD5]
        train = (np.concatenate([p[0] for p in parts[:5]]), np.concatenate([p[1] for p in
                                                                            parts[:5]]))
        tx, ty = torch.from_numpy(train[0]), torch.from_numpy(train[1])
        vx, vy = torch.from_numpy(parts[5][0].copy()), torch.from_numpy(parts[5][1])
    else:
        sha = {"fashion-mnist": FASHION_MNIST_SHA256,
               "fashion-mnist-mini": FASHION_MNIST_MINI_SHA256}[name] if verify else None
        tx, ty = _load_idx_split(folder, "train", sha)
        vx, vy = _load_idx_split(folder, "test", sha)
    if train_limit:
        tx, ty = tx[:train_limit], ty[:train_limit]
    if test_limit:
        vx, vy = vx[:test_limit], vy[:test_limit]
    keep, held = validation_split(ty, val_fraction, val_seed)
    return InMemoryDataset(SPECS[name], tx[keep], ty[keep], vx, vy, str(folder),
                           tx[held], ty[held])


def fetch(name: str, root: str | Path = "data") -> Path:
    """Download ``fashion-mnist`` or ``cifar10`` with torchvision (needs a network)."""
    from torchvision import datasets  # imported here: only fetching needs it

    root = Path(root)
    try:
        if name == "fashion-mnist":
            for train in (True, False):
                datasets.FashionMNIST(str(root), train=train, download=True)
        elif name == "cifar10":
            datasets.CIFAR10(str(root), train=True, download=True)
        else:
            raise DatasetError(f"{name!r} cannot be fetched; fetchable: fashion-mnist, cifar10")
    except OSError as exc:  # URLError is an OSError
        raise DatasetError(f"downloading {name} failed ({exc}); {SPECS[name].fetch_hint}") \
            from exc
    return locate(name, root)


