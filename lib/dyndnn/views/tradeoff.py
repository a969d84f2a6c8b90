"""Trade-off figures: operating points, Pareto fronts, dynamic ranges, baselines, the manager.

Every axis says what its number is per, in which unit and where it comes from
(``dyndnn.views.axes``): latency per batch, measured by a clock; energy per batch, measured by
a meter or MODELLED; the runtime manager's simulated latency as *simulated*.

>>> import pandas as pd
>>> points = pd.DataFrame({"board": "vm", "model": "m", "backend": "eager", "batch": 64,
...                        "mapping": "cpu[0]x1", "freq_label": "clocks as set",
...                        "groups": [1, 2], "latency_s": [0.012, 0.019],
...                        "energy_j": [0.036, 0.058], "power_w": 3.0,
...                        "accuracy": [0.85, 0.87], "energy_provenance": "modelled",
...                        "energy_source": "CPU power model: f V^2 (assumed)"})
>>> fig = plot_operating_points(points)
>>> [ax.get_xlabel().replace(chr(10), "; ") for ax in fig.axes][:2]  # quantity; provenance
['latency per batch of 64 [ms]; measured (clock)',
 'energy per batch of 64 [mJ]; MODELLED (model: CPU power model)']
"""

from __future__ import annotations

import math
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.analysis import energy_note
from dyndnn.views.axes import (
    CLOCK,
    QUANTITY,
    label_metric_axis,
)

_MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*", "<", ">", "h", "p"]
ACCURACY_LABEL = "top-1 accuracy (test split)"


