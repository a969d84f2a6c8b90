"""Figures of the RCT comparison: accuracy curves, bitwidth trajectories, memory and energy.

On ``compare_methods``' tables (a ``Comparison``); here small ones made by hand:

>>> import pandas as pd
>>> table = pd.DataFrame({"method": ["fp32", "qat", "rct"], "param_bytes": [4000, 4000, 1000],
...                       "optimizer_bytes": [4000, 4000, 0], "gemm_energy_j": [2.0, 2.0, 0.5],
...                       "movement_energy_j": [1.0, 1.0, 0.3]})
>>> history = pd.DataFrame({"method": ["fp32", "qat", "rct"] * 2, "epoch": [1, 1, 1, 2, 2, 2],
...                         "val_accuracy": [0.60, 0.58, 0.55, 0.70, 0.69, 0.66]})
>>> trajectory = pd.DataFrame({"step": [0, 50, 100], "layer": "conv0", "bits": [8, 9, 9]})
>>> fig = plot_comparison(table, history, trajectory)
>>> [ax.get_title() for ax in fig.axes][1:]
['RCT weight bits per layer', 'training memory: accounted state, measured peak',
 'training energy (MODELLED, 45 nm table)']
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

MEMORY_LABELS = {"param_bytes": "parameters (accounted)",
                 "optimizer_bytes": "optimiser state (accounted)",
                 "grad_bytes": "gradients' peak (accounted)",
                 "peak_rss_growth_bytes": "process peak growth (measured)"}


def plot_comparison(table: pd.DataFrame, history: pd.DataFrame,
                    trajectory: pd.DataFrame) -> plt.Figure:
    """Four panels for fp32 / QAT / RCT.

    Validation accuracy per epoch, RCT bits per layer over steps, the whole training state
    (*accounted*: parameters, optimiser state, gradients' peak) beside the process's *measured*
    peak memory growth, *modelled* energy.
    """
    import seaborn as sns  # here: it imports scipy.stats, 0.6 s a process (docs/processes.md)

    fig, axes = plt.subplots(2, 2, figsize=(10, 7.5))
    axes = axes.flatten()
    sns.lineplot(history, x="epoch", y="val_accuracy", hue="method", marker="o", ax=axes[0])
    axes[0].set(title="validation accuracy per epoch", ylabel="top-1")
    if not trajectory.empty:
        sns.lineplot(trajectory, x="step", y="bits", hue="layer", drawstyle="steps-post",
                     ax=axes[1], palette="viridis")
        axes[1].legend(fontsize=6, title="layer", title_fontsize=7)
    axes[1].set(title="RCT weight bits per layer", ylabel="bits")
    kinds = [c for c in ("param_bytes", "optimizer_bytes", "grad_bytes", "peak_rss_growth_bytes")
             if c in table]
    memory = table.melt(id_vars="method", value_vars=kinds, var_name="kind", value_name="bytes")
    memory["kind"] = memory["kind"].map(MEMORY_LABELS)
    sns.barplot(memory, x="method", y="bytes", hue="kind", ax=axes[2])
    axes[2].set(title="training memory: accounted state, measured peak", ylabel="bytes",
                yscale="log")
    axes[2].legend(fontsize=7)
    energy = table.melt(id_vars="method", value_vars=["gemm_energy_j", "movement_energy_j"],
                        var_name="kind", value_name="joules")
    sns.barplot(energy, x="method", y="joules", hue="kind", ax=axes[3])
    axes[3].set(title="training energy (MODELLED, 45 nm table)", ylabel="J", yscale="log")
    fig.tight_layout()
    return fig
