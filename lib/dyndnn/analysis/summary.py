"""The summary of a run: its headline numbers, ``summary.json`` and ``operating_points.csv``.

``write_summary`` reads a run folder's ``eval.csv`` and ``profile.csv``, computes the operating
points and writes them with the summary next to the two tables.

Usage: ``summary = write_summary("outputs/run")``; ``write_summary`` shows it on a run
folder of its own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.analysis.comparison import (
    PAPER_ADVANTAGE,
    REFERENCE,
    compare_models,
    comparison_headline,
)
from dyndnn.analysis.errors import AnalysisError
from dyndnn.analysis.memory import memory_footprint
from dyndnn.analysis.points import operating_points, point_label
from dyndnn.analysis.ranges import dynamic_ranges
from dyndnn.analysis.tidy import (
    EVAL_REQUIRED,
    PROFILE_REQUIRED,
    join_tables,
    read_table,
    with_provenance,
)
from dyndnn.record.atomic import write_csv, write_text
from dyndnn.record.layout import RunLayout


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN/inf; null reads as "not available"
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [_jsonable(r) for r in frame.to_dict(orient="records")]


def energy_note(table: pd.DataFrame) -> str:
    """How the energy of ``table`` was obtained, in words, per provenance with its sources.

    >>> energy_note(pd.DataFrame({"energy_provenance": ["modelled", "none"],
    ...                           "energy_source": ["CPU power model", "none"],
    ...                           "energy_note": ["", "no GPU power sensor for cuda:0"]}))
    'energy MODELLED by CPU power model; energy NOT RECORDED (no GPU power sensor for cuda:0)'
    """
    table = with_provenance(table) if "energy_provenance" not in table else table
    parts = []
    for provenance, part in table.groupby("energy_provenance", sort=True):
        sources = ", ".join(sorted(part["energy_source"].astype(str).unique()))
        if provenance == "none":
            notes = "; ".join(sorted({n for n in part["energy_note"].astype(str) if n}))
            parts.append(f"energy NOT RECORDED ({notes or 'no sensor'})")
        elif provenance == "measured":
            parts.append(f"energy measured by {sources}")
        else:
            parts.append(f"energy {str(provenance).upper()} by {sources}")
    return "; ".join(parts)


def summarise(evaluation: pd.DataFrame, points: pd.DataFrame) -> dict[str, Any]:
    """The headline numbers of a run as a plain dict (what ``summary.json`` holds).

    ``backends`` lists the engines; ``dynamic_range`` and ``comparison`` records name their
    ``backend``; Pareto fronts are keyed ``board/backend/batch n``.

    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2],
    ...                         "latency_s": [0.002, 0.004], "energy_j": [0.006, 0.012],
    ...                         "power_w": 3.0})
    >>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88],
    ...                            "val_accuracy": [0.79, 0.87], "confidence_norm": [0.9, 1.0],
    ...                            "macs": [100, 200], "param_bytes": [40, 80]})
    >>> summary = summarise(evaluation, operating_points(join_tables(evaluation, profile)))
    >>> summary["accuracy"]["m"]["per_configuration"], summary["accuracy"]["m"]["mac_ratio"]
    ({'1': 0.8, '2': 0.88}, 2.0)
    >>> {key: summary["dynamic_range"][0][key] for key in ("level", "metric", "range")}
    {'level': 'pruning', 'metric': 'energy_j', 'range': 2.0}
    >>> summary["pareto"]["vm/eager/batch 1"]["latency_s"][0]
    'm k=1 on cpu[0]x1 (eager), clocks as set, batch 1'
    """
    accuracy = {}
    for model, part in evaluation.sort_values("groups").groupby("model"):
        accuracy[model] = {
            "per_configuration": {int(k): float(a) for k, a in zip(part["groups"],
                                                                    part["accuracy"],
                                                                    strict=True)},
            "range_points": float(100 * (part["accuracy"].max() - part["accuracy"].min())),
            "mac_ratio": float(part["macs"].max() / part["macs"].min()),
        }
    fronts: dict[str, dict[str, list[str]]] = {}
    for (board, backend, batch), part in points.groupby(["board", "backend", "batch"]):
        fronts[f"{board}/{backend}/batch {batch}"] = {
            metric: [point_label(r, board=False) for _, r in
                     part[part[f"pareto_{metric}"]].sort_values(metric).iterrows()]
            for metric in ("latency_s", "energy_j")}
    return _jsonable({
        "points": len(points),
        "boards": sorted(points["board"].unique()),
        "backends": sorted(points["backend"].unique()),
        "batches": sorted(int(b) for b in points["batch"].unique()),
        "mappings": sorted(points["mapping"].unique()),
        "frequencies": sorted(points["freq_label"].unique()),
        "energy": energy_note(points),
        "energy_provenance": sorted(points["energy_provenance"].astype(str).unique()),
        "accuracy": accuracy,
        "dynamic_range": _records(dynamic_ranges(points)),
        "pareto": fronts,
        "memory": _records(memory_footprint(evaluation)),
        **_comparison(evaluation, points),
    })


def _comparison(evaluation: pd.DataFrame, points: pd.DataFrame) -> dict[str, Any]:
    """The baseline comparison for ``summary.json``; empty when only one model was run."""
    if points["model"].nunique() < 2 or REFERENCE not in set(points["model"]):
        return {}
    try:
        comparison = compare_models(evaluation, points)
    except AnalysisError as exc:  # the rest of the summary stands without it
        return {"comparison_note": str(exc)}
    return {"comparison": _records(comparison_headline(comparison)),
            "comparison_contexts": _records(comparison), "paper_advantage": PAPER_ADVANTAGE}



def load_run(run_dir: str | Path | RunLayout) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(eval table, operating points)`` of a run folder, computed from its two CSVs.

    >>> import tempfile
    >>> run = RunLayout(tempfile.mkdtemp())        # a run folder with its two tables
    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2],
    ...                         "latency_s": [0.002, 0.004], "energy_j": [0.006, 0.012],
    ...                         "power_w": 3.0})
    >>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88],
    ...                            "val_accuracy": [0.79, 0.87], "confidence_norm": [0.9, 1.0],
    ...                            "macs": [100, 200], "param_bytes": [40, 80]})
    >>> profile.to_csv(run.profile_csv, index=False)
    >>> evaluation.to_csv(run.eval_csv, index=False)
    >>> evaluation, points = load_run(run)
    >>> points[["mapping", "groups", "latency_s", "accuracy"]]
        mapping  groups  latency_s  accuracy
    0  cpu[0]x1       1      0.002      0.80
    1  cpu[0]x1       2      0.004      0.88
    >>> load_run(tempfile.mkdtemp())                # not a run folder, or not evaluated yet
    Traceback (most recent call last):
    dyndnn.analysis.errors.AnalysisError: .../eval.csv does not exist; run notebook 02_evaluate ...
    """
    layout = RunLayout.of(run_dir)
    evaluation = read_table(layout.eval_csv, EVAL_REQUIRED,
                            "run notebook 02_evaluate on this run folder (again)")
    profile = read_table(layout.profile_csv, PROFILE_REQUIRED,
                         "run notebook 03_profile on this run folder (again)")
    if profile.empty:
        raise AnalysisError(f"{layout.profile_csv} has no rows; the profile sweep measured "
                            "nothing (rerun notebook 03_profile)")
    try:
        return evaluation, operating_points(join_tables(evaluation, profile))
    except (ValueError, TypeError) as exc:  # a value no table dyndnn wrote holds
        raise AnalysisError(f"{layout.eval_csv} and {layout.profile_csv} hold a value that "
                            f"cannot be analysed ({type(exc).__name__}: {str(exc)[:200]}); "
                            "rerun notebooks 02_evaluate and 03_profile") from None


