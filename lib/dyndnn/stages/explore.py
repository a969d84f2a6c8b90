"""Stage 05: choose an operating point for a budget; the runtime manager, simulated and live."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import torch

from dyndnn.analysis import read_operating_points, select, write_summary
from dyndnn.config import Config
from dyndnn.record.checkpoint import load_final_model
from dyndnn.record.layout import GROUP_MODEL, RunLayout, resolve_run_dir
from dyndnn.runtime import candidates, choose, live_demo, simulate, synthetic_trace
from dyndnn.runtime.budgets import eng_text
from dyndnn.runtime.timing import switch_cost_text
from dyndnn.serve.engines import engine
from dyndnn.stages.common import trained_config
from dyndnn.views.plots import plot_manager_trace, save_figure

# the notebook's keys; G comes from the run (stages.common.RECORDED_KEYS)
KEYS = ("manager_batch", "live_demo_s")
SWITCH_COLUMNS = ["t_s", "previous_groups", "groups", "direction", "cause", "switch_cost_s",
                  "assign_s"]


@dataclass
class ExploreResult:
    """The group model's operating points and what the runtime manager did with them."""

    points: pd.DataFrame
    evaluation: pd.DataFrame
    impossible: Any  # the choice for an impossible budget: names the closest point
    simulation: pd.DataFrame
    simulation_context: str
    demo: Any | None  # dyndnn.runtime live demo result, None when skipped
    figures: dict[str, plt.Figure] = field(default_factory=dict)

    def explorer(self) -> Any:
        """The interactive explorer over the points (sliders need ipywidgets)."""
        from dyndnn.views.explorer import Explorer

        return Explorer(self.points)

    def switches(self) -> pd.DataFrame:
        """The simulated manager's switches."""
        return self.simulation.loc[self.simulation["switched"], SWITCH_COLUMNS]

    def switches_view(self) -> Any:
        """The switches for a notebook: every cause whole, each cost in words (a pandas Styler).

        A cost at or below the noise floor of a steady inference says so instead of showing a
        bare, often negative, number; ``cause`` wraps instead of being cut before its unit.
        """
        return readable_switches(self.simulation.loc[self.simulation["switched"]])

    def report(self) -> str:
        """The simulation's and the live demo's switches."""
        log = self.simulation
        lines = [f"{self.simulation_context}: {int(log['switched'].sum())} switches in "
                 f"{len(log)} steps"]
        if self.demo is None:
            lines.append("live demo skipped (explore.live_demo_s is 0)")
        else:
            d = self.demo
            lines.append(
                f"live: latency budget {d.budget_latency_s * 1e3:.3g} ms per batch; "
                f"{len(d.switches)} switches; first inference after a switch minus a steady "
                f"one: {'; '.join(_costs(d.switches)) or 'none'}; set_active_groups "
                f"{(d.switches['assign_s'] * 1e6).round(1).tolist()} us")
        return "\n".join(lines)


def _costs(switches: pd.DataFrame) -> list[str]:
    noise = switches.get("switch_noise_s", pd.Series(math.nan, index=switches.index))
    return [switch_cost_text(c, n) for c, n in zip(switches["switch_cost_s"], noise,
                                                   strict=True)]


def readable_switches(switches: pd.DataFrame) -> Any:
    """``switches`` with ``switch_cost`` in words and ``cause`` wrapped whole (a Styler).

    >>> log = pd.DataFrame({"t_s": [5.0], "previous_groups": [4], "groups": [1],
    ...                     "direction": ["down"], "cause": ["latency 6.39 ms is 2.69 ms (73%) "
    ...                     "over the 3.71 ms budget"], "switch_cost_s": [-2e-6],
    ...                     "switch_noise_s": [1e-5], "assign_s": [3e-6]})
    >>> styled = readable_switches(log)
    >>> styled.data["switch_cost"].tolist()
    ['below the noise floor (measured -2 µs; steady inferences spread 10 µs)']
    >>> "3.71 ms budget" in styled.to_html()       # not cut before its unit
    True
    """
    table = switches.assign(switch_cost=_costs(switches))
    columns = [c for c in (*SWITCH_COLUMNS[:5], "switch_cost", "assign_s") if c in table]
    return (table[columns].reset_index(drop=True).style
            .format({"t_s": "{:.1f}", "assign_s": lambda v: eng_text(v, "s")
                     if math.isfinite(v) else "not measured"})
            .set_properties(subset=["cause"], **{"white-space": "normal", "min-width": "26em",
                                                 "text-align": "left"}))


def explore(cfg: Config, layout: RunLayout | str) -> ExploreResult:
    """Operating points of the group model, an impossible budget, the manager simulated/live.

    ``layout``: a trained, evaluated and profiled run folder (``resolve_run_dir``); G is the
    run's (``trained_config``).
    """
    layout = resolve_run_dir(layout)
    with layout.lock():
        cfg = trained_config(layout, cfg)
        model = load_final_model(layout, GROUP_MODEL, cfg.model.groups)
        if not layout.operating_points_csv.is_file():
            write_summary(layout)  # 04_analyse has not run on this folder: make the table
        points = select(read_operating_points(layout.operating_points_csv), model=GROUP_MODEL)
        evaluation = pd.read_csv(layout.eval_csv)
        evaluation = evaluation[evaluation["model"] == GROUP_MODEL]
        smallest = select(points, batch=int(points["batch"].min()))
        impossible = choose(smallest, latency_s=smallest["latency_s"].min() / 2,
                            min_accuracy=1.0)
        log, context = _simulate(points, model, cfg.explore.manager_batch)
        figures = {"runtime_simulation": plot_manager_trace(
            log, "Runtime manager, synthetic trace")}
        demo = None
        if cfg.explore.live_demo_s > 0:
            seconds = cfg.explore.live_demo_s
            accuracy = dict(zip(evaluation["groups"], evaluation["accuracy"], strict=True))
            demo = live_demo(model, accuracy, duration_s=seconds,
                             load_s=(0.3 * seconds, 0.65 * seconds))
            figures["runtime_live"] = plot_manager_trace(demo.log,
                                                         "Runtime manager, live with a CPU load")
        for name, figure in figures.items():
            save_figure(figure, layout, name)
    return ExploreResult(points, evaluation, impossible, log, context, demo, figures)


def _simulate(points: pd.DataFrame, model: Any, batch: int) -> tuple[pd.DataFrame, str]:
    """The manager on a synthetic trace at the fastest point's backend, mapping and clock.

    The model is switched for real on that backend (eager: the model; onnxruntime: a
    ``Server`` over it), so the switch costs are measured on a probe input.
    """
    batch = batch or int(points["batch"].max())
    at_batch = select(points, batch=batch, model=GROUP_MODEL)
    if at_batch.empty:
        raise ValueError(f"explore.manager_batch={batch} was not profiled; profiled batches: "
                         f"{sorted(points['batch'].unique().tolist())}")
    fastest = at_batch.loc[at_batch["latency_s"].idxmin()]
    backend = fastest["backend"]
    table = candidates(at_batch, mapping=fastest["mapping"], batch=batch, board=fastest["board"],
                       freq_label=fastest["freq_label"], backend=backend)
    served = engine(model, backend, threads=int(fastest["threads"]))  # torch in, torch out
    spec = model.spec
    x = torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size)  # the probe
    log = simulate(table, synthetic_trace(table), served, x=x)
    return log, (f"{fastest['board']}, {fastest['mapping']} ({backend}), "
                 f"{fastest['freq_label']}, batch {batch}")
