"""The comparison with the baselines (the paper's 2.73x time, 2.36x energy, 2.4x memory).

Every model's dynamic ranges and memory next to the reference's (the group model), at the same
board, backend, batch, mapping and clock, and per baseline and backend the widest advantage.

>>> import pandas as pd
>>> from dyndnn.analysis import operating_points
>>> models = ["group"] * 2 + ["tann"] * 2   # the reference and a baseline, k = 1, 2
>>> profile = pd.DataFrame({"board": "vm", "model": models, "device": "cpu", "cores": "0",
...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2, 1, 2],
...                         "latency_s": [0.001, 0.004, 0.002, 0.004],
...                         "energy_j": [0.003, 0.012, 0.006, 0.012], "power_w": 3.0})
>>> evaluation = pd.DataFrame({"model": models, "groups": [1, 2, 1, 2],
...                            "accuracy": [0.80, 0.88, 0.79, 0.88],
...                            "macs": [100, 200, 100, 200], "param_bytes": [40, 80, 40, 100]})
>>> comparison = compare_models(evaluation, operating_points(profile))
>>> comparison_headline(comparison)[["model", "backend", "time_x_median", "memory_x"]]
  model backend  time_x_median  memory_x
0  tann   eager            2.0      1.25
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.analysis.errors import AnalysisError
from dyndnn.analysis.memory import memory_footprint
from dyndnn.analysis.tidy import distinct_joined

REFERENCE = "group"
# the paper's claims against existing dynamic DNNs (Xun et al. 2019): up to 2.73x wider time
# range, 2.36x wider energy range, 2.4x smaller memory at the same compression rate
PAPER_ADVANTAGE = {"time": 2.73, "energy": 2.36, "memory": 2.4}
COMPRESSION_TOLERANCE = 0.02  # |rate - reference rate| still called "the same compression rate"
# per backend: a conclusion drawn on eager PyTorch need not hold on the deployed engine
COMPARE_KEYS = ["board", "backend", "batch", "mapping", "freq_label"]


def compare_models(evaluation: pd.DataFrame, points: pd.DataFrame,
                   reference: str = REFERENCE) -> pd.DataFrame:
    """Every model's dynamic ranges and memory next to the reference's, at the same context.

    One row per (board, backend, batch, mapping, clock, model) where the reference was measured
    too (on the same backend):
    ``time_range`` and ``energy_range`` are max/min over the model's configurations there
    (measured ``operating_points`` rows, pruning alone), ``serving_bytes`` what serving all its
    configurations holds, ``compression_rate`` its smallest configuration's MACs over its
    full one's. ``*_vs_reference``: how much wider the reference's range is
    (reference / model) and how much more memory the model needs (model / reference): the
    paper's "x wider dynamic range, x smaller memory footprint at the same compression rate".
    ``latency_min_vs_reference`` / ``latency_max_vs_reference``: the model's fastest and
    slowest configuration over the reference's (a range widened by a slow full configuration
    is no gain).

    >>> import pandas as pd
    >>> from dyndnn.analysis import operating_points
    >>> models = ["group"] * 2 + ["tann"] * 2   # the reference and a baseline, k = 1, 2
    >>> profile = pd.DataFrame({"board": "vm", "model": models, "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2, 1, 2],
    ...                         "latency_s": [0.001, 0.004, 0.002, 0.004],
    ...                         "energy_j": [0.003, 0.012, 0.006, 0.012], "power_w": 3.0})
    >>> evaluation = pd.DataFrame({"model": models, "groups": [1, 2, 1, 2],
    ...                            "accuracy": [0.80, 0.88, 0.79, 0.88],
    ...                            "macs": [100, 200, 100, 200], "param_bytes": [40, 80, 40, 100]})
    >>> comparison = compare_models(evaluation, operating_points(profile))
    >>> comparison[["model", "time_range", "time_range_vs_reference", "memory_vs_reference"]]
               model  time_range  time_range_vs_reference  memory_vs_reference
    0  group         4.0                      1.0                 1.00
    1           tann         2.0                      2.0                 1.25
    """
    if reference not in set(points["model"]):
        raise AnalysisError(f"no operating point of the reference model {reference!r}; "
                            f"models measured: {sorted(points['model'].unique())}")
    per_model = memory_footprint(evaluation).set_index("model")
    macs = evaluation.groupby("model")["macs"]
    rate = (macs.min() / macs.max()).rename("compression_rate")
    accuracy = evaluation.groupby("model")["accuracy"].agg(["min", "max"])
    rows = []
    for context, part in points.groupby(COMPARE_KEYS, sort=True):
        for model, mine in part.groupby("model", sort=True):
            if mine["groups"].nunique() < 2 or model not in per_model.index:
                continue
            row = dict(zip(COMPARE_KEYS, context, strict=True))
            lowest_t, lowest_e = mine["latency_s"].min(), mine["energy_j"].min()
            row.update({
                "model": model, "configurations": int(mine["groups"].nunique()),
                "compression_rate": float(rate[model]),
                "accuracy_min": float(accuracy.loc[model, "min"]),
                "accuracy_max": float(accuracy.loc[model, "max"]),
                "latency_min_s": float(mine["latency_s"].min()),
                "latency_max_s": float(mine["latency_s"].max()),
                "time_range": float(mine["latency_s"].max() / lowest_t)
                if lowest_t > 0 else math.nan,
                "energy_range": float(mine["energy_j"].max() / lowest_e)
                if lowest_e > 0 else math.nan,
                "energy_provenance": distinct_joined(mine["energy_provenance"]),
                "serving_bytes": int(per_model.loc[model, "dynamic_bytes"]),
            })  # fmt: skip
            rows.append(row)
    table = pd.DataFrame(rows)
    if table.empty:
        raise AnalysisError("no context (board, backend, batch, mapping, clock) has two or "
                            "more configurations of a model measured; profile more of them")
    ref = table[table["model"] == reference].set_index(COMPARE_KEYS)
    joined = table.merge(ref[["time_range", "energy_range", "serving_bytes", "compression_rate",
                              "latency_min_s", "latency_max_s"]], how="left",
                         left_on=COMPARE_KEYS, right_index=True, suffixes=("", "_reference"))
    joined = joined.dropna(subset=["time_range_reference"])
    joined["time_range_vs_reference"] = joined["time_range_reference"] / joined["time_range"]
    joined["energy_range_vs_reference"] = (joined["energy_range_reference"]
                                           / joined["energy_range"])
    joined["memory_vs_reference"] = joined["serving_bytes"] / joined["serving_bytes_reference"]
    # a range can widen because the full configuration is slow: the end points say which
    for end in ("min", "max"):
        joined[f"latency_{end}_vs_reference"] = (joined[f"latency_{end}_s"]
                                                 / joined[f"latency_{end}_s_reference"])
    # whole channels can only approximate the reference's MAC fractions: say where they miss
    joined["same_compression_rate"] = (
        (joined["compression_rate"] - joined["compression_rate_reference"]).abs()
        <= COMPRESSION_TOLERANCE)
    return joined.drop(columns=["time_range_reference", "energy_range_reference",
                                "serving_bytes_reference", "latency_min_s_reference",
                                "latency_max_s_reference"]).reset_index(drop=True)


def comparison_headline(comparison: pd.DataFrame, reference: str = REFERENCE) -> pd.DataFrame:
    """Per baseline and backend, the paper's three numbers: the reference's advantage.

    Led by the median over the measured contexts (mappings, clocks, batches), with the spread
    beside it: ``time_x_median``, ``time_x_q25`` .. ``time_x_q75``, ``time_x_min``, and the
    largest value only after them, with its context (``time_x_max``, ``time_x_max_at``): a
    maximum over contexts of a ratio of noisy ratios is no headline. ``energy_x_*`` likewise,
    with its ``energy_provenance``. ``contexts`` counts them. ``memory_x``: bytes to serve all
    configurations, baseline / reference; ``fastest_`` / ``slowest_vs_reference_median``: its
    fastest and slowest configuration's latency over the reference's. One row per
    (baseline, backend): whether a conclusion holds on the deployed engine reads off it.

    >>> table = pd.DataFrame({"model": "tann", "backend": "eager", "board": "vm", "batch": 1,
    ...     "mapping": ["a", "b", "c"], "freq_label": "clocks as set",
    ...     "compression_rate": 0.25, "compression_rate_reference": 0.25,
    ...     "same_compression_rate": True, "time_range_vs_reference": [1.1, 1.2, 3.0],
    ...     "energy_range_vs_reference": [1.0, 1.1, 1.2], "memory_vs_reference": 2.0,
    ...     "latency_min_vs_reference": 1.0, "latency_max_vs_reference": 1.5,
    ...     "energy_provenance": "modelled"})
    >>> row = comparison_headline(table).to_dict(orient="records")[0]
    >>> row["time_x_median"], row["time_x_max"], row["time_x_max_at"], row["contexts"]
    (1.2, 3.0, 'vm, batch 1, c, clocks as set', 3)

    On a run's tables: ``comparison_headline(compare_models(evaluation, points))``.
    """
    rows = []
    baselines = comparison[comparison["model"] != reference]
    for (model, backend), part in baselines.groupby(["model", "backend"], sort=True):
        row: dict[str, Any] = {"model": model, "backend": backend,
                               "compression_rate": float(part["compression_rate"].iloc[0]),
                               "reference_compression_rate":
                                   float(part["compression_rate_reference"].iloc[0])}
        row["same_compression_rate"] = bool(part["same_compression_rate"].all())
        for metric, column in (("time", "time_range_vs_reference"),
                               ("energy", "energy_range_vs_reference")):
            valid = part[np.isfinite(part[column])]
            if valid.empty:  # no positive measurement of this quantity
                row.update({f"{metric}_x_{stat}": math.nan for stat in
                            ("median", "q25", "q75", "min", "max")})
                row[f"{metric}_x_max_at"] = ""
                continue
            values = valid[column]
            best = valid.loc[values.idxmax()]
            row.update({f"{metric}_x_median": float(values.median()),
                        f"{metric}_x_q25": float(values.quantile(0.25)),
                        f"{metric}_x_q75": float(values.quantile(0.75)),
                        f"{metric}_x_min": float(values.min()),
                        f"{metric}_x_max": float(best[column]),
                        f"{metric}_x_max_at": f"{best['board']}, batch {int(best['batch'])}, "
                                              f"{best['mapping']}, {best['freq_label']}"})
        row["contexts"] = len(part)
        row["memory_x"] = float(part["memory_vs_reference"].iloc[0])
        row["fastest_vs_reference_median"] = float(part["latency_min_vs_reference"].median())
        row["slowest_vs_reference_median"] = float(part["latency_max_vs_reference"].median())
        row["energy_provenance"] = distinct_joined(part["energy_provenance"])
        # a modelled energy is a constant power per mapping times the latency: within one
        # context its range is the time range again, not a second finding
        row["energy_follows_time"] = row["energy_provenance"] == "modelled"
        rows.append(row)
    return pd.DataFrame(rows)
