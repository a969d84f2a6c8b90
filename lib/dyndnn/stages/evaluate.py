"""Stage 02: every configuration of every trained family; ``eval.csv`` and the bundle."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd

from dyndnn.config import Config
from dyndnn.data import load_dataset
from dyndnn.evaluation import evaluate_run
from dyndnn.record.checkpoint import load_final_model
from dyndnn.record.layout import GROUP_MODEL, RunLayout, resolve_run_dir
from dyndnn.serve.export import export_deployment
from dyndnn.serve.optional_engines import installed_backends
from dyndnn.stages.common import trained_config
from dyndnn.views.plots import plot_configurations, save_figure

# the notebook's keys; G, the families, the data set and its split (train_limit, val_fraction)
# come from the run (stages.common.RECORDED_KEYS)
KEYS = ("data_root", "test_limit", "active_groups", "eval_batch_size", "backends")


@dataclass
class EvaluateResult:
    """``eval.csv``'s table, the deployment bundle's check, and the figure."""

    table: pd.DataFrame
    export: dict[str, Any]
    figure: plt.Figure
    backends: tuple[str, ...]

    def report(self) -> str:
        """Per family: accuracy range, MAC range, serving bytes, switch costs; the export."""
        lines = []
        for name, part in self.table.groupby("model", sort=False):
            first, full = part.iloc[0], part.iloc[-1]
            switch = ", ".join(f"{b} {1e6 * part[f'switch_{b}_s'].median():.1f} us"
                               for b in self.backends)
            load = (f", load {1e3 * part.load_s.median():.1f} ms"
                    if part.load_s.notna().any() else "")
            lines.append(
                f"{name}: accuracy k=1 {first.accuracy:.4f}, k=G {full.accuracy:.4f} "
                f"({100 * (full.accuracy - first.accuracy):+.2f} points); MAC range "
                f"{full.macs / first.macs:.2f}x; {full.serving_bytes:,} bytes serve all "
                f"configurations; switch {switch}{load}")
        done = self.export
        lines.append(f"bundle {done['bundle']}: max |onnxruntime - library| per configuration "
                     + str({k: f"{d:.1e}" for k, d in done["max_diff_onnxruntime"].items()}))
        lines.append(f"TorchScript {done['torchscript'].name}: max |difference| "
                     f"{done['max_diff_torchscript']:.1e}")
        for engine, what in (("executorch", "ExecuTorch program"), ("litert", "LiteRT model")):
            if engine in done:
                lines.append(f"{what} {done[engine]}: max |{engine} - library| per "
                             "configuration " + str(
                                 {k: f"{d:.1e}" for k, d in done[f"max_diff_{engine}"].items()}))
        return "\n".join(lines)


def evaluate(cfg: Config, layout: RunLayout | str) -> EvaluateResult:
    """Score, time the switches, export the group model's deployment bundle; ``eval.csv``.

    ``layout``: a trained run folder (``resolve_run_dir``: the notebooks' absent default is the
    newest run folder). G, the families and the data set are the run's (``trained_config``).
    """
    layout = resolve_run_dir(layout)
    with layout.lock():
        cfg = trained_config(layout, cfg)
        groups = cfg.model.groups
        backends = installed_backends(cfg.profile.backends)  # a missing engine: one line
        models = [load_final_model(layout, name, groups) for name in cfg.model.models]
        del models  # every checkpoint checked before the first is evaluated
        ds = load_dataset(cfg.data.dataset, cfg.data.data_root, cfg.data.train_limit,
                          cfg.data.test_limit, val_fraction=cfg.data.val_fraction)
        table = evaluate_run(layout, list(cfg.model.models), ds, groups,
                             cfg.eval.eval_batch_size, backends)
        figure = plot_configurations(table)
        save_figure(figure, layout, "configurations")
        group = table[table["model"] == GROUP_MODEL]
        accuracy = dict(zip(group.groups, group.accuracy, strict=True))
        model = load_final_model(layout, GROUP_MODEL, groups)
        export = export_deployment(model, layout.export_dir, cfg.model.active_groups or None,
                                   accuracy)
        if "executorch" in backends:  # a run that measures ExecuTorch ships its .pte
            from dyndnn.serve.executorch_bundle import BUNDLE_FOLDER, check_program, write_program

            export["executorch"] = write_program(model, layout.export_dir / BUNDLE_FOLDER,
                                                 accuracy)
            export["max_diff_executorch"] = check_program(export["executorch"], model)
        if "litert" in backends:  # and one that measures LiteRT its .tflite
            from dyndnn.serve.litert_bundle import BUNDLE_FOLDER as LITERT_FOLDER
            from dyndnn.serve.litert_bundle import check_litert, write_litert

            export["litert"] = write_litert(model, layout.export_dir / LITERT_FOLDER, accuracy)
            export["max_diff_litert"] = check_litert(export["litert"], model)
    return EvaluateResult(table, export, figure, backends)
