"""A run folder's ``eval.csv``: every trained model scored, with its switch costs.

Each from its final checkpoint (slow: the timings)::

    evaluate_run("outputs/run", ["group", "tann"], dataset, groups=4)
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from dyndnn.config import BACKENDS
from dyndnn.data import InMemoryDataset
from dyndnn.evaluation.accuracy import evaluate_configurations
from dyndnn.evaluation.switch_cost import switch_costs
from dyndnn.record.atomic import write_csv
from dyndnn.record.checkpoint import load_final_model
from dyndnn.record.layout import RunLayout


def evaluate_run(run_dir: str | Path | RunLayout, models: list[str], dataset: InMemoryDataset,
                 groups: int,
                 batch_size: int = 500, backends: tuple[str, ...] = BACKENDS) -> pd.DataFrame:
    """Evaluate every trained model of a run; writes and returns ``eval.csv``.

    Each model's final checkpoint is loaded (``load_final_model``: checked against ``groups``
    and the family), every configuration scored
    (``evaluate_configurations``) and its switch costs measured (``switch_costs``: columns
    ``assign_s``, ``switch_<backend>_s``, ``load_s``; with onnxruntime also
    ``server_weight_bytes``, the weights its server holds for all configurations).
    """
    layout = RunLayout.of(run_dir)
    tables = []
    for name in models:
        model = load_final_model(layout, name, groups)
        table = evaluate_configurations(model, dataset, name, batch_size)
        costs = switch_costs(model, layout.switch_dir, backends=tuple(backends))
        tables.append(table.merge(costs.drop(columns="model"), on="groups"))
    table = pd.concat(tables, ignore_index=True)
    write_csv(table, layout.eval_csv)
    return table