def write_summary(run_dir: str | Path | RunLayout) -> dict[str, Any]:
    """Write ``operating_points.csv`` and ``summary.json`` in the run folder; return the summary.

    >>> import tempfile
    >>> run = RunLayout(tempfile.mkdtemp())        # a run folder with its two tables
    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2],
    ...                         "latency_s": [0.002, 0.004], "energy_j": [0.006, 0.012],
    ...                         "power_w": 3.0})
    >>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88],
    ...                            "val_accuracy": [0.79, 0.87], "confidence_norm": [0.9, 1.0],
    ...                            "macs": [100, 200], "param_bytes": [40, 80]})
    >>> profile.to_csv(run.profile_csv, index=False)
    >>> evaluation.to_csv(run.eval_csv, index=False)
    >>> summary = write_summary(run)
    >>> run.operating_points_csv.is_file(), run.summary_json.is_file(), summary["points"]
    (True, True, 2)
    >>> [(r["level"], r["metric"], round(r["range"], 1)) for r in summary["dynamic_range"]][:3]
    [('pruning', 'energy_j', 2.0), ('pruning+mapping', 'energy_j', 2.0),
     ('pruning', 'latency_s', 2.0)]
    """
    layout = RunLayout.of(run_dir)
    evaluation, points = load_run(layout)  # every input read and checked ...
    summary = {"run_dir": str(layout.root.resolve()), **summarise(evaluation, points)}
    # allow_nan=False: a stray NaN would make the file unreadable by strict JSON parsers
    text = json.dumps(summary, indent=2, allow_nan=False) + "\n"
    write_csv(points, layout.operating_points_csv)  # ... before any output is written
    write_text(layout.summary_json, text)
    return summary