def engine_mapping(points: pd.DataFrame) -> pd.Series:
    """The mapping, with the backend beside it where ``points`` hold more than one engine.

    >>> engine_mapping(pd.DataFrame({"mapping": ["cpu[0]x1"] * 2,
    ...                              "backend": ["eager", "onnxruntime"]})).tolist()
    ['cpu[0]x1 eager', 'cpu[0]x1 onnxruntime']
    """
    if "backend" not in points or points["backend"].nunique() < 2:
        return points["mapping"]
    return points["mapping"] + " " + points["backend"].astype(str)


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
                  budget: float | None = None, min_accuracy: float | None = None,
                  colours: dict[str, Any] | None = None) -> plt.Axes:
    """Accuracy against ``metric`` on one axis: colour = mapping, marker = k, size = clock.

    Where ``points`` hold more than one backend, the colour is mapping and backend. ``front``
    draws the Pareto front of these points (low ``metric``, high accuracy) as a step line;
    ``highlight`` rings one point and draws its marker again on top (where markers overlap,
    the ring would circle another's); ``budget``/``min_accuracy`` draw the budget lines;
    ``colours`` (``mapping_colours`` of every point) keeps a colour's meaning from view to
    view. The
    x axis is per batch, in engineering units, with its provenance; points whose ``metric``
    was not recorded (NaN energy) are not drawn, and the axis says why where none was.

    >>> points = pd.DataFrame({"mapping": "cpu[0]x1", "freq_label": "clocks as set",
    ...                        "groups": [1, 2], "batch": 1, "energy_j": [0.006, 0.012],
    ...                        "accuracy": [0.80, 0.88], "energy_provenance": "measured",
    ...                        "energy_source": "rapl"})
    >>> fig, ax = plt.subplots()
    >>> ax = plot_tradeoff(ax, points, "energy_j", highlight=points.iloc[0], budget=0.01)
    >>> ax.get_xlabel(), ax.get_legend_handles_labels()[1][-3:]
    ('energy per batch of 1 [mJ]; measured (meter: rapl)', ['Pareto front', 'budget', 'chosen'])
    """
    import seaborn as sns  # seaborn imports scipy.stats: 0.7 s a process that never plots

    from dyndnn.analysis import pareto_mask  # plots stays importable without the analysis

    shown = points[points[metric].notna()]
    ax.set_ylabel(ACCURACY_LABEL)
    if shown.empty:
        ax.text(0.5, 0.5, f"{QUANTITY.get(metric, metric)} not recorded\n{energy_note(points)}",
                ha="center", va="center", wrap=True, fontsize=8, transform=ax.transAxes)
        ax.set_xlabel(QUANTITY.get(metric, metric))
        return ax
    # readable legend titles: the columns are renamed for the plot only
    frame = shown.rename(columns={"groups": "k", "freq_label": "clock"})
    frame["mapping"] = engine_mapping(shown)
    hue_order = hue_order or sorted(engine_mapping(points).unique())
    palette = _palette(points, hue_order, colours)
    size_order = size_order or clock_order(points["freq_label"])
    groups = sorted(int(g) for g in points["groups"].unique())
    markers = {g: _MARKERS[i % len(_MARKERS)] for i, g in enumerate(groups)}
    sns.scatterplot(frame, x=metric, y="accuracy", hue="mapping", hue_order=hue_order,
                    palette=palette, style="k", style_order=groups, markers=markers,
                    size="clock", size_order=size_order, sizes=(40, 160) if
                    len(size_order) > 1 else (70, 70), alpha=0.85, ax=ax, legend=legend)
    if front:
        on = shown[pareto_mask(shown[metric], shown["accuracy"])].sort_values(metric)
        ax.step(on[metric], on["accuracy"], where="post", color="black", lw=1.2, alpha=0.7,
                label="Pareto front", zorder=1)
    if budget is not None and abs(budget) < float("inf"):  # also False for NaN
        ax.axvline(budget, color="tab:red", ls="--", lw=1, label="budget")
    if min_accuracy:
        ax.axhline(min_accuracy, color="tab:red", ls=":", lw=1, label="minimum accuracy")
    if highlight is not None and pd.notna(highlight[metric]):
        at = ([highlight[metric]], [highlight["accuracy"]])
        several = "backend" in points and points["backend"].nunique() > 1
        label = f"{highlight['mapping']} {highlight['backend']}" if several else \
            highlight["mapping"]
        # the chosen point's own marker on top, inside its ring
        ax.scatter(*at, s=110, marker=markers.get(int(highlight["groups"]), "o"),
                   color=palette.get(label, "black"), edgecolors="black", linewidths=0.8,
                   zorder=6, label="_chosen marker", gid="highlight-marker")
        ax.scatter(*at, s=420, facecolors="none", edgecolors="red", linewidths=2.5, zorder=5,
                   label=f"_{highlight_label} ring", gid="highlight-ring")
        # the legend's ring at a marker's size: at the ring's own it covered its neighbour
        ax.plot([], [], ls="none", marker="o", ms=9, mfc="none", mec="red", mew=2,
                label=highlight_label)
    log = metric != "power_w"  # time and energy span decades; power a few watts
    if log:
        ax.set_xscale("log")  # before the ticks: a scale change resets them
    label_metric_axis(ax.xaxis, metric, points, log=log)
    return ax


def mapping_colours(points: pd.DataFrame) -> dict[str, Any]:
    """One colour per (mapping, backend) of every point, keyed ``"mapping backend"``.

    Drawn from this table whole, not from a view of it, so a colour means the same mapping
    and engine in every view (it changed from red to orange between pickers).

    >>> mapping_colours(pd.DataFrame({"mapping": ["cpu[0]x1", "cpu[1]x1"],
    ...                               "backend": "eager"}))  # doctest: +ELLIPSIS
    {'cpu[0]x1 eager': '#1f77b4', 'cpu[1]x1 eager': '#ff7f0e'}
    """
    import seaborn as sns

    backend = points["backend"].astype(str) if "backend" in points else "eager"
    keys = sorted(set(points["mapping"].astype(str) + " " + backend))
    colours = sns.color_palette(n_colors=len(keys)) if len(keys) <= 10 else \
        sns.color_palette("husl", len(keys))
    return dict(zip(keys, [matplotlib.colors.to_hex(c) for c in colours], strict=True))


