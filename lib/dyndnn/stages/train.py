"""Stage 01: train every model family of the config, stage by stage; ``train.csv``."""

from __future__ import annotations

import functools
import time
from contextlib import nullcontext
from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.config import Config
from dyndnn.data import InMemoryDataset, batches, load_dataset
from dyndnn.record.layout import RunLayout
from dyndnn.stages.common import check_record
from dyndnn.stages.side_by_side import processes_for, run_side_by_side
from dyndnn.training.distributed import World, launched_by_torchrun, world_of
from dyndnn.training.launch import launch_training
from dyndnn.training.trainer import (
    IncrementalTrainer,
    merge_history,
    model_from_config,
    setup_torch,
)
from dyndnn.views.plots import plot_training, save_figure

# below this much estimated training in all, the families train in turn: a process's start
# (the worker server's, the data set's load) costs seconds, about what side by side saves then
SIDE_BY_SIDE_MIN_S = 30.0
KEYS = ("dataset", "data_root", "train_limit", "test_limit", "val_fraction", "batch_size",
        "augment", "groups", "architecture", "width", "dropout", "combine", "models",
        "baseline_budget", "epochs_per_stage", "joint_stage_factor", "optimizer", "lr", "momentum",
        "weight_decay", "schedule", "label_smoothing", "seed", "threads", "processes", "backend",
        "device", "sync_bn")


@dataclass
class TrainResult:
    """The per-epoch history of every family, what was trained, and the curves."""

    history: pd.DataFrame
    lines: list[str]
    figure: plt.Figure | None  # None in the processes that do not write (rank > 0)

    def report(self) -> str:
        """The data set and, per family, its MACs, compression rate and serving bytes."""
        return "\n".join(self.lines)


def train(cfg: Config, layout: RunLayout, progress: bool = True) -> TrainResult:
    """Train (or resume) each family in ``model.models``; checkpoints, ``train.csv``, curves.

    With ``train.processes`` > 1 it launches torchrun, whose processes run this function
    again (``dyndnn.stages.train_worker``); under torchrun rank 0 writes and the others only train.
    """
    if cfg.train.processes > 1 and not launched_by_torchrun():
        return _train_in_processes(cfg, layout, progress)
    with world_of(cfg.train.distributed_backend, cfg.train.device) as world:
        with layout.lock() if world.writer else nullcontext():
            check_record(layout, cfg, KEYS)
            ds = _load(cfg)
            families = cfg.model.models
            processes = (processes_for(len(families), cfg.run.threads)
                         if not world.joined and cfg.train.device == "cpu" else 1)
            if processes > 1:
                estimated_s = {name: _estimated_training_s(cfg, ds, name) for name in families}
                if sum(estimated_s.values()) >= SIDE_BY_SIDE_MIN_S:
                    return _result(cfg, layout, ds, _train_side_by_side(
                        cfg, layout, estimated_s, processes, progress))
            histories = [_train_family(cfg, str(layout.root), name, progress, ds, world)
                         for name in families]
            if not world.writer:
                return TrainResult(pd.concat(histories, ignore_index=True), [], None)
            return _result(cfg, layout, ds, pd.concat(histories, ignore_index=True))


def _train_family(cfg: Config, run_dir: str, name: str, progress: bool,
                  ds: InMemoryDataset | None = None, world: World | None = None,
                  write_history: bool = True) -> pd.DataFrame:
    """Train (or resume) one family; its per-epoch history.

    ``ds``: the loaded data set; None in a process of its own, which loads it.
    """
    setup_torch(cfg.run.seed, cfg.run.threads)  # each family's init from the seed
    ds = ds if ds is not None else _load(cfg)
    model = model_from_config(cfg.model, ds.spec, name)
    trainer = IncrementalTrainer(model, ds, cfg.train, batch_size=cfg.data.batch_size,
                                 seed=cfg.run.seed, augment=cfg.data.augment,
                                 run_dir=RunLayout(run_dir), progress=progress, world=world,
                                 write_history=write_history)
    return trainer.fit()


