"""Dynamic ranges: max/min of latency and energy over what a running model can change.

Three levels, each wider than the last: ``pruning`` (over k at one mapping, clock and batch),
``pruning+mapping`` (also over mappings) and ``pruning+mapping+dvfs`` (also over clocks).
Batches and backends are never mixed.

>>> import pandas as pd
>>> from dyndnn.analysis import operating_points
>>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "freq_khz": None,
...                         "batch": 1, "cores": ["0", "0", "0-1", "0-1"],
...                         "threads": [1, 1, 2, 2], "groups": [1, 2, 1, 2],
...                         "latency_s": [0.002, 0.004, 0.0012, 0.0022],
...                         "energy_j": [0.006, 0.012, 0.005, 0.009], "power_w": 3.0})
>>> ranges = dynamic_ranges(operating_points(profile))   # a bare profile: no accuracy needed
>>> print(ranges.query("metric == 'latency_s'")[["level", "context", "range"]].round(2)
...       .to_string(index=False))
          level                 context  range
        pruning cpu[0]x1, clocks as set   2.00
pruning+mapping           clocks as set   3.33

(no ``pruning+mapping+dvfs`` row: one clock only, so DVFS added nothing to measure)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from dyndnn.analysis.points import point_label
from dyndnn.analysis.tidy import MAPPING_KEYS, distinct_joined

# Each level fixes these columns and takes max/min over everything else of its (board, batch);
# an engine is never mixed with another: each backend's ranges stand side by side
RANGE_LEVELS = {
    "pruning": ["board", "model", "backend", "batch", *MAPPING_KEYS, "freq_khz"],
    "pruning+mapping": ["board", "model", "backend", "batch", "freq_khz"],
    "pruning+mapping+dvfs": ["board", "model", "backend", "batch"],
}


def _context(row: pd.Series, level: str) -> str:
    if level == "pruning":
        return f"{row['mapping']}, {row['freq_label']}"
    if level == "pruning+mapping":
        return row["freq_label"]
    return "all mappings and clocks"


def _provenance(part: pd.DataFrame, metric: str) -> dict[str, str]:
    """Where a range's numbers come from: latency from a clock, energy and power as measured."""
    if metric == "latency_s":
        return {"provenance": "measured", "source": "clock (time.perf_counter)"}
    return {"provenance": distinct_joined(part["energy_provenance"]),
            "source": distinct_joined(part["energy_source"])}


def dynamic_range_table(points: pd.DataFrame,
                        metrics: Sequence[str] = ("latency_s", "energy_j")) -> pd.DataFrame:
    """Max/min of each metric for every fixed context of every level.

    Levels: ``pruning`` (over k at one mapping, clock and batch), ``pruning+mapping`` (over k
    and mappings at one clock and batch) and ``pruning+mapping+dvfs`` (over k, mappings and
    clocks at one batch). Batches are never mixed: a latency per inference of 64 images is no
    operating point of a batch-1 service; nor are backends: every level is per engine.
    ``largest``/``smallest`` name the two end points; ``provenance`` and ``source`` say where
    its numbers come from (an energy range with no sensor is ``modelled``: a function of
    latency and threads, not a second finding). Points with no energy (NaN) give no row.

    >>> import pandas as pd
    >>> from dyndnn.analysis import operating_points
    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "freq_khz": None,
    ...                         "batch": 1, "cores": ["0", "0", "0-1", "0-1"],
    ...                         "threads": [1, 1, 2, 2], "groups": [1, 2, 1, 2],
    ...                         "latency_s": [0.002, 0.004, 0.0012, 0.0022],
    ...                         "energy_j": [0.006, 0.012, 0.005, 0.009], "power_w": 3.0,
    ...                         "meter": "modelled-cpu", "modelled": True})
    >>> table = dynamic_range_table(operating_points(profile))
    >>> print(table.query("level == 'pruning' and metric == 'latency_s'")
    ...       [["context", "range", "smallest"]].round(2).to_string(index=False))
                      context  range                                            smallest
      cpu[0]x1, clocks as set   2.00   m k=1 on cpu[0]x1 (eager), clocks as set, batch 1
    cpu[0-1]x2, clocks as set   1.83 m k=1 on cpu[0-1]x2 (eager), clocks as set, batch 1
    >>> sorted(set(zip(table["metric"], table["provenance"])))
    [('energy_j', 'modelled'), ('latency_s', 'measured')]
    """
    rows = []
    for level, keys in RANGE_LEVELS.items():
        for _, part in points.groupby(keys, dropna=False, sort=True):
            first = part.iloc[0]
            for metric in metrics:
                values = part[metric]
                if values.notna().sum() == 0:
                    continue
                hi, lo = part.loc[values.idxmax()], part.loc[values.idxmin()]
                rows.append({
                    "board": first["board"], "model": first["model"],
                    "backend": first["backend"], "batch": int(first["batch"]),
                    "level": level, "metric": metric,
                    "context": _context(first, level), "points": int(values.notna().sum()),
                    "max": float(hi[metric]), "min": float(lo[metric]),
                    "range": float(hi[metric] / lo[metric]) if lo[metric] > 0 else math.inf,
                    "largest": point_label(hi, board=False),
                    "smallest": point_label(lo, board=False),
                    **_provenance(part, metric),
                })  # fmt: skip
    return pd.DataFrame(rows)


def dynamic_ranges(points: pd.DataFrame,
                   metrics: Sequence[str] = ("latency_s", "energy_j")) -> pd.DataFrame:
    """The widest range of each (board, model, backend, batch, level, metric): the headlines.

    For ``pruning`` this is the best fixed mapping and clock (where pruning alone buys most).
    Each backend's rows follow one another, so the engines' ranges read side by side. A board
    whose clocks were not swept has no ``pruning+mapping+dvfs`` row: it would repeat
    ``pruning+mapping`` under a name that claims DVFS.

    >>> import pandas as pd
    >>> from dyndnn.analysis import operating_points
    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "freq_khz": None,
    ...                         "batch": 1, "cores": ["0", "0", "0-1", "0-1"],
    ...                         "threads": [1, 1, 2, 2], "groups": [1, 2, 1, 2],
    ...                         "latency_s": [0.002, 0.004, 0.0012, 0.0022],
    ...                         "energy_j": [0.006, 0.012, 0.005, 0.009], "power_w": 3.0})
    >>> ranges = dynamic_ranges(operating_points(profile))
    >>> ranges.pivot_table("range", ["backend", "batch", "level"], "metric").round(2)
    metric                         energy_j  latency_s
    backend batch level
    eager   1     pruning               2.0       2.00
                  pruning+mapping       2.4       3.33
    """
    table = dynamic_range_table(points, metrics)
    if table.empty:
        return table
    clocks = points.groupby("board")["freq_label"].nunique(dropna=False)
    unswept = set(clocks[clocks <= 1].index)
    table = table[~(table["board"].isin(unswept) & (table["level"] == "pruning+mapping+dvfs"))]
    keys = ["board", "model", "backend", "batch", "level", "metric"]
    best = table.loc[table.groupby(keys, sort=False)["range"].idxmax()]
    order = {level: i for i, level in enumerate(RANGE_LEVELS)}
    best = best.assign(_order=best["level"].map(order))
    return best.sort_values(["board", "model", "batch", "metric", "_order", "backend"]).drop(
        columns="_order").reset_index(drop=True)
