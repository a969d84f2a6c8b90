"""Checkpoints: written atomically, read with ``torch.load(weights_only=True)`` only.

>>> import tempfile
>>> from dyndnn.models import GroupNet
>>> run = RunLayout(tempfile.mkdtemp())
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28)
>>> path = save_checkpoint(run.final_checkpoint("group", groups=2), model,
...                        stage=2, epoch=3)
>>> path.relative_to(run.root).as_posix()
'checkpoints/stage2.pt'
>>> model, meta = load_checkpoint(path)
>>> type(model).__name__, model.training, meta["stage"], meta["epoch"]
('GroupNet', False, 2, 3)
>>> load_final_model(run, "group", groups=2).groups   # checked against the config
2
"""

from __future__ import annotations

import io
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from dyndnn.errors import CheckpointError
from dyndnn.models import DynamicModel, build_model
from dyndnn.record.atomic import write_bytes
from dyndnn.record.layout import RunLayout
from dyndnn.record.manifest import sha256_file  # noqa: F401 (re-exported: checkpoint hashes)

FORMAT = "dyndnn-checkpoint-v2"  # v2: models built from an architecture (any CNN)
OLDER = {"dyndnn-checkpoint-v1": "an AlexNet-only dyndnn whose layers were named differently"}


def save_checkpoint(path: str | Path, model: DynamicModel, **meta: Any) -> Path:
    """Write model weights, spec and ``meta`` (plain values and tensors) to ``path``.

    Written to a temporary file and renamed, so a run killed mid-write leaves the previous
    checkpoint intact.
    """
    path = Path(path)
    buffer = io.BytesIO()  # serialised in memory: torch's file writer aborts on a full disk
    torch.save({"format": FORMAT, "spec": asdict(model.spec), "model": model.state_dict(),
                **meta}, buffer)
    return write_bytes(path, buffer.getvalue())  # a unique temporary name, renamed


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
    if isinstance(blob, dict) and blob.get("format") in OLDER:
        raise CheckpointError(f"{path} was written by {OLDER[blob['format']]}; this version "
                              "cannot read its weights: retrain in a new run folder")
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


def load_final_model(layout: RunLayout, family: str, groups: int) -> DynamicModel:
    """A family's trained model from a run folder, checked against the run's config.

    The checkpoint must hold ``family`` with ``groups`` groups, saved at the end of its last
    stage: a checkpoint from another run or another G raises ``CheckpointError``.
    """
    path = layout.final_checkpoint(family, groups)
    model, meta = load_checkpoint(path)
    if model.family != family:
        raise CheckpointError(f"{path} holds a {model.family} model, not {family}: the run "
                              "folder's checkpoints do not match its config; retrain "
                              "(01_train) or use the run folder they came from")
    if model.groups != groups:
        raise CheckpointError(
            f"{path} holds a model of G={model.groups} groups but the config says "
            f"groups={groups}: evaluating it would report the wrong configurations. Use "
            f"groups={model.groups} (the run's own config.yaml), or retrain in a new run folder")
    last_stage = int(path.stem.removeprefix("stage"))
    if "stage" in meta and int(meta["stage"]) != last_stage:
        raise CheckpointError(f"{path} was saved at stage {meta['stage']}, not at the end of "
                              f"stage {last_stage}; the folder's checkpoints were mixed up: "
                              "retrain in a new run folder")
    return model
