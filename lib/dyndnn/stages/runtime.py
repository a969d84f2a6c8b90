"""Stage 07: the runtime manager against the alternatives, under real contention.

Writes ``runtime.csv`` (one row per inference window), ``runtime_summary.csv`` (per scenario,
backend and policy, with the offline oracle) and ``runtime_calibration.csv``, and draws
``runtime_<scenario>_<backend>`` (latency against the budget over time, a panel per policy)
and ``runtime_tradeoff`` (miss rate against accuracy served).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.analysis import read_operating_points, write_summary
from dyndnn.config import Config
from dyndnn.errors import DyndnnError
from dyndnn.record.atomic import write_csv
from dyndnn.record.layout import GROUP_MODEL, RunLayout, resolve_run_dir
from dyndnn.runtime.experiment import host_mappings, run_experiment, validation_accuracy
from dyndnn.runtime.outcomes import any_cores, summarise
from dyndnn.runtime.scenarios import scenario as make_scenario
from dyndnn.serve.optional_engines import installed_backends
from dyndnn.stages.common import trained_config
from dyndnn.views.plots import save_figure
from dyndnn.views.runtime_plot import plot_runtime_trace, plot_runtime_tradeoff

KEYS = ("runtime_backends", "runtime_scenarios", "runtime_duration_s", "runtime_window_s",
        "runtime_rounds", "runtime_budget_factor")
SHOWN = ["scenario", "backend", "policy", "miss_rate", "p50_s", "p99_s", "accuracy_served",
         "switches", "probes", "energy_per_inference_j"]


@dataclass
class RuntimeResult:
    """The windows, the summary and the figures of the runtime experiment."""

    windows: pd.DataFrame
    summary: pd.DataFrame
    calibration: pd.DataFrame
    figures: dict[str, plt.Figure] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """The summary for a reader: per cent and milliseconds, energy labelled modelled."""
        shown = self.summary[SHOWN].copy()
        shown["miss_rate"] = (100 * shown["miss_rate"]).round(1)
        shown["accuracy_served"] = (100 * shown["accuracy_served"]).round(2)
        for column in ("p50_s", "p99_s"):
            shown[column] = (1e3 * shown[column]).round(3)
        shown["energy_per_inference_j"] = (1e3 * shown["energy_per_inference_j"]).round(4)
        return shown.rename(columns={
            "miss_rate": "over budget [%]", "p50_s": "p50 [ms]", "p99_s": "p99 [ms]",
            "accuracy_served": "accuracy served [%, val]",
            "energy_per_inference_j": "energy / inference [mJ, MODELLED]"})

    def report(self) -> str:
        """A line per backend: the budget, and the policy that missed least at each scenario."""
        lines = []
        for (scenario, backend), part in self.summary.groupby(["scenario", "backend"],
                                                              sort=False):
            online = part[~part["policy"].str.startswith("oracle")]
            best = online.sort_values(["miss_rate", "accuracy_served"],
                                      ascending=[True, False]).iloc[0]
            lines.append(f"{scenario}, {backend}: fewest misses {best['policy']} "
                         f"({100 * best['miss_rate']:.1f} % over budget, accuracy "
                         f"{100 * best['accuracy_served']:.2f} %)")
        return "\n".join(lines)


def _power(layout: RunLayout) -> dict[tuple[str, str, int], float]:
    """Modelled (or measured) power per (backend, mapping, k) at batch 1, from the profile."""
    if not layout.profile_csv.is_file():
        return {}
    if not layout.operating_points_csv.is_file():
        write_summary(layout)
    points = read_operating_points(layout.operating_points_csv)
    points = points[(points["model"] == GROUP_MODEL) & (points["batch"] == 1)]
    power: dict[tuple[str, str, int], float] = {}
    for r in points.itertuples():
        if not (isinstance(r.power_w, float) and math.isfinite(r.power_w)):
            continue
        power[(r.backend, r.mapping, int(r.groups))] = float(r.power_w)
        if r.energy_provenance == "modelled":  # the model counts busy cores, not which ones
            power.setdefault((r.backend, any_cores(r.mapping), int(r.groups)), float(r.power_w))
    return power


def _check_inputs(layout: RunLayout, groups: int) -> dict[int, float]:
    """Everything the experiment reads, before it starts any process; the accuracies."""
    checkpoint = layout.final_checkpoint(GROUP_MODEL, groups)
    if not checkpoint.is_file():
        raise DyndnnError(f"{checkpoint} is missing: run the train stage first")
    if not layout.eval_csv.is_file():
        raise DyndnnError(f"{layout.eval_csv} is missing: run the evaluate stage first (the "
                          "policies rank configurations by their validation accuracy)")
    return validation_accuracy(layout)


def runtime(cfg: Config, layout: RunLayout | str, progress: bool = True) -> RuntimeResult:
    """Run every policy on every scenario and backend; write the tables and figures."""
    layout = resolve_run_dir(layout)
    with layout.lock():
        cfg = trained_config(layout, cfg)
        groups, section = cfg.model.groups, cfg.runtime
        accuracy = _check_inputs(layout, groups)
        cores = tuple(sorted({c for m in host_mappings() for c in m.cores}))
        for name in section.runtime_scenarios:  # a bad scenario file: refused now
            make_scenario(name, section.runtime_duration_s, cores, cfg.run.seed)
        say = print if progress else (lambda _: None)
        windows, calibration, bounds = run_experiment(
            layout, groups, accuracy,
            backends=installed_backends(section.runtime_backends),  # a missing one: one line
            scenarios=section.runtime_scenarios, duration_s=section.runtime_duration_s,
            window_s=section.runtime_window_s, rounds=section.runtime_rounds,
            budget_factor=section.runtime_budget_factor, seed=cfg.run.seed, say=say)
        summary = summarise(windows, accuracy, bounds, _power(layout))
        write_csv(windows, layout.runtime_csv)
        write_csv(summary, layout.runtime_summary_csv)
        write_csv(calibration, layout.runtime_calibration_csv)
        figures = {f"runtime_{s}_{b}": plot_runtime_trace(windows, s, b)
                   for s, b in windows[["scenario", "backend"]].drop_duplicates()
                   .itertuples(index=False)}
        figures["runtime_tradeoff"] = plot_runtime_tradeoff(summary)
        for name, figure in figures.items():
            save_figure(figure, layout, name)
    return RuntimeResult(windows, summary, calibration, figures)
