"""Figures of the RCT comparison: accuracy curves, bitwidth trajectories, memory and energy.

>>> fig = plot_comparison(result.table, result.history, result.trajectory)
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns


def plot_comparison(table: pd.DataFrame, history: pd.DataFrame,
                    trajectory: pd.DataFrame) -> plt.Figure:
    """Four panels for fp32 / QAT / RCT.

    Test accuracy per epoch, RCT bits per layer over steps, measured memory, *modelled* energy.
    """
    fig, axes = plt.subplots(1, 4, figsize=(18, 3.8))
    sns.lineplot(history, x="epoch", y="test_accuracy", hue="method", marker="o", ax=axes[0])
    axes[0].set(title="test accuracy", ylabel="top-1")
    if not trajectory.empty:
        sns.lineplot(trajectory, x="step", y="bits", hue="layer", drawstyle="steps-post",
                     ax=axes[1], palette="viridis")
        axes[1].legend(fontsize=6, title="layer", title_fontsize=7)
    axes[1].set(title="RCT weight bits per layer", ylabel="bits")
    memory = table.melt(id_vars="method", value_vars=["param_bytes", "optimizer_bytes"],
                        var_name="kind", value_name="bytes")
    sns.barplot(memory, x="method", y="bytes", hue="kind", ax=axes[2])
    axes[2].set(title="memory held in training (measured)", ylabel="bytes")
    energy = table.melt(id_vars="method", value_vars=["gemm_energy_j", "movement_energy_j"],
                        var_name="kind", value_name="joules")
    sns.barplot(energy, x="method", y="joules", hue="kind", ax=axes[3])
    axes[3].set(title="training energy (MODELLED, 45 nm table)", ylabel="J", yscale="log")
    fig.tight_layout()
    return fig