def _train_side_by_side(cfg: Config, layout: RunLayout, estimated_s: dict[str, float],
                        processes: int, progress: bool) -> pd.DataFrame:
    """Every family in ``processes`` processes at once, the longest first; ``train.csv``.

    Why: these small networks gain less from a second thread than from a second process
    (docs/distributed.md). Each family trains as it would here, from the same seed, so its
    numbers are the same as one process with the same thread count gives.
    """
    order = sorted(cfg.model.models, key=lambda name: -estimated_s[name])
    # each process loads the data itself; train.csv is written here, once all are done
    in_a_process = functools.partial(_train_family, write_history=False)
    parts = [(in_a_process, (cfg, str(layout.root), name, progress)) for name in order]
    trained = dict(zip(order, run_side_by_side(parts, processes, cfg.run.threads), strict=True))
    history = pd.concat([trained[name] for name in cfg.model.models], ignore_index=True)
    merge_history(layout, history)
    return history


def _estimated_training_s(cfg: Config, ds: InMemoryDataset, name: str) -> float:
    """About how long a family trains: one timed step of its last stage, times its steps.

    Only whether and in which order the families train side by side hang on it (the longest
    first), never a result.
    """
    model = model_from_config(cfg.model, ds.spec, name).train()
    trainer = IncrementalTrainer(model, ds, cfg.train, batch_size=cfg.data.batch_size,
                                 progress=False)
    x, y = next(batches(ds, "train", cfg.data.batch_size))
    stage = model.training_stages
    trainer.step(model, x, y, stage, cfg.train)  # the first step allocates: not timed
    start = time.perf_counter()
    trainer.step(model, x, y, stage, cfg.train)
    step_s = time.perf_counter() - start
    steps = -(-len(ds.train_y) // cfg.data.batch_size) * trainer.epochs * stage
    return step_s * steps


def _load(cfg: Config) -> InMemoryDataset:
    return load_dataset(cfg.data.dataset, cfg.data.data_root, cfg.data.train_limit,
                        cfg.data.test_limit, val_fraction=cfg.data.val_fraction)


def _result(cfg: Config, layout: RunLayout, ds: InMemoryDataset,
            history: pd.DataFrame) -> TrainResult:
    """The report lines (data set; per family its MACs and bytes) and the curves' figure."""
    lines = [f"{ds.spec.name}: {len(ds.train_y)} train / {len(ds.test_y)} test images "
             f"from {ds.source}"]
    for name in cfg.model.models:
        model = model_from_config(cfg.model, ds.spec, name)
        lines.append(f"{name} ({model.architecture.name}): MACs per image k=1 "
                     f"{model.macs(1):,}, k=G {model.macs(model.groups):,} (compression rate "
                     f"{model.compression_rate():.3f}); {model.serving_bytes():,} bytes "
                     "serve all configurations")
    processes = history.get("world_size", pd.Series(dtype=float)).max()
    if processes > 1:  # NaN (rows of a run trained before the column existed) is not
        lines.append(f"trained in up to {int(processes)} processes "
                     f"({cfg.train.distributed_backend})")
    figure = plot_training(history)
    save_figure(figure, layout, "train_curves")
    return TrainResult(history, lines, figure)


def _train_in_processes(cfg: Config, layout: RunLayout, progress: bool) -> TrainResult:
    """``train.processes`` torchrun processes train; this process checks first, then reports."""
    with layout.lock():
        check_record(layout, cfg, KEYS)
        ds = _load(cfg)  # a missing or corrupt data set is bad input here, before any launch
        launch_training(cfg, layout, progress)
        history = pd.read_csv(layout.train_csv)
        history = history[history["model"].isin(cfg.model.models)].reset_index(drop=True)
        return _result(cfg, layout, ds, history)
