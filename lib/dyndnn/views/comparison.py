"""The group model against the baselines: accuracy, time and energy ranges, memory.

A range bar is the median over the contexts (mapping x clock) a model was measured in, its
whisker the narrowest to the widest context; the value printed above the whisker is the
median and, where contexts differ, the widest. The dynamic-range figure's ``pruning`` bar is
the widest context alone, so it matches this figure's whisker top, not its bar.

>>> import pandas as pd
>>> frame = pd.DataFrame({"model": ["group"] * 3 + ["tann"] * 3, "hue": "eager, batch 1",
...                       "time_range": [2.0, 2.12, 2.62, 1.5, 1.6, 1.7]})
>>> print(range_bar_stats(frame, "time_range", "hue", ["group", "tann"]).round(2)
...       .to_string(index=False))
model            hue  median  low  high  contexts
group eager, batch 1    2.12  2.0  2.62         3
 tann eager, batch 1    1.60  1.5  1.70         3
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from dyndnn.views.axes import CLOCK
from dyndnn.views.tradeoff import ACCURACY_LABEL

WHAT_BARS_SHOW = ("bar: median over the contexts (mapping x clock); whisker: narrowest to "
                  "widest context; label: median (widest)")


def range_bar_stats(frame: pd.DataFrame, column: str, hue: str,
                    order: list[str]) -> pd.DataFrame:
    """Median, lowest and highest ``column`` per (model, hue) over its contexts, in ``order``."""
    stats = (frame.dropna(subset=[column]).groupby(["model", hue], sort=False)[column]
             .agg(median="median", low="min", high="max", contexts="count").reset_index())
    stats["model"] = pd.Categorical(stats["model"], categories=order, ordered=True)
    return stats.sort_values(["model", hue]).reset_index(drop=True).astype({"model": str})


def _range_label(row: pd.Series) -> str:
    """``2.12x`` for one context or equal ones; ``2.12x (2.62x)`` when the widest differs."""
    if row["contexts"] > 1 and row["high"] > row["median"] * 1.005:
        return f"{row['median']:.2f}x\n({row['high']:.2f}x)"
    return f"{row['median']:.2f}x"


def draw_range_bars(ax: plt.Axes, frame: pd.DataFrame, column: str, hue: str,
                    order: list[str], colours: dict[str, str], hatch: str | None) -> list:
    """Bars at the median, whiskers from the narrowest to the widest context, labels above.

    Labels sit above each whisker's top, so no whisker runs through a number. Returns the
    label texts (a test checks where they are).
    """
    stats = range_bar_stats(frame, column, hue, order)
    hues = [h for h in colours if h in set(stats[hue])]
    width = 0.8 / max(len(hues), 1)
    texts = []
    for j, name in enumerate(hues):
        part = stats[stats[hue] == name]
        x = np.array([order.index(m) for m in part["model"]]) - 0.4 + width * (j + 0.5)
        ax.bar(x, part["median"], width=width * 0.95, color=colours[name], label=name,
               hatch=hatch, edgecolor="white" if hatch else None)
        ax.errorbar(x, part["median"], yerr=[part["median"] - part["low"],
                                             part["high"] - part["median"]],
                    fmt="none", ecolor="black", elinewidth=1, capsize=2)
        for xi, (_, row) in zip(x, part.iterrows(), strict=True):
            texts.append(ax.annotate(_range_label(row), (xi, row["high"]), xytext=(0, 2),
                                     textcoords="offset points", ha="center", va="bottom",
                                     fontsize=6.5, linespacing=0.95))
    ax.set_xticks(range(len(order)), order)
    ax.set_xlim(-0.5, len(order) - 0.5)
    ax.set_ylim(0, stats["high"].max() * 1.3 if len(stats) else 1)
    return texts


def plot_comparison(comparison: pd.DataFrame, evaluation: pd.DataFrame) -> plt.Figure:
    """The comparison figure: accuracy and memory side by side, then time and energy ranges.

    ``comparison`` is ``dyndnn.analysis.compare_models``' table (one row per context). Stacked
    to a notebook's width; one colour per backend and batch; legends outside lines and bars;
    energy ranges hatched and titled where not measured. Usage (drawn in
    ``dyndnn.views.plots``' example)::

        save_figure(plot_comparison(compare_models(evaluation, points), evaluation), run_dir,
                    "comparison")
    """
    import seaborn as sns  # seaborn imports scipy.stats: 0.7 s a process that never plots

    fig = plt.figure(figsize=(10, 11), layout="constrained")
    grid = fig.add_gridspec(3, 2, height_ratios=[1.1, 1, 1])
    # created in reading order of the old row: accuracy, time, energy, memory
    axes = [fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, :]),
            fig.add_subplot(grid[2, :]), fig.add_subplot(grid[0, 1])]
    order = list(dict.fromkeys(evaluation["model"]))
    order += [m for m in dict.fromkeys(comparison["model"]) if m not in order]
    sns.lineplot(evaluation, x="macs_fraction", y="accuracy", hue="model", hue_order=order,
                 marker="o", ax=axes[0])
    axes[0].set(xlabel="MACs / full configuration's", ylabel=ACCURACY_LABEL,
                title="accuracy per configuration")
    axes[0].legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=2, fontsize=8,
                   title="model", title_fontsize=8)
    hue = comparison["backend"].astype(str) + ", batch " + comparison["batch"].astype(str)
    frame = comparison.assign(**{"backend, batch": hue})
    names = sorted(set(hue))
    colours = dict(zip(names, sns.color_palette(n_colors=len(names)).as_hex(), strict=True))
    kinds = _comparison_energy_provenance(comparison)
    energy_title = ("energy dynamic range, measured (meter)" if kinds == "measured" else
                    f"energy dynamic range: {kinds.upper()}, not measured (with no sensor it "
                    "restates the time range through the power model)")
    for ax, column, title in ((axes[1], "time_range", f"time dynamic range, {CLOCK}"),
                              (axes[2], "energy_range", energy_title)):
        if frame[column].notna().sum() == 0:
            ax.text(0.5, 0.5, "energy not recorded (no sensor)", ha="center", va="center",
                    transform=ax.transAxes)
            ax.set(title=title, xticks=[], yticks=[])
            continue
        modelled = column == "energy_range" and kinds != "measured"
        draw_range_bars(ax, frame, column, "backend, batch", order, colours,
                        "//" if modelled else None)
        ax.set(xlabel="", ylabel="max / min over configurations")
        ax.set_title(f"{title}\n{WHAT_BARS_SHOW}", fontsize=9,
                     color="#8b0000" if modelled else "black")
    if axes[1].get_legend_handles_labels()[0]:
        axes[1].legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8,
                       title="backend, batch (both\nrange panels)", title_fontsize=8)
    memory = comparison.drop_duplicates("model").assign(
        megabytes=lambda f: f["serving_bytes"] / 1e6)
    sns.barplot(memory, x="model", y="megabytes", order=order, ax=axes[3], color="tab:gray")
    for container in axes[3].containers:
        axes[3].bar_label(container, fmt="%.2f", fontsize=8)
    axes[3].set(xlabel="", ylabel="MB held to serve all k\n(accounted: tensor bytes)",
                title="memory")
    for ax in (axes[0], axes[3]):
        ax.tick_params(axis="x", labelsize=8, rotation=15)
    rates = ", ".join(f"{m} {r:.3f}" for m, r in
                      comparison.drop_duplicates("model")[["model", "compression_rate"]]
                      .itertuples(index=False))
    fig.suptitle("Dynamic DNNs side by side (the dynamic-range figure's pruning bar is the "
                 f"widest context: this figure's whisker top)\ncompression rate (smallest / "
                 f"full MACs): {rates}", fontsize=10)
    return fig


def _comparison_energy_provenance(comparison: pd.DataFrame) -> str:
    """``measured``, ``modelled`` or a mix (``measured+modelled``) of the energy ranges."""
    if "energy_provenance" in comparison:
        kinds = set("+".join(comparison["energy_provenance"].astype(str)).split("+"))
        kinds.discard("none")
        return "+".join(sorted(kinds)) or "none"
    if "energy_modelled" in comparison:
        return "modelled" if comparison["energy_modelled"].astype(bool).any() else "measured"
    return "measured"
