"""Figures of a run (seaborn on the tidy tables), saved as PNG and SVG under ``figures/``.

>>> import pandas as pd, tempfile
>>> from dyndnn.analysis import compare_models, dynamic_ranges, join_tables, operating_points
>>> history = pd.DataFrame({"stage": [1, 1, 2, 2], "train_loss": [2.0, 1.2, 1.0, 0.8],
...                         "val_accuracy": [0.50, 0.70, 0.75, 0.80]})
>>> run_dir = tempfile.mkdtemp()
>>> [path.name for path in save_figure(plot_training(history), run_dir, "train_curves")]
['train_curves.png', 'train_curves.svg']

The operating points of the reference model and a baseline, k = 1 and 2, on one mapping:

>>> models = ["group"] * 2 + ["tann"] * 2
>>> profile = pd.DataFrame({"board": "vm", "model": models, "device": "cpu", "cores": "0",
...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2, 1, 2],
...                         "latency_s": [0.001, 0.004, 0.002, 0.004],
...                         "energy_j": [0.003, 0.012, 0.006, 0.012], "power_w": 3.0,
...                         "energy_provenance": "modelled", "energy_source": "CPU power model"})
>>> evaluation = pd.DataFrame({"model": models, "groups": [1, 2, 1, 2],
...                            "accuracy": [0.80, 0.88, 0.79, 0.88], "macs": [100, 200] * 2,
...                            "macs_fraction": [0.5, 1.0] * 2, "param_bytes": [40, 80, 40, 100]})
>>> points = operating_points(join_tables(evaluation, profile))
>>> fig = plot_operating_points(points)    # a row per board/backend/batch, a column per metric
>>> len(fig.axes), fig.axes[0].get_title()
(3, 'vm, eager, batch 1')
>>> ranges = dynamic_ranges(points)
>>> fig = plot_dynamic_ranges(ranges[ranges["model"] == "group"])
>>> [(sub.get_suptitle().split(":")[0], [ax.get_title() for ax in sub.axes])
...  for sub in fig.subfigs]
[('MEASURED', ['vm, eager, batch 1']), ('NOT MEASURED', ['vm, eager, batch 1'])]
>>> fig = plot_comparison(compare_models(evaluation, points), evaluation)
>>> [ax.get_title().split(chr(10))[0][:40] for ax in fig.axes]  # doctest: +NORMALIZE_WHITESPACE
['accuracy per configuration', 'time dynamic range, measured (clock)',
 'energy dynamic range: MODELLED, not meas', 'memory']
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd

# energy_note is re-exported: figures and tables share one wording
from dyndnn.analysis import energy_note, tidy_profile
from dyndnn.record.atomic import atomic_write
from dyndnn.record.layout import RunLayout
from dyndnn.views.axes import label_metric_axis, set_unit_axis
from dyndnn.views.comparison import plot_comparison

# the trade-off figures live in their own module; importable from here as before
from dyndnn.views.tradeoff import (
    ACCURACY_LABEL,
    clock_order,
    engine_mapping,
    plot_dynamic_ranges,
    plot_operating_points,
    plot_tradeoff,
)

__all__ = [
    "ACCURACY_LABEL", "clock_order", "energy_note", "engine_mapping", "plot_comparison",
    "plot_configurations", "plot_dynamic_ranges", "plot_latency", "plot_manager_trace",
    "plot_operating_points", "plot_tradeoff", "plot_training", "save_figure",
]  # fmt: skip


def save_figure(fig: plt.Figure, run_dir: str | Path | RunLayout, name: str) -> list[Path]:
    """Write ``figures/<name>.png`` and ``.svg`` in the run folder (each atomically)."""
    layout = RunLayout.of(run_dir)
    paths = [layout.figure(name, ext) for ext in ("png", "svg")]
    for path in paths:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format=path.suffix[1:], dpi=150, bbox_inches="tight")
    return paths


def plot_training(history: pd.DataFrame) -> plt.Figure:
    """Train loss and validation accuracy over epochs, one colour per stage, one row per model.

    The curves are the validation split's: training never reads the test split.
    """
    import seaborn as sns  # seaborn imports scipy.stats: 0.7 s a process that never plots

    if "model" not in history:
        history = history.assign(model="group")
    models = list(dict.fromkeys(history["model"]))
    fig, axes = plt.subplots(len(models), 2, figsize=(10, 3.3 * len(models)), squeeze=False)
    for row, model in enumerate(models):
        part = history[history["model"] == model]
        frame = part.assign(step=range(1, len(part) + 1))
        for col, y in enumerate(("train_loss", "val_accuracy")):
            sns.lineplot(frame, x="step", y=y, hue="stage", marker="o", ax=axes[row, col],
                         palette="viridis")
        axes[row, 0].set(xlabel="epoch (all stages)", ylabel="train loss", title=model)
        axes[row, 1].set(xlabel="epoch (all stages)", ylabel="validation accuracy (k = stage)",
                         title=model)
    fig.suptitle("Training: stage k trains what configuration k adds (slimmable: one joint "
                 "stage, scored at full width)")
    fig.tight_layout()
    return fig


def plot_configurations(table: pd.DataFrame) -> plt.Figure:
    """Accuracy (Fig 2 kind) and normalised correct-class confidence (Fig 3 kind) per k."""
    import seaborn as sns

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


def plot_latency(profile: pd.DataFrame) -> plt.Figure:
    """Latency and energy per batch per configuration (the paper's Fig 4 kind).

    One colour per task mapping and one line style per backend (several models: one colour
    per model, one line style per mapping and backend), one column of panels per batch size;
    every axis per batch of that size, in engineering units, with its provenance.
    """
    import seaborn as sns

    frame = tidy_profile(profile)
    several = frame["model"].nunique() > 1
    if several:
        hue, style = "model", "mapping"
        frame["mapping"] = engine_mapping(frame)
    else:
        hue, style = "mapping", "backend" if frame["backend"].nunique() > 1 else None
    batches = sorted(frame["batch"].unique())
    fig, axes = plt.subplots(2, len(batches), figsize=(4.8 * len(batches), 6.8), squeeze=False)
    for col, batch in enumerate(batches):
        part = frame[frame["batch"] == batch]
        for row, y in enumerate(("latency_s", "energy_j")):
            ax = axes[row, col]
            sns.lineplot(part, x="groups", y=y, hue=hue, style=style, marker="o", ax=ax,
                         errorbar=("pi", 100))
            ax.set(xlabel="active groups k", yscale="log", title=f"batch {batch}",
                   xticks=sorted(frame["groups"].unique()))
            label_metric_axis(ax.yaxis, y, part)
            ax.yaxis.label.set_fontsize(8)
            if (row, col) != (0, 0):
                ax.get_legend().remove()
    # one legend, right of the panels (inside them it covered the lines); it stays the first
    # panel's, kept out of tight_layout (which would squeeze that panel), in the room left
    fig.set_figwidth(fig.get_figwidth() + 2.4)
    right = 1 - 2.4 / fig.get_figwidth()
    sns.move_legend(axes[0, 0], "upper left", bbox_to_anchor=(right + 0.01, 0.9),
                    bbox_transform=fig.transFigure, fontsize=8)
    legend = axes[0, 0].get_legend()
    legend.set_in_layout(False)
    fig.suptitle(f"Per configuration, task mapping and backend\nlatency measured by a clock; "
                 f"{energy_note(frame)}")
    fig.tight_layout(rect=(0, 0, right, 1))
    legend.set_in_layout(True)  # and in the saved image's bounding box
    return fig


def plot_manager_trace(log: pd.DataFrame, title: str = "Runtime manager") -> plt.Figure:
    r"""A runtime manager's log: latency (measured live, or simulated) against its budget, k.

    ``log`` is ``RuntimeManager.log`` or ``live_demo`` output (``measured_latency_s``: a
    clock's) or ``simulate`` output (``simulated_latency_s``: drawn from the profile times a
    synthetic slowdown); the axis and the legend say which. Shaded spans are where ``load``
    is on, red ticks mark switches.

    >>> from dyndnn.runtime import simulate, synthetic_trace
    >>> table = pd.DataFrame({"groups": [1, 2], "latency_s": [0.001, 0.002],
    ...                       "accuracy": [0.80, 0.88]})
    >>> fig = plot_manager_trace(simulate(table, synthetic_trace(table, steps=40)))
    >>> fig.get_suptitle(), fig.axes[0].get_ylabel()
    ('Runtime manager: 3 switches', 'latency per batch [ms]\nSIMULATED (synthetic trace)')
    """
    if "simulated_latency_s" in log:
        column, provenance, load = ("simulated_latency_s", "SIMULATED (synthetic trace)",
                                    "background load (simulated)")
    elif "measured_latency_s" in log:
        column, provenance, load = "measured_latency_s", "measured (clock)", "background load"
    else:
        raise ValueError("a manager log has simulated_latency_s (simulate) or "
                         f"measured_latency_s (a live run); this one has {list(log.columns)}")
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True,
                             gridspec_kw={"height_ratios": [3, 2]})
    t = log["t_s"]
    axes[0].plot(t, log[column], marker=".", lw=1, label=column.replace("_latency_s", " latency"))
    if log["budget_latency_s"].notna().any():
        axes[0].step(t, log["budget_latency_s"], where="post", color="tab:red", ls="--",
                     label="latency budget")
    axes[0].set_yscale("log")  # before the ticks: a scale change resets them
    values = pd.concat([log[column], log["budget_latency_s"]]).dropna()
    unit = set_unit_axis(axes[0].yaxis, values, "s")
    axes[0].set_ylabel(f"latency per batch [{unit}]\n{provenance}")
    axes[1].step(t, log["groups"], where="post", color="black")
    axes[1].set(ylabel="active groups k", xlabel="time [s]",
                yticks=sorted(set(int(k) for k in log["groups"])))
    if "load" in log and log["load"].any():
        loaded = log["load"].astype(bool).to_numpy()
        for ax in axes:
            ax.fill_between(t, 0, 1, where=loaded, step="post", color="tab:orange", alpha=0.15,
                            transform=ax.get_xaxis_transform(), label=load)
    for when in log.loc[log["switched"], "t_s"]:
        for ax in axes:
            ax.axvline(when, color="tab:red", lw=0.8, alpha=0.5)
    axes[0].legend(fontsize=8, loc="upper left")
    switches = int(log["switched"].sum())
    fig.suptitle(f"{title}: {switches} switch{'es' if switches != 1 else ''}")
    fig.tight_layout()
    return fig
