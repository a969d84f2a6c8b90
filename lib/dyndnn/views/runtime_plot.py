"""The runtime experiment at a glance: latency against the budget, the k served, the load.

One panel per policy (rows) for one scenario and backend: each window's median latency
(dots, red where over the budget), the budget (dashed), the configuration served (a step
line on the right axis) and the time a co-runner ran (shaded). And the trade-off the
policies reach: miss rate against the accuracy served, one marker per policy.

>>> import pandas as pd
>>> windows = pd.DataFrame({"scenario": "hog", "backend": "eager", "round": 1,
...     "policy": ["static_full"] * 2 + ["manager"] * 2, "t_s": [0.0, 1.0] * 2,
...     "k": [4, 4, 4, 2], "latency_s": [1e-3, 2e-3, 1e-3, 1.1e-3], "budget_s": 1.5e-3,
...     "load": ["calm", "cpu_hog on 1"] * 2})
>>> fig = plot_runtime_trace(windows, "hog", "eager")
>>> [ax.get_title(loc="left") for ax in fig.axes if ax.get_title(loc="left")]
['static_full: 1 of 2 windows over the budget', 'manager: 0 of 2 windows over the budget']
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.views.axes import set_unit_axis


def plot_runtime_trace(windows: pd.DataFrame, scenario: str, backend: str,
                       round_: int = 1) -> plt.Figure:
    """Latency and k over time for every policy of one scenario, backend and round."""
    part = windows[(windows["scenario"] == scenario) & (windows["backend"] == backend) &
                   (windows["round"] == round_)]
    policies = list(dict.fromkeys(part["policy"]))
    fig, axes = plt.subplots(len(policies), 1, figsize=(9.5, 1.6 * len(policies) + 1.2),
                             sharex=True, squeeze=False, layout="constrained")
    shapes = dict(zip(dict.fromkeys(part["mapping"]) if "mapping" in part else ["-"],
                      "os^Dv<>", strict=False))
    for ax, policy in zip(axes[:, 0], policies, strict=True):
        mine = part[part["policy"] == policy].sort_values("t_s")
        for start, end in _loaded_spans(mine):
            ax.axvspan(start, end, color="0.88", lw=0)
        over = mine["latency_s"] > mine["budget_s"]
        mappings = mine["mapping"] if "mapping" in mine else pd.Series("-", index=mine.index)
        for mapping, marker in shapes.items():
            at = mappings == mapping
            if at.any():
                ax.scatter(mine.loc[at, "t_s"], mine.loc[at, "latency_s"], s=12, marker=marker,
                           c=["tab:red" if o else "tab:blue" for o in over[at]], zorder=3,
                           label=mapping)
        ax.axhline(float(mine["budget_s"].iloc[0]), color="tab:red", ls="--", lw=1)
        ax.set_yscale("log")
        unit = set_unit_axis(ax.yaxis, [*mine["latency_s"], mine["budget_s"].iloc[0]], "s")
        ax.set_ylabel(f"latency [{unit}]")
        ax.set_title(f"{policy}: {int(over.sum())} of {len(mine)} windows over the budget",
                     fontsize=9, loc="left")
        right = ax.twinx()
        right.step(mine["t_s"], mine["k"], where="post", color="tab:green", lw=1.2)
        right.set_ylim(0.5, max(part["k"]) + 0.5)
        right.set_yticks(sorted(set(part["k"])))
        right.set_ylabel("k", color="tab:green")
    if len(shapes) > 1:
        handles = [plt.Line2D([], [], ls="none", marker=m, color="0.3", label=name)
                   for name, m in shapes.items()]
        fig.legend(handles=handles, title="mapping (marker)", loc="outside right upper",
                   fontsize=8, title_fontsize=8)
    axes[-1, 0].set_xlabel("time since the scenario started [s] (grey: a co-runner runs)")
    fig.suptitle(f"Runtime policies under '{scenario}' on {backend} (round {round_})\nmedian "
                 "latency per window, measured by a clock (red: over the budget, dashed); "
                 "k served in green", fontsize=10)
    return fig


def _loaded_spans(mine: pd.DataFrame) -> list[tuple[float, float]]:
    """Contiguous stretches of windows with a co-runner, from a window's start to the next's.

    >>> _loaded_spans(pd.DataFrame({"t_s": [0.0, 1.0, 2.0, 3.0],
    ...                             "load": ["calm", "hog", "hog", "calm"]}))
    [(1.0, 3.0)]
    """
    times = mine["t_s"].tolist()
    step = float(pd.Series(times).diff().median()) if len(times) > 1 else 0.2
    spans: list[tuple[float, float]] = []
    for i, (t, load) in enumerate(zip(times, mine["load"], strict=True)):
        if load == "calm":
            continue
        end = times[i + 1] if i + 1 < len(times) else t + step
        if spans and abs(spans[-1][1] - t) < 1e-9:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((t, end))
    return spans


def plot_runtime_tradeoff(summary: pd.DataFrame) -> plt.Figure:
    """Miss rate against the accuracy served, per policy; a panel per (scenario, backend)."""
    groups = list(summary.groupby(["scenario", "backend"], sort=False))
    cols = min(3, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 3.0 * rows), squeeze=False,
                             layout="constrained")
    markers = dict(zip(dict.fromkeys(summary["policy"]), "os^DvPX*", strict=False))
    for ax, ((scenario, backend), part) in zip(axes.ravel(), groups, strict=False):
        for row in part.itertuples():
            ax.scatter(100 * row.miss_rate, 100 * row.accuracy_served, s=40,
                       marker=markers.get(row.policy, "o"), label=row.policy)
        ax.set(title=f"{scenario}, {backend}", xlabel="inferences over budget [%]",
               ylabel="accuracy served [%] (validation)")
        ax.title.set_fontsize(9)
    for ax in axes.ravel()[len(groups):]:
        ax.set_visible(False)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8)
    fig.suptitle("What each policy trades: misses against accuracy (oracle: offline bound)",
                 fontsize=10)
    return fig
