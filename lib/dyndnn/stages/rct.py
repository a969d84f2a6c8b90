"""Stage 06: RCT against QAT and fp32; the dynamic model's last group retrained under RCT."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.config import Config
from dyndnn.data import InMemoryDataset, load_dataset
from dyndnn.models import GROUP_MODEL
from dyndnn.rct import Comparison, add_group_under_rct, compare_methods
from dyndnn.rct.controller import RctSettings
from dyndnn.rct.energy import MODEL as ENERGY_MODEL
from dyndnn.rct.figures import plot_comparison
from dyndnn.rct.layers import METHODS
from dyndnn.record.checkpoint import read_checkpoint
from dyndnn.record.layout import RunLayout, resolve_run_dir
from dyndnn.stages.common import check_record, trained_config
from dyndnn.stages.side_by_side import processes_for, run_side_by_side
from dyndnn.training.trainer import setup_torch, stored_architecture
from dyndnn.views.plots import save_figure

KEYS = ("dataset", "data_root", "test_limit", "val_fraction", "batch_size", "augment", "groups",
        "epochs_per_stage", "optimizer", "lr", "momentum", "weight_decay", "schedule", "seed",
        "threads", "rct_width", "rct_epochs", "rct_train_limit", "bits_init", "bits_min",
        "bits_max", "t_min", "t_max", "gavg_interval", "rounding", "act_bits", "err_bits",
        "tile_rows", "tile_values", "packed", "momentum_bits", "text_dataset", "text_model",
        "text_epochs", "text_lr")
# below this many training steps in all (every method of every task), the tasks train in
# turn: a process's start (the worker server's, the data set's load) costs seconds, about what
# side by side saves then (the quick run has 3,756)
SIDE_BY_SIDE_MIN_STEPS = 500
FIGURE_NAMES = {"image": "rct_comparison", "text": "rct_comparison_text"}
TEXT_BATCH_SIZE = 64  # chosen with the text model on the validation split (docs/rct.md)
# the paper's claims, as RCT's ratios against fp32 and QAT
GOALS = {"state_bytes_vs_fp32": "<= 0.40", "state_bytes_vs_qat": "<= 0.25",
         "param_bytes_vs_fp32": "<= 0.35", "param_bytes_vs_qat": "<= 0.50",
         "gemm_energy_vs_fp32": "<= 0.14", "movement_energy_vs_qat": "about 0.5",
         "accuracy_minus_fp32": ">= -0.01", "epoch_time_vs_fp32": "measured, no goal"}


@dataclass
class RctResult:
    """``rct.csv`` and friends, the ratios against the paper's goals, the added group."""

    comparison: Any  # dyndnn.rct.compare.Comparison
    group: pd.DataFrame
    group_summary: dict[str, Any]
    figures: dict[str, plt.Figure]  # one per task

    @property
    def table(self) -> pd.DataFrame:
        """fp32, QAT and RCT side by side (``rct.csv``)."""
        return self.comparison.table

    def goals(self) -> pd.DataFrame:
        """Each ratio beside the paper's goal for it, per task."""
        return pd.DataFrame([{"task": task, "ratio": name, "measured": round(value, 4),
                              "goal": GOALS[name]}
                             for task in self.comparison.tasks
                             for name, value in self.comparison.ratios(task).items()])

    def report(self) -> str:
        """Provenance of each column kind, and the whole state's headline ratios per task."""
        lines = []
        for task in self.comparison.tasks:
            ratios = self.comparison.ratios(task)
            lines.append(
                f"{task}: RCT's whole training state is {ratios['state_bytes_vs_fp32']:.0%} of "
                f"fp32's and {ratios['state_bytes_vs_qat']:.0%} of QAT's (parameters alone: "
                f"{ratios['param_bytes_vs_fp32']:.0%} of fp32's); test accuracy "
                f"{100 * ratios['accuracy_minus_fp32']:+.2f} points against fp32; an epoch "
                f"takes {ratios['epoch_time_vs_fp32']:.1f}x fp32's time.")
        table = self.comparison.table
        if table.get("tasks_side_by_side", pd.Series([1])).max() > 1:
            lines.append(f"The tasks trained side by side, one process each with "
                         f"{int(table['threads'].max())} torch thread(s): epoch times are "
                         "theirs (RCT against fp32 is measured within a task, alike).")
        return "\n".join(lines) + (
            "\nBytes are ACCOUNTED (tensor sizes); peak_rss_growth_bytes is MEASURED (the "
            "process's peak resident memory growth while training, activations included); "
            f"energies are MODELLED ({ENERGY_MODEL}); accuracy is the test split's, read once "
            "after training.")


