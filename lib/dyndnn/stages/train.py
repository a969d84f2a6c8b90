"""Stage 01: train every model family of the config, stage by stage; ``train.csv``."""

from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.config import Config
from dyndnn.data import load_dataset
from dyndnn.layout import RunLayout
from dyndnn.plots import plot_training, save_figure
from dyndnn.stages.common import check_record
from dyndnn.train import IncrementalTrainer, model_from_config, setup_torch

KEYS = ("dataset", "data_root", "train_limit", "test_limit", "val_fraction", "batch_size",
        "augment", "groups", "architecture", "width", "dropout", "combine", "models",
        "baseline_budget", "epochs_per_stage", "optimizer", "lr", "momentum", "weight_decay",
        "schedule", "label_smoothing", "seed", "threads")


@dataclass
class TrainResult:
    """The per-epoch history of every family, what was trained, and the curves."""

    history: pd.DataFrame
    lines: list[str]
    figure: plt.Figure

    def report(self) -> str:
        """The data set and, per family, its MACs, compression rate and serving bytes."""
        return "\n".join(self.lines)


def train(cfg: Config, layout: RunLayout, progress: bool = True) -> TrainResult:
    """Train (or resume) each family in ``model.models``; checkpoints, ``train.csv``, curves."""
    with layout.lock():
        check_record(layout, cfg, KEYS)
        ds = load_dataset(cfg.data.dataset, cfg.data.data_root, cfg.data.train_limit,
                          cfg.data.test_limit, val_fraction=cfg.data.val_fraction)
        lines = [f"{ds.spec.name}: {len(ds.train_y)} train / {len(ds.test_y)} test images "
                 f"from {ds.source}"]
        histories = []
        for name in cfg.model.models:
            setup_torch(cfg.run.seed, cfg.run.threads)  # each family's init from the seed alone
            model = model_from_config(cfg.model, ds.spec, name)
            lines.append(f"{name} ({model.architecture.name}): MACs per image k=1 "
                         f"{model.macs(1):,}, k=G "
                         f"{model.macs(model.groups):,} (compression rate "
                         f"{model.compression_rate():.3f}); {model.serving_bytes():,} bytes "
                         "serve all configurations")
            trainer = IncrementalTrainer(model, ds, cfg.train, batch_size=cfg.data.batch_size,
                                         seed=cfg.run.seed, augment=cfg.data.augment,
                                         run_dir=layout, progress=progress)
            histories.append(trainer.fit())
        history = pd.concat(histories, ignore_index=True)
        figure = plot_training(history)
        save_figure(figure, layout, "train_curves")
    return TrainResult(history, lines, figure)
