"""Figures of a run (seaborn on the tidy tables), saved as PNG and SVG under ``figures/``.

>>> import pandas as pd, tempfile
>>> from dyndnn.analysis import compare_models, dynamic_ranges, join_tables, operating_points
>>> history = pd.DataFrame({"stage": [1, 1, 2, 2], "train_loss": [2.0, 1.2, 1.0, 0.8],
...                         "val_accuracy": [0.50, 0.70, 0.75, 0.80]})
>>> run_dir = tempfile.mkdtemp()
>>> [path.name for path in save_figure(plot_training(history), run_dir, "train_curves")]
['train_curves.png', 'train_curves.svg']

The operating points of the reference model and a baseline, k = 1 and 2, on one mapping:

>>> models = ["group-alexnet"] * 2 + ["tann"] * 2
>>> profile = pd.DataFrame({"board": "vm", "model": models, "device": "cpu", "cores": "0",
...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2, 1, 2],
...                         "latency_s": [0.001, 0.004, 0.002, 0.004],
...                         "energy_j": [0.003, 0.012, 0.006, 0.012], "power_w": 3.0})
>>> evaluation = pd.DataFrame({"model": models, "groups": [1, 2, 1, 2],
...                            "accuracy": [0.80, 0.88, 0.79, 0.88], "macs": [100, 200] * 2,
...                            "macs_fraction": [0.5, 1.0] * 2, "param_bytes": [40, 80, 40, 100]})
>>> points = operating_points(join_tables(evaluation, profile))
>>> fig = plot_operating_points(points)    # a row per metric, a column per board/backend/batch
>>> len(fig.axes), fig.axes[0].get_title()
(3, 'vm, eager, batch 1')
>>> ranges = dynamic_ranges(points)
>>> plot_dynamic_ranges(ranges[ranges["model"] == "group-alexnet"]).axes[0].get_title()
'vm, eager, batch 1'
>>> fig = plot_comparison(compare_models(evaluation, points), evaluation)
>>> [ax.get_title() for ax in fig.axes]
['accuracy per configuration', 'time dynamic range', 'energy dynamic range', 'memory']
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

# energy_note is re-exported: figures and tables share one wording
from dyndnn.analysis import energy_note, tidy_profile
from dyndnn.atomic import atomic_write
from dyndnn.layout import RunLayout


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
    if "model" not in history:
        history = history.assign(model="group-alexnet")
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


def engine_mapping(points: pd.DataFrame) -> pd.Series:
    """The mapping, with the backend beside it where ``points`` hold more than one engine.

    >>> engine_mapping(pd.DataFrame({"mapping": ["cpu[0]x1"] * 2,
    ...                              "backend": ["eager", "onnxruntime"]})).tolist()
    ['cpu[0]x1 eager', 'cpu[0]x1 onnxruntime']
    """
    if "backend" not in points or points["backend"].nunique() < 2:
        return points["mapping"]
    return points["mapping"] + " " + points["backend"].astype(str)


def plot_latency(profile: pd.DataFrame) -> plt.Figure:
    """Latency and energy per inference per configuration (the paper's Fig 4 kind).

    One colour per task mapping and one line style per backend (several models: one colour
    per model, one line style per mapping and backend), one column of panels per batch size.
    """
    frame = tidy_profile(profile)
    several = frame["model"].nunique() > 1
    if several:
        hue, style = "model", "mapping"
        frame["mapping"] = engine_mapping(frame)
    else:
        hue, style = "mapping", "backend" if frame["backend"].nunique() > 1 else None
    batches = sorted(frame["batch"].unique())
    fig, axes = plt.subplots(2, len(batches), figsize=(4.5 * len(batches), 6.5), squeeze=False)
    for col, batch in enumerate(batches):
        part = frame[frame["batch"] == batch]
        for row, (y, label) in enumerate((("latency_s", "latency per inference [s]"),
                                          ("energy_j", "energy per inference [J]"))):
            sns.lineplot(part, x="groups", y=y, hue=hue, style=style, marker="o",
                         ax=axes[row, col], errorbar=("pi", 100))
            axes[row, col].set(xlabel="active groups k", ylabel=label, yscale="log",
                               title=f"batch {batch}", xticks=sorted(frame["groups"].unique()))
    fig.suptitle(f"Per configuration, task mapping and backend; {energy_note(frame)}")
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# trade-off figures (issue 5): operating points, Pareto fronts, dynamic ranges, runtime manager

METRIC_LABELS = {"latency_s": "latency per inference [s]", "energy_j": "energy per inference [J]",
                 "power_w": "average power [W]"}
_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]


def clock_order(labels: pd.Series | list[str]) -> list[str]:
    """Clock labels largest first ("clocks as set" leads): the marker-size order.

    >>> clock_order(["800 MHz", "clocks as set", "1400 MHz"])
    ['clocks as set', '1400 MHz', '800 MHz']
    """
    def mhz(label: str) -> float:
        head = label.split()[0]
        return float(head) if head.replace(".", "", 1).isdigit() else float("inf")

    return sorted(set(labels), key=lambda label: -mhz(label))


def plot_tradeoff(ax: plt.Axes, points: pd.DataFrame, metric: str = "latency_s", *,
                  front: bool = True, highlight: pd.Series | dict | None = None,
                  highlight_label: str = "chosen", legend: bool = True,
                  hue_order: list[str] | None = None, size_order: list[str] | None = None,
                  budget: float | None = None, min_accuracy: float | None = None) -> plt.Axes:
    """Accuracy against ``metric`` on one axis: colour = mapping, marker = k, size = clock.

    Where ``points`` hold more than one backend, the colour is mapping and backend. ``front``
    draws the Pareto front of these points (low ``metric``, high accuracy) as a step line;
    ``highlight`` rings one point; ``budget``/``min_accuracy`` draw the budget lines.

    >>> points = pd.DataFrame({"mapping": "cpu[0]x1", "freq_label": "clocks as set",
    ...                        "groups": [1, 2], "energy_j": [0.006, 0.012],
    ...                        "accuracy": [0.80, 0.88]})
    >>> fig, ax = plt.subplots()
    >>> ax = plot_tradeoff(ax, points, "energy_j", highlight=points.iloc[0], budget=0.01)
    >>> ax.get_xlabel(), ax.get_legend_handles_labels()[1][-3:]
    ('energy per inference [J]', ['Pareto front', 'budget', 'chosen'])
    """
    from dyndnn.analysis import pareto_mask  # plots stays importable without the analysis

    # readable legend titles: the columns are renamed for the plot only
    frame = points.rename(columns={"groups": "k", "freq_label": "clock"})
    frame["mapping"] = engine_mapping(points)
    hue_order = hue_order or sorted(frame["mapping"].unique())
    size_order = size_order or clock_order(points["freq_label"])
    groups = sorted(int(g) for g in points["groups"].unique())
    sns.scatterplot(frame, x=metric, y="accuracy", hue="mapping", hue_order=hue_order,
                    style="k", style_order=groups,
                    markers={g: _MARKERS[i % len(_MARKERS)] for i, g in enumerate(groups)},
                    size="clock", size_order=size_order, sizes=(40, 160) if
                    len(size_order) > 1 else (70, 70), alpha=0.85, ax=ax, legend=legend)
    if front and len(points):
        on = points[pareto_mask(points[metric], points["accuracy"])].sort_values(metric)
        ax.step(on[metric], on["accuracy"], where="post", color="black", lw=1.2, alpha=0.7,
                label="Pareto front", zorder=1)
    if budget is not None and abs(budget) < float("inf"):  # also False for NaN
        ax.axvline(budget, color="tab:red", ls="--", lw=1, label="budget")
    if min_accuracy:
        ax.axhline(min_accuracy, color="tab:red", ls=":", lw=1, label="minimum accuracy")
    if highlight is not None:
        ax.scatter([highlight[metric]], [highlight["accuracy"]], s=420, facecolors="none",
                   edgecolors="red", linewidths=2.5, zorder=5, label=highlight_label)
    ax.set(xlabel=METRIC_LABELS.get(metric, metric), ylabel="top-1 accuracy")
    if metric != "power_w":  # time and energy span decades; power a few watts
        from matplotlib import ticker

        ax.set_xscale("log")
        # ticks at 1, 2, 5 x 10^n in plain numbers: log minor labels overlap on short ranges
        ax.xaxis.set_major_locator(ticker.LogLocator(base=10))
        ax.xaxis.set_minor_locator(ticker.LogLocator(base=10, subs=(2.0, 5.0)))
        plain = ticker.FuncFormatter(lambda v, _: f"{v:.3g}")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
    return ax


def _panels(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(title, rows)`` per (board, batch, backend), sorted: a batch's engines side by side."""
    return [(f"{board}, {backend}, batch {int(batch)}", part) for (board, batch, backend), part
            in table.groupby(["board", "batch", "backend"], sort=True)]


def plot_operating_points(points: pd.DataFrame,
                          metrics: tuple[str, ...] = ("latency_s", "energy_j", "power_w")
                          ) -> plt.Figure:
    """Every operating point against accuracy (the paper's Fig 5 kind), faceted by board.

    One row per metric, one column per (board, backend, batch); Pareto fronts on latency and
    energy.

    Usage (drawn in the module's example)::

        save_figure(plot_operating_points(points), run_dir, "operating_points")
    """
    panels = _panels(points)
    fig, axes = plt.subplots(len(metrics), len(panels), figsize=(5 * len(panels),
                                                                  3.6 * len(metrics)),
                             squeeze=False)
    hue_order = sorted(points["mapping"].unique())
    size_order = clock_order(points["freq_label"])
    for col, (title, part) in enumerate(panels):
        for row, metric in enumerate(metrics):
            ax = axes[row, col]
            last = row == 0 and col == len(panels) - 1
            plot_tradeoff(ax, part, metric, front=metric != "power_w", legend=last,
                          hue_order=hue_order, size_order=size_order)
            ax.set_title(title, fontsize=10)
            if last:
                ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                          title="mapping / k / clock", title_fontsize=8)
    fig.suptitle("Operating points: configurations x backends x mappings x clocks (black: "
                 f"Pareto front); {energy_note(points)}")
    fig.tight_layout()
    return fig