def rct(cfg: Config, layout: RunLayout | str, progress: bool = True) -> RctResult:
    """Train fp32, QAT and RCT alike; retrain group G under RCT; ``rct*.csv``.

    ``layout``: a trained run folder (``resolve_run_dir``). RCT trains, so its training keys
    are the notebook's, and must agree with the run's record (``check_record``). ``progress``:
    a line an epoch of every method and task.
    """
    layout = resolve_run_dir(layout)
    with layout.lock():
        check_record(layout, cfg, KEYS)
        architecture = trained_config(layout, cfg).model.architecture  # the run's network
        setup_torch(cfg.run.seed, cfg.run.threads)
        settings = RctSettings.from_section(cfg.rct)
        ds = _load_images(cfg)
        text = _load_text(cfg) if cfg.rct.text_dataset else None  # every input before any work
        for k in (1, cfg.model.groups):  # what add_group_under_rct reads, read first
            read_checkpoint(layout.stage_checkpoint(GROUP_MODEL, k))
        # the tasks share nothing: side by side where there is a core for each. The group's
        # retraining stays after them, on every core: as a third part it ran on one core while
        # the other idled once the tasks ended (155 s for the stage against 147 s, measured)
        tasks = 1 if text is None else 2
        processes = (processes_for(tasks, cfg.run.threads)
                     if _training_steps(cfg, ds, text) >= SIDE_BY_SIDE_MIN_STEPS else 1)
        here = processes == 1  # else each process loads its own data (here it was checked)
        parts = [(_compare_images, (cfg, stored_architecture(architecture), settings, progress,
                                    ds if here else None))]
        if text is not None:
            parts.append((_compare_text, (cfg, settings, progress, text if here else None)))
        compared = run_side_by_side(parts, processes, cfg.run.threads)
        comparison = Comparison.concat(
            [replace(part, table=part.table.assign(tasks_side_by_side=processes))
             for part in compared])
        comparison.write(layout)
        figures = {}
        for task in comparison.tasks:
            part = comparison.part(task)
            figures[task] = plot_comparison(part.table, part.history, part.trajectory)
            save_figure(figures[task], layout, FIGURE_NAMES[task])
        group, summary = _add_group(cfg, str(layout.root), settings, progress, ds)
    return RctResult(comparison, group, summary, figures)


def _training_steps(cfg: Config, image: InMemoryDataset, text: InMemoryDataset | None) -> int:
    """Optimiser steps of every method of every task: what decides side by side or in turn.

    >>> from types import SimpleNamespace as N
    >>> cfg = N(rct=N(rct_epochs=4, text_epochs=8), data=N(batch_size=128))
    >>> _training_steps(cfg, N(train_y=range(1280)), N(train_y=range(640)))  # 3 x (40 + 80)
    360
    """
    steps = cfg.rct.rct_epochs * -(-len(image.train_y) // cfg.data.batch_size)
    if text is not None:
        steps += cfg.rct.text_epochs * -(-len(text.train_y) // TEXT_BATCH_SIZE)
    return len(METHODS) * steps


def _load_text(cfg: Config) -> InMemoryDataset:
    """The RCT stage's text data set (a missing or damaged one is said before any training)."""
    return load_dataset(cfg.rct.text_dataset, cfg.data.data_root, cfg.rct.rct_train_limit,
                        cfg.data.test_limit, val_fraction=cfg.data.val_fraction)


def _load_images(cfg: Config) -> InMemoryDataset:
    """The RCT stage's image data set (``rct_train_limit`` training images at most)."""
    return load_dataset(cfg.data.dataset, cfg.data.data_root, cfg.rct.rct_train_limit,
                        cfg.data.test_limit, val_fraction=cfg.data.val_fraction)


def _compare_images(cfg: Config, architecture: str, settings: RctSettings, progress: bool,
                    ds: InMemoryDataset | None = None) -> Comparison:
    """fp32, QAT and RCT on the image task: the run's network at ``rct_width``.

    ``ds``: the loaded data set; None in a process of its own, which loads it.
    """
    return compare_methods(ds if ds is not None else _load_images(cfg),
                           replace(cfg.train, epochs_per_stage=cfg.rct.rct_epochs), settings,
                           cfg.rct.rct_width, cfg.data.batch_size, cfg.run.seed,
                           cfg.data.augment, architecture=architecture, progress=progress)


def _add_group(cfg: Config, run_dir: str, settings: RctSettings, progress: bool,
               ds: InMemoryDataset) -> tuple[pd.DataFrame, dict]:
    """Group G of the run's group model retrained under RCT (``rct_group.csv``)."""
    setup_torch(cfg.run.seed)  # the same start whether the tasks trained here or not
    return add_group_under_rct(run_dir, cfg.model.groups, ds, cfg.train, settings,
                               cfg.data.batch_size, cfg.run.seed, cfg.data.augment, progress)


def _compare_text(cfg: Config, settings: RctSettings, progress: bool,
                  ds: InMemoryDataset | None = None) -> Comparison:
    """fp32, QAT and RCT on the text task: its own epochs and learning rate."""
    ds = ds if ds is not None else _load_text(cfg)
    train = replace(cfg.train, epochs_per_stage=cfg.rct.text_epochs, lr=cfg.rct.text_lr)
    return compare_methods(ds, train, settings, batch_size=TEXT_BATCH_SIZE, seed=cfg.run.seed,
                           text_model=cfg.rct.text_model, progress=progress)