def _palette(points: pd.DataFrame, hue_order: list[str],
             colours: dict[str, Any] | None) -> dict[str, Any]:
    """The scatter's palette by hue label; from ``colours`` when given (stable across views)."""
    import seaborn as sns

    if not colours:
        return dict(zip(hue_order, sns.color_palette(n_colors=len(hue_order)), strict=True))
    backend = points["backend"].astype(str) if "backend" in points else "eager"
    full = points["mapping"].astype(str) + " " + backend
    palette = dict(zip(engine_mapping(points), full.map(colours), strict=True))
    return {label: palette.get(label, "grey") for label in hue_order}


def _panels(table: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """``(title, rows)`` per (board, batch, backend), sorted: a batch's engines side by side."""
    return [(f"{board}, {backend}, batch {int(batch)}", part) for (board, batch, backend), part
            in table.groupby(["board", "batch", "backend"], sort=True)]


# a notebook cell shows a figure about 1,000 px wide: 10 in at 100 dpi, drawn at that size
FIGURE_WIDTH_IN = 10.0


def plot_operating_points(points: pd.DataFrame,
                          metrics: tuple[str, ...] = ("latency_s", "energy_j", "power_w")
                          ) -> plt.Figure:
    """Every operating point against accuracy (the paper's Fig 5 kind), faceted by board.

    One row per (board, backend, batch), one column per metric; Pareto fronts on latency and
    energy. Rows, not columns, grow with the contexts: a notebook shows a figure at the
    width of its cell (about 1,000 px), where four contexts side by side were 2,000 px wide and
    unreadable. The title names the models drawn. Usage (drawn in the module's example)::

        save_figure(plot_operating_points(points), run_dir, "operating_points")
    """
    panels = _panels(points)
    fig, axes = plt.subplots(len(panels), len(metrics),
                             figsize=(FIGURE_WIDTH_IN, 2.9 * len(panels) + 0.9), squeeze=False)
    hue_order = sorted(points["mapping"].unique())  # a panel holds one backend
    size_order = clock_order(points["freq_label"])
    for row, (title, part) in enumerate(panels):
        for col, metric in enumerate(metrics):
            ax = axes[row, col]
            last = row == 0 and col == len(metrics) - 1
            plot_tradeoff(ax, part, metric, front=metric != "power_w", legend=last,
                          hue_order=hue_order, size_order=size_order)
            ax.set_title(title, fontsize=9)
            # quantity over provenance: one line each, so neighbouring labels do not overlap
            ax.set_xlabel(ax.get_xlabel().replace("; ", "\n", 1), fontsize=8)
            if last:
                ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8,
                          title="mapping / k / clock", title_fontsize=8)
    models = ", ".join(sorted(points["model"].unique())) if "model" in points else "the model"
    fig.suptitle(f"Operating points of {models}: configurations x backends x mappings x clocks "
                 f"(black: Pareto front)\nlatency measured by a clock; {energy_note(points)}",
                 fontsize=10)
    fig.tight_layout()
    return fig


def range_provenance(ranges: pd.DataFrame) -> pd.Series:
    """Each range row's provenance: its ``provenance`` column, else the old ``modelled`` bool.

    A time range is a clock's whatever the table says.

    >>> range_provenance(pd.DataFrame({"metric": ["latency_s", "energy_j"],
    ...                                "modelled": [True, True]})).tolist()
    ['measured', 'modelled']
    """
    if "provenance" in ranges:
        kinds = ranges["provenance"].astype(object).where(ranges["provenance"].notna(), "none")
    elif "modelled" in ranges:
        kinds = ranges["modelled"].astype(bool).map({True: "modelled", False: "measured"})
    else:
        kinds = pd.Series("measured", index=ranges.index)
    return kinds.astype(str).where(ranges["metric"] != "latency_s", "measured")


def _range_label(row: pd.Series) -> str:
    """The legend entry of a range row: quantity and provenance (with its source)."""
    quantity = {"latency_s": "time"}.get(row["metric"], QUANTITY.get(row["metric"], row["metric"]))
    if row["metric"] == "latency_s":
        return f"{quantity}, {CLOCK}"
    source = str(row.get("source", row.get("meter", "")) or "").split(":", 1)[0]
    kind = row["kind"] if row["kind"] == "measured" else row["kind"].upper()
    return f"{quantity}, {kind} ({source})" if source else f"{quantity}, {kind}"


