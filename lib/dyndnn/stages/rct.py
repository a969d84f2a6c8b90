"""Stage 06: RCT against QAT and fp32; the dynamic model's last group retrained under RCT."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.config import Config
from dyndnn.data import load_dataset
from dyndnn.layout import RunLayout, resolve_run_dir
from dyndnn.plots import save_figure
from dyndnn.rct import add_group_under_rct, compare_methods
from dyndnn.rct.controller import RctSettings
from dyndnn.rct.energy import MODEL as ENERGY_MODEL
from dyndnn.rct.figures import plot_comparison
from dyndnn.stages.common import check_record, trained_config
from dyndnn.train import setup_torch, stored_architecture

KEYS = ("dataset", "data_root", "test_limit", "val_fraction", "batch_size", "augment", "groups",
        "epochs_per_stage", "optimizer", "lr", "momentum", "weight_decay", "schedule", "seed",
        "threads", "rct_width", "rct_epochs", "rct_train_limit", "bits_init", "bits_min",
        "bits_max", "t_min", "t_max", "gavg_interval", "rounding", "act_bits", "err_bits",
        "tile_rows")
# the paper's claims, as RCT's ratios against fp32 and QAT
GOALS = {"state_bytes_vs_fp32": "<= 0.40", "state_bytes_vs_qat": "<= 0.25",
         "param_bytes_vs_fp32": "<= 0.54", "param_bytes_vs_qat": "<= 0.50",
         "gemm_energy_vs_fp32": "<= 0.14", "movement_energy_vs_qat": "about 0.5",
         "accuracy_minus_fp32": ">= -0.01"}


@dataclass
class RctResult:
    """``rct.csv`` and friends, the ratios against the paper's goals, the added group."""

    comparison: Any  # dyndnn.rct.compare.Comparison
    group: pd.DataFrame
    group_summary: dict[str, Any]
    figure: plt.Figure

    @property
    def table(self) -> pd.DataFrame:
        """fp32, QAT and RCT side by side (``rct.csv``)."""
        return self.comparison.table

    def goals(self) -> pd.DataFrame:
        """Each ratio beside the paper's goal for it."""
        return pd.DataFrame([{"ratio": name, "measured": round(value, 4), "goal": GOALS[name]}
                             for name, value in self.comparison.ratios().items()])

    def report(self) -> str:
        """Provenance of each column kind, and the whole state's headline ratios."""
        ratios = self.comparison.ratios()
        return (f"RCT's whole training state is {ratios['state_bytes_vs_fp32']:.0%} of fp32's "
                f"and {ratios['state_bytes_vs_qat']:.0%} of QAT's (parameters alone: "
                f"{ratios['param_bytes_vs_fp32']:.0%} of fp32's). Bytes are ACCOUNTED (tensor "
                "sizes); peak_rss_growth_bytes is MEASURED (the process's peak resident memory "
                "growth while training, activations included); energies are MODELLED "
                f"({ENERGY_MODEL}); accuracy is the test split's, read once after training.")


def rct(cfg: Config, layout: RunLayout | str) -> RctResult:
    """Train fp32, QAT and RCT alike; retrain group G under RCT; ``rct*.csv``.

    ``layout``: a trained run folder (``resolve_run_dir``). RCT trains, so its training keys
    are the notebook's, and must agree with the run's record (``check_record``).
    """
    layout = resolve_run_dir(layout)
    with layout.lock():
        check_record(layout, cfg, KEYS)
        architecture = trained_config(layout, cfg).model.architecture  # the run's network
        setup_torch(cfg.run.seed, cfg.run.threads)
        settings = RctSettings.from_section(cfg.rct)
        ds = load_dataset(cfg.data.dataset, cfg.data.data_root, cfg.rct.rct_train_limit,
                          cfg.data.test_limit, val_fraction=cfg.data.val_fraction)
        comparison = compare_methods(ds, replace(cfg.train, epochs_per_stage=cfg.rct.rct_epochs),
                                     settings, cfg.rct.rct_width, cfg.data.batch_size,
                                     cfg.run.seed, cfg.data.augment,
                                     architecture=stored_architecture(architecture))
        comparison.write(layout)
        figure = plot_comparison(comparison.table, comparison.history, comparison.trajectory)
        save_figure(figure, layout, "rct_comparison")
        group, summary = add_group_under_rct(layout, cfg.model.groups, ds, cfg.train, settings,
                                             cfg.data.batch_size, cfg.run.seed,
                                             cfg.data.augment)
    return RctResult(comparison, group, summary, figure)
