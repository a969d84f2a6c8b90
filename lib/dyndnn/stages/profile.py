"""Stage 03: every configuration x mapping x clock x batch x engine on this board."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.board import discover, plan_mappings, profile_sweep
from dyndnn.config import Config
from dyndnn.record.checkpoint import load_final_model, load_model
from dyndnn.record.layout import RunLayout, resolve_run_dir
from dyndnn.serve.optional_engines import installed_backends
from dyndnn.stages.common import trained_config
from dyndnn.views.plots import energy_note, plot_latency, save_figure

# the notebook's keys; G and the families come from the run (stages.common.RECORDED_KEYS)
KEYS = ("mappings", "frequencies_khz", "profile_batches", "repeats", "warmup", "window_s",
        "meter", "board", "backends")
POINT = ["model", "device", "backend", "cores", "threads", "freq_khz", "batch", "groups"]


@dataclass
class ProfileResult:
    """The platform found, the mappings run, and ``profile.csv``'s rows."""

    platform: pd.DataFrame
    mappings: list[str]
    profile: pd.DataFrame
    figure: plt.Figure

    def medians(self) -> pd.DataFrame:
        """Median latency, energy and power per operating point (over its repeats)."""
        return self.profile.groupby(POINT, dropna=False, sort=False)[
            ["latency_s", "energy_j", "power_w"]].median()

    def report(self) -> str:
        """The mappings and how the energy was obtained (measured or modelled)."""
        return f"mappings: {self.mappings}\n{energy_note(self.profile)}"


def profile(cfg: Config, layout: RunLayout | str, progress: bool = True) -> ProfileResult:
    """Measure each family's final checkpoint; appends to (and resumes) ``profile.csv``.

    ``layout``: a trained run folder (``resolve_run_dir``: the notebooks' absent default is the
    newest run folder). G and the families are the run's (``trained_config``).
    """
    layout = resolve_run_dir(layout)
    with layout.lock():
        cfg = trained_config(layout, cfg)
        section, groups = cfg.profile, cfg.model.groups
        models = {name: load_final_model(layout, name, groups) for name in cfg.model.models}
        platform = discover()
        plan = plan_mappings(list(section.mappings), platform)
        spec = models[cfg.model.models[0]].spec  # every family reads the same input
        # one worker per mapping measures every family, one after another (never two at
        # once on a core); a worker's start (a process, torch's import) costs seconds
        factories = {name: partial(load_model, str(layout.final_checkpoint(name, groups)))
                     for name in models}
        table = profile_sweep(
            factories, (spec.in_channels, spec.image_size, spec.image_size),
            list(range(1, groups + 1)), plan, list(section.frequencies_khz) or [None],
            list(section.profile_batches), layout.profile_csv, warmup=section.warmup,
            repeats=section.repeats, meter=section.meter, board=section.board or None,
            min_window_s=section.window_s, progress=progress,
            backends=list(installed_backends(section.backends)))  # a missing engine: one line
        figure = plot_latency(table)
        save_figure(figure, layout, "latency_per_configuration")
    return ProfileResult(platform.summary(), [m.label for m in plan], table, figure)
