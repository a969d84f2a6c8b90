"""Stage 04: operating points, dynamic ranges, Pareto fronts, memory, the baselines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.analysis import (
    REFERENCE,
    compare_models,
    comparison_headline,
    dynamic_ranges,
    memory_footprint,
    pareto_front,
    read_operating_points,
    select,
    write_summary,
)
from dyndnn.analysis.board_profiles import merge_board_profiles
from dyndnn.config import Config
from dyndnn.record.layout import RunLayout, resolve_run_dir
from dyndnn.views.plots import (
    plot_comparison,
    plot_dynamic_ranges,
    plot_operating_points,
    save_figure,
)

KEYS: tuple[str, ...] = ("board_profiles",)  # the rest comes from eval.csv and profile.csv
POINT_COLUMNS = ["board", "model", "backend", "batch", "mapping", "freq_label", "groups",
                 "accuracy", "val_accuracy", "latency_s", "latency_per_image_s", "latency_s_iqr",
                 "energy_j", "power_w", "energy_provenance", "energy_source", "repeats",
                 "pareto_latency_s", "pareto_energy_j"]
PARETO_COLUMNS = ["board", "batch", "model", "backend", "mapping", "freq_label", "groups",
                  "accuracy", "energy_j", "latency_s"]


@dataclass
class AnalyseResult:
    """Every table and figure of the analysis (``summary`` is ``summary.json``)."""

    summary: dict[str, Any]
    points: pd.DataFrame
    evaluation: pd.DataFrame
    ranges: pd.DataFrame
    headline: pd.DataFrame | None
    figures: dict[str, plt.Figure] = field(default_factory=dict)
    recorded: dict[str, Any] = field(default_factory=dict)  # into the manifest's stage entry

    def report(self) -> str:
        """What was measured, the energy's provenance and every dynamic range."""
        s = self.summary
        lines = [f"{s['points']} operating points; models "
                 f"{sorted(self.points['model'].unique())}, boards {s['boards']}, backends "
                 f"{s['backends']}, batches {s['batches']}, mappings {s['mappings']}, clocks "
                 f"{s['frequencies']}", str(s["energy"])]
        # measured ranges first; modelled or simulated ones apart, under their own heading:
        # with no sensor an energy range is a function of latency and threads, no finding
        measured = self.ranges["provenance"] == "measured"
        for heading, part in (("measured ranges", self.ranges[measured]),
                              ("NOT measured (modelled or simulated) ranges",
                               self.ranges[~measured])):
            if part.empty:
                continue
            lines.append(f"-- {heading}:")
            for r in part.itertuples():
                quantity = "time" if r.metric == "latency_s" else "energy"
                lines.append(f"{r.model}, {r.board}, {r.backend}, batch {r.batch}, {r.level}: "
                             f"{quantity} range {r.range:.2f}x ({r.provenance}: {r.source})"
                             f"  [{r.smallest} .. {r.largest}]")
        for model, numbers in s["accuracy"].items():
            lines.append(f"{model}: MAC ratio of the largest to the smallest configuration "
                         f"{numbers['mac_ratio']:.2f}x")
        return "\n".join(lines)

    def comparison_report(self) -> str:
        """The group model against each baseline, per backend (the paper's Table 2 terms)."""
        if self.headline is None:
            return "only the group model was run: list baselines in model.models to compare"
        return "\n".join(
            f"{REFERENCE} against {r.model} on {r.backend}, median over {r.contexts} contexts: "
            f"time range {r.time_x_median:.2f}x (IQR {r.time_x_q25:.2f}-{r.time_x_q75:.2f}x, "
            f"up to {r.time_x_max:.2f}x at {r.time_x_max_at}), energy range "
            f"{r.energy_x_median:.2f}x ({r.energy_provenance}), memory {r.memory_x:.2f}x"
            for r in self.headline.itertuples())

    def point_table(self) -> pd.DataFrame:
        """The operating points, the columns a reader compares."""
        return self.points[POINT_COLUMNS]

    def range_table(self) -> pd.DataFrame:
        """Dynamic ranges (max / min, so "x"): level x (quantity and provenance, backend).

        A column is named for what it holds: ``latency range (x, measured)``, ``energy range
        (x, modelled)`` where no sensor measured it.
        """
        ranges = self.ranges.assign(quantity=[_range_column(m, p) for m, p in zip(
            self.ranges["metric"], self.ranges.get("provenance", pd.Series(
                "", index=self.ranges.index)), strict=True)])
        return ranges.pivot_table(index=["model", "board", "batch", "level"],
                                  columns=["quantity", "backend"], values="range").round(2)

    def memory(self) -> pd.DataFrame:
        """Each model as built against one separate model per configuration."""
        return memory_footprint(self.evaluation)

    def pareto_energy(self) -> pd.DataFrame:
        """Accuracy against energy: the Pareto points per board, batch, model and backend."""
        return pareto_front(self.points, x="energy_j")[PARETO_COLUMNS]


def analyse(cfg: Config, layout: RunLayout | str) -> AnalyseResult:
    """Join ``eval.csv`` with ``profile.csv``; ``operating_points.csv``, ``summary.json``.

    ``layout``: an evaluated and profiled run folder (``resolve_run_dir``: the notebooks'
    absent default is the newest run folder).
    """
    layout = resolve_run_dir(layout)
    with layout.lock():
        merged = merge_board_profiles(layout, list(cfg.profile.board_profiles))
        summary = write_summary(layout)
        points = read_operating_points(layout.operating_points_csv)
        evaluation = pd.read_csv(layout.eval_csv)
        ranges = dynamic_ranges(points)
        figures = {"operating_points": plot_operating_points(select(points, model=REFERENCE)),
                   "dynamic_ranges": plot_dynamic_ranges(ranges[ranges["model"] == REFERENCE])}
        headline = None
        if "comparison" in summary:
            comparison = compare_models(evaluation, points)
            headline = comparison_headline(comparison)
            figures["comparison"] = plot_comparison(comparison, evaluation)
        for name, figure in figures.items():
            save_figure(figure, layout, name)
    return AnalyseResult(summary, points, evaluation, ranges, headline, figures,
                         {"board_profiles": merged} if merged else {})


def _range_column(metric: str, provenance: str) -> str:
    """``latency_s`` -> ``latency range (x, measured)``; energy says how it was obtained.

    >>> _range_column("energy_j", "modelled"), _range_column("latency_s", "")
    ('energy range (x, modelled)', 'latency range (x, measured)')
    """
    name = metric.removesuffix("_s").removesuffix("_j")
    return f"{name} range (x, {provenance or 'measured'})"
