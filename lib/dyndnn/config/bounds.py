"""Upper bounds of the numeric config keys: what the libraries accept, and what a run can be.

A sign check alone let ``batch_size: 10**12``, ``seed: 2**70`` or ``lr: .inf`` through to torch
or numpy, which then failed deep inside a stage (or ran for ever). Each bound says why; every
section checks its keys against this table when it is built.

>>> from dyndnn.config import TrainSection
>>> TrainSection(lr=float("inf"))
Traceback (most recent call last):
...
dyndnn.errors.ConfigError: train.lr must be a finite number of at most 10 (a learning rate \
above it diverges at once); got inf
"""

from __future__ import annotations

import math
from dataclasses import fields
from typing import Any

from dyndnn.errors import ConfigError

_EPOCHS = (10_000, "more epochs than any run here needs")
_BATCH = (65_536, "images in one batch: beyond it the activations outgrow any board's memory")
_LIMIT = (10**9, "items of a data set")
_WIDTH = (64.0, "a layer's channels x width must stay within the 65,536 a layer may have")
BOUNDS: dict[str, tuple[float, str]] = {
    "seed": (2**32 - 1, "numpy seeds its generators with 32 bits"),
    "threads": (1024, "more threads than any board has cores"),
    "processes": (1024, "training processes"),
    "cell_timeout_s": (7 * 86_400, "a week"),
    "batch_size": _BATCH, "eval_batch_size": _BATCH, "manager_batch": _BATCH,
    "profile_batches": _BATCH,
    "train_limit": _LIMIT, "test_limit": _LIMIT, "rct_train_limit": _LIMIT,
    "width": _WIDTH, "rct_width": _WIDTH,
    "epochs_per_stage": _EPOCHS, "rct_epochs": _EPOCHS, "text_epochs": _EPOCHS,
    "joint_stage_factor": (100, "times epochs_per_stage"),
    "lr": (10.0, "a learning rate above it diverges at once"),
    "text_lr": (10.0, "a learning rate above it diverges at once"),
    "weight_decay": (1.0, "a decay above it erases the weights every step"),
    "repeats": (10_000, "windows per point"), "warmup": (10_000, "calls before a window"),
    "window_s": (3_600.0, "an hour a window"),
    "frequencies_khz": (10**8, "100 GHz"),
    "live_demo_s": (3_600.0, "an hour of live demo"),
    "runtime_duration_s": (3_600.0, "an hour a scenario"),
    "runtime_window_s": (60.0, "a minute a decision"),
    "runtime_rounds": (1_000, "rounds"), "runtime_budget_factor": (1_000.0, "x the full "
                                                                    "configuration's latency"),
    "gavg_interval": (10**6, "steps between bitwidth checks"),
    "tile_rows": (2**20, "rows a tile"), "tile_values": (2**31 - 1, "values a tile (int32)"),
}


def check_bounds(section: str, values: Any) -> None:
    """Refuse a key of the dataclass ``values`` (section ``section``) over its bound.

    Types and lower bounds are the section's own checks; a value that is not a number is left
    to them.
    """
    for f in fields(values):
        if f.name not in BOUNDS:
            continue
        bound, why = BOUNDS[f.name]
        value = getattr(values, f.name)
        for v in value if isinstance(value, list | tuple) else [value]:
            if isinstance(v, bool) or not isinstance(v, int | float):
                continue
            if not math.isfinite(v) or v > bound:
                shown = f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"
                raise ConfigError(f"{section}.{f.name} must be a finite number of at most "
                                  f"{shown} ({why}); got {v!r}")
