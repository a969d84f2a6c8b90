"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)`` only.

>>> save_checkpoint(path, model, stage=2, epoch=3)
>>> model, meta = load_checkpoint(path)
>>> model = load_model(final_checkpoint("outputs/run", "tann", groups=4))
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from dyndnn.errors import CheckpointError
from dyndnn.models import FAMILIES, GROUP_MODEL, DynamicModel, build_model

FORMAT = "dyndnn-checkpoint-v1"


def checkpoint_folder(run_dir: str | Path, family: str = GROUP_MODEL) -> Path:
    """Where a family's checkpoints live: ``checkpoints/`` (group model) or a subfolder."""
    root = Path(run_dir) / "checkpoints"
    return root if family == GROUP_MODEL else root / family


def final_checkpoint(run_dir: str | Path, family: str = GROUP_MODEL, groups: int = 4) -> Path:
    """The checkpoint of a family's last training stage (G stages, or 1 when trained jointly).

    >>> final_checkpoint("run", "slimmable", 4).as_posix()
    'run/checkpoints/slimmable/stage1.pt'
    """
    if family not in FAMILIES:
        raise CheckpointError(f"unknown model {family!r}; known: {sorted(FAMILIES)}")
    stages = 1 if FAMILIES[family].joint_training else groups
    return checkpoint_folder(run_dir, family) / f"stage{stages}.pt"


def save_checkpoint(path: str | Path, model: DynamicModel, **meta: Any) -> Path:
    """Write model weights, spec and ``meta`` (plain values and tensors) to ``path``.

    Written to a temporary file and renamed, so a run killed mid-write leaves the previous
    checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save({"format": FORMAT, "spec": asdict(model.spec), "model": model.state_dict(),
                **meta}, tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The raw checkpoint dict; a missing, corrupt or foreign file raises ``CheckpointError``."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train first (notebook "
                              "01_train) or point to another run folder")
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a damaged zip/pickle
        raise CheckpointError(
            f"checkpoint {path} is corrupt or truncated ({type(exc).__name__}: {exc}); delete it "
            "and retrain that stage, or use another run's checkpoint") from exc
    if not isinstance(blob, dict) or blob.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a dyndnn checkpoint (expected format {FORMAT})")
    return blob


def load_checkpoint(path: str | Path) -> tuple[DynamicModel, dict[str, Any]]:
    """Rebuild the model stored in ``path``; returns (model in eval mode, the other entries)."""
    blob = read_checkpoint(path)
    try:
        model = build_model(blob["spec"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {path} holds a model spec this version cannot build "
                              f"({exc}): {blob['spec']}") from exc
    try:
        model.load_state_dict(blob["model"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not fit its own model spec: {exc}") \
            from exc
    model.eval()
    return model, {k: v for k, v in blob.items() if k not in ("model", "format")}


def load_model(path: str | Path) -> DynamicModel:
    """Just the model of a checkpoint (in eval mode).

    ``functools.partial(load_model, path)`` is picklable: the profiler's workers build it so.
    """
    return load_checkpoint(path)[0]


def sha256_file(path: str | Path) -> str:
    """SHA-256 of a file, as recorded in the manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