def plot_dynamic_ranges(ranges: pd.DataFrame) -> plt.Figure:
    """Dynamic range (max/min) per level: pruning, + mapping, + DVFS; one panel per batch.

    ``ranges`` is ``dyndnn.analysis.dynamic_ranges``' table; each (board, backend, batch) has
    its panel, two to a row. Measured ranges (time by a clock, energy by a meter) are one
    block; ranges that are not measured (energy from a power model: the time range restated
    through the model) are a second block under their own heading, never bars beside a
    measured one. Rows with no energy recorded are left out, and the title says so.
    Usage (drawn in the module's example)::

        save_figure(plot_dynamic_ranges(dynamic_ranges(points)), run_dir, "dynamic_ranges")
    """
    import seaborn as sns

    frame = ranges.assign(kind=range_provenance(ranges))
    unrecorded = frame["kind"].isin(["none", "nan"]) | frame["range"].isna()
    frame = frame[~unrecorded]
    frame = frame.assign(quantity=frame.apply(_range_label, axis=1))
    measured = frame[frame["kind"] == "measured"]
    sources = "; ".join(sorted(set(measured["quantity"])))
    blocks = [(f"MEASURED: {sources}", measured)] if len(measured) else []
    blocks += [("NOT MEASURED: with no sensor the energy is the model's power x the measured "
                "time, so its range restates the time range through the model (not a second "
                "finding)", part) for part in [frame[frame["kind"] != "measured"]] if len(part)]
    heights = [math.ceil(len(_panels(part)) / 2) for _, part in blocks] or [1]
    fig = plt.figure(figsize=(10.5, 2.7 * sum(heights) + 1.0), layout="constrained")
    subfigs = fig.subfigures(len(heights), 1, height_ratios=heights, squeeze=False)[:, 0]
    # time blue, measured energy orange; anything not measured grey (and hatched)
    palette = {q: "tab:blue" if q.startswith("time") else "tab:orange" if kind == "measured"
               else "tab:gray" for q, kind in zip(frame["quantity"], frame["kind"], strict=True)}
    order = [lv for lv in ("pruning", "pruning+mapping", "pruning+mapping+dvfs")
             if lv in set(frame["level"])]
    for subfig, (heading, part), rows in zip(subfigs, blocks, heights, strict=False):
        panels = _panels(part)
        axes = subfig.subplots(rows, min(2, len(panels)), squeeze=False).ravel()
        for ax, (title, panel) in zip(axes, panels, strict=False):
            hue = sorted(set(panel["quantity"]))
            sns.barplot(panel, x="level", y="range", hue="quantity", hue_order=hue, order=order,
                        palette=palette, ax=ax, legend=False,
                        hatch="//" if heading.startswith("NOT") else None)
            for container in ax.containers:
                ax.bar_label(container, fmt="%.2fx", fontsize=8)
            ax.set(title=title, xlabel="", ylabel="max / min over k, mapping, clock")
            ax.set_ylim(0, panel["range"].max() * 1.15)
            ax.tick_params(axis="x", labelsize=8)
        for ax in axes[len(panels):]:
            ax.set_visible(False)
        handles = [plt.Rectangle((0, 0), 1, 1, color=palette[q],
                                 hatch="//" if heading.startswith("NOT") else None)
                   for q in sorted(set(part["quantity"]))]
        subfig.legend(handles, sorted(set(part["quantity"])), loc="outside lower center",
                      ncol=2, fontsize=8)
        subfig.suptitle(heading, fontsize=9, wrap=True,
                        color="black" if heading.startswith("MEASURED") else "#8b0000")
    left_out = ""
    if unrecorded.any():
        where = sorted({f"{r.board}, {r.backend}, batch {r.batch}"
                        for r in ranges[unrecorded].itertuples()})
        left_out = f"\nleft out: energy not recorded (no sensor) at {'; '.join(where)}"
    fig.suptitle(f"Dynamic range (max / min) of what a running model can change{left_out}",
                 fontsize=10)
    return fig