def plot_dynamic_ranges(ranges: pd.DataFrame) -> plt.Figure:
    """Dynamic range (max/min) per level: pruning, + mapping, + DVFS; one panel per batch.

    ``ranges`` is ``dyndnn.analysis.dynamic_ranges``' table; each backend has its own panels,
    side by side.

    Usage (drawn in the module's example)::

        save_figure(plot_dynamic_ranges(dynamic_ranges(points)), run_dir, "dynamic_ranges")
    """
    frame = ranges.assign(quantity=ranges["metric"].map({"latency_s": "time",
                                                         "energy_j": "energy"}).fillna(
                                                             ranges["metric"]))
    panels = _panels(frame)
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, (title, part) in zip(axes[0], panels, strict=True):
        sns.barplot(part, x="level", y="range", hue="quantity", ax=ax,
                    hue_order=[q for q in ("time", "energy") if q in set(part["quantity"])],
                    order=[lv for lv in ("pruning", "pruning+mapping", "pruning+mapping+dvfs")
                           if lv in set(part["level"])])
        for container in ax.containers:
            ax.bar_label(container, fmt="%.2fx", fontsize=8)
        ax.set(title=title, xlabel="", ylabel="dynamic range (max / min)")
        ax.tick_params(axis="x", labelsize=8)
    energy = ranges[ranges["metric"] == "energy_j"]
    note = energy_note(energy) if len(energy) else "no energy"
    fig.suptitle(f"Dynamic range of time and energy; {note}")
    fig.tight_layout()
    return fig


