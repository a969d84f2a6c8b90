"""Figures of a run (seaborn on the tidy tables), saved as PNG and SVG under ``figures/``.

>>> fig = plot_training(history); save_figure(fig, run_dir, "train_curves")
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def save_figure(fig: plt.Figure, run_dir: str | Path, name: str) -> list[Path]:
    """Write ``figures/<name>.png`` and ``.svg`` in the run folder."""
    folder = Path(run_dir) / "figures"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{name}.{ext}" for ext in ("png", "svg")]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return paths


def plot_training(history: pd.DataFrame) -> plt.Figure:
    """Train loss and test accuracy over epochs, one colour per stage."""
    frame = history.assign(step=range(1, len(history) + 1))
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    sns.lineplot(frame, x="step", y="train_loss", hue="stage", marker="o", ax=axes[0],
                 palette="viridis")
    sns.lineplot(frame, x="step", y="test_accuracy", hue="stage", marker="o", ax=axes[1],
                 palette="viridis")
    axes[0].set(xlabel="epoch (all stages)", ylabel="train loss")
    axes[1].set(xlabel="epoch (all stages)", ylabel="test accuracy (k = stage)")
    fig.suptitle("Incremental training: stage k trains group k, groups 1..k-1 frozen")
    fig.tight_layout()
    return fig


def plot_configurations(table: pd.DataFrame) -> plt.Figure:
    """Accuracy (Fig 2 kind) and normalised correct-class confidence (Fig 3 kind) per k."""
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.5))
    sns.barplot(table, x="groups", y="accuracy", hue="model", ax=axes[0])
    low = table["accuracy"].min()
    axes[0].set_ylim(max(0.0, low - 0.05), min(1.0, table["accuracy"].max() + 0.02))
    axes[0].set(ylabel="top-1 accuracy", xlabel="active groups k")
    sns.barplot(table, x="groups", y="confidence_norm", hue="model", ax=axes[1])
    axes[1].set(ylabel="correct-class confidence / full model", xlabel="active groups k")
    axes[1].set_ylim(max(0.0, table["confidence_norm"].min() - 0.05), 1.02)
    sns.lineplot(table, x="macs", y="accuracy", hue="model", marker="o", ax=axes[2])
    axes[2].set(xlabel="MACs per image", ylabel="top-1 accuracy")
    for ax in axes:
        if ax.get_legend() is not None and table["model"].nunique() == 1:
            ax.get_legend().remove()
    fig.tight_layout()
    return fig


def energy_note(table: pd.DataFrame) -> str:
    """'modelled' / 'measured' wording for a figure whose energy comes from ``table``."""
    modelled = table["modelled"].astype(str).str.lower().isin(["true", "1"])
    if modelled.all():
        return "energy MODELLED (no power sensor; see dyndnn.board.modelled)"
    if modelled.any():
        return "energy partly MODELLED (see the meter column)"
    return "energy measured by " + ", ".join(sorted(table["meter"].astype(str).unique()))


def plot_latency(profile: pd.DataFrame) -> plt.Figure:
    """Latency and energy per inference per configuration (the paper's Fig 4 kind).

    One line per task mapping, one column of panels per batch size.
    """
    frame = profile.assign(mapping=profile["device"].astype(str) + "[" +
                           profile["cores"].astype(str) + "]x" + profile["threads"].astype(str))
    batches = sorted(frame["batch"].unique())
    fig, axes = plt.subplots(2, len(batches), figsize=(4.5 * len(batches), 6.5), squeeze=False)
    for col, batch in enumerate(batches):
        part = frame[frame["batch"] == batch]
        for row, (y, label) in enumerate((("latency_s", "latency per inference [s]"),
                                          ("energy_j", "energy per inference [J]"))):
            sns.lineplot(part, x="groups", y=y, hue="mapping", marker="o", ax=axes[row, col],
                         errorbar=("pi", 100))
            axes[row, col].set(xlabel="active groups k", ylabel=label, yscale="log",
                               title=f"batch {batch}", xticks=sorted(frame["groups"].unique()))
    fig.suptitle(f"Per configuration and task mapping; {energy_note(profile)}")
    fig.tight_layout()
    return fig