def plot_comparison(comparison: pd.DataFrame, evaluation: pd.DataFrame) -> plt.Figure:
    """The group model against the baselines: accuracy, time and energy ranges, memory.

    ``comparison`` is ``dyndnn.analysis.compare_models``' table. Range bars are the median
    over the measured mappings and clocks, whiskers their min to max; one colour per batch
    and backend.

    Usage (drawn in the module's example)::

        save_figure(plot_comparison(compare_models(evaluation, points), evaluation), run_dir,
                    "comparison")
    """
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    order = list(dict.fromkeys(evaluation["model"]))
    sns.lineplot(evaluation, x="macs_fraction", y="accuracy", hue="model", hue_order=order,
                 marker="o", ax=axes[0])
    axes[0].set(xlabel="MACs / full configuration's", ylabel="top-1 accuracy",
                title="accuracy per configuration")
    hue = comparison["backend"].astype(str) + ", batch " + comparison["batch"].astype(str)
    frame = comparison.assign(**{"backend, batch": hue})
    for ax, column, title in ((axes[1], "time_range", "time dynamic range"),
                              (axes[2], "energy_range", "energy dynamic range")):
        sns.barplot(frame, x="model", y=column, hue="backend, batch", order=order, ax=ax,
                    estimator="median", errorbar=("pi", 100))
        for container in ax.containers:
            ax.bar_label(container, fmt="%.2fx", fontsize=7)
        ax.set(xlabel="", ylabel="max / min over configurations", title=title)
        ax.tick_params(axis="x", labelsize=8, rotation=15)
    provenance = "+".join(sorted(set(comparison["energy_provenance"].astype(str))))
    if provenance != "measured":
        axes[2].set_title(f"energy dynamic range ({provenance.upper()})")
    memory = comparison.drop_duplicates("model").assign(
        megabytes=lambda f: f["serving_bytes"] / 1e6)
    sns.barplot(memory, x="model", y="megabytes", order=order, ax=axes[3], color="tab:gray")
    for container in axes[3].containers:
        axes[3].bar_label(container, fmt="%.2f", fontsize=8)
    axes[3].set(xlabel="", ylabel="MB held to serve all configurations", title="memory")
    axes[3].tick_params(axis="x", labelsize=8, rotation=15)
    rates = ", ".join(f"{m} {r:.3f}" for m, r in
                      comparison.drop_duplicates("model")[["model", "compression_rate"]]
                      .itertuples(index=False))
    fig.suptitle(f"Dynamic DNNs side by side; compression rate (smallest / full MACs): {rates}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def plot_manager_trace(log: pd.DataFrame, title: str = "Runtime manager") -> plt.Figure:
    """A runtime manager's log: latency (measured live, or simulated) against its budget, k.

    ``log`` is ``RuntimeManager.log`` (or ``simulate``/``live_demo`` output); shaded spans
    are where ``load`` is on, red ticks mark switches.

    >>> from dyndnn.runtime import simulate, synthetic_trace
    >>> table = pd.DataFrame({"groups": [1, 2], "latency_s": [0.001, 0.002],
    ...                       "accuracy": [0.80, 0.88]})
    >>> fig = plot_manager_trace(simulate(table, synthetic_trace(table, steps=40)))
    >>> fig.get_suptitle()
    'Runtime manager: 3 switches'
    """
    fig, axes = plt.subplots(2, 1, figsize=(9, 5), sharex=True,
                             gridspec_kw={"height_ratios": [3, 2]})
    t = log["t_s"]
    # a live run logs what a clock measured; a simulation logs what it drew: say which
    column = "simulated_latency_s" if "simulated_latency_s" in log else "measured_latency_s"
    axes[0].plot(t, log[column], marker=".", lw=1,
                 label=column.replace("_latency_s", " latency"))
    if log["budget_latency_s"].notna().any():
        axes[0].step(t, log["budget_latency_s"], where="post", color="tab:red", ls="--",
                     label="latency budget")
    axes[0].set(yscale="log", ylabel="latency per batch [s]")
    axes[1].step(t, log["groups"], where="post", color="black")
    axes[1].set(ylabel="active groups k", xlabel="time [s]",
                yticks=sorted(set(int(k) for k in log["groups"])))
    if "load" in log and log["load"].any():
        loaded = log["load"].astype(bool).to_numpy()
        for ax in axes:
            ax.fill_between(t, 0, 1, where=loaded, step="post", color="tab:orange", alpha=0.15,
                            transform=ax.get_xaxis_transform(), label="background load")
    for when in log.loc[log["switched"], "t_s"]:
        for ax in axes:
            ax.axvline(when, color="tab:red", lw=0.8, alpha=0.5)
    axes[0].legend(fontsize=8, loc="upper left")
    switches = int(log["switched"].sum())
    fig.suptitle(f"{title}: {switches} switch{'es' if switches != 1 else ''}")
    fig.tight_layout()
    return fig
