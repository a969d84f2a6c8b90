"""Operating points: one row per configuration, engine, mapping, clock and batch.

An *operating point* is one (board, model, device, backend, cores, threads, freq_khz, batch,
groups): a configuration k on an engine (``eager`` PyTorch or ``onnxruntime``) under a task
mapping, a clock and a batch size. ``latency_s`` and ``energy_j`` are per inference (one
forward pass of ``batch`` inputs), as the profiler writes them. An empty ``freq_khz`` (NaN
here) means the clocks were left as they were.

>>> import pandas as pd
>>> from dyndnn.analysis import join_tables
>>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 1, 2, 2],
...                         "latency_s": [0.0020, 0.0024, 0.0040, 0.0041],
...                         "energy_j": [0.006, 0.007, 0.012, 0.012], "power_w": 3.0})
>>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88],
...                            "val_accuracy": [0.79, 0.87], "confidence_norm": [0.9, 1.0],
...                            "macs": [100, 200], "param_bytes": [40, 80]})
>>> points = operating_points(join_tables(evaluation, profile))   # two repeats per point
>>> points[["mapping", "groups", "repeats", "latency_s", "latency_s_min", "accuracy"]]
    mapping  groups  repeats  latency_s  latency_s_min  accuracy
0  cpu[0]x1       1        2    0.00220          0.002      0.80
1  cpu[0]x1       2        2    0.00405          0.004      0.88
>>> select(points, board="vm", batch=1, backend="eager")["groups"].tolist()
[1, 2]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.analysis.pareto import mark_pareto
from dyndnn.analysis.tidy import (
    DEFAULT_BACKEND,
    EVAL_KEEP,
    METRICS,
    POINT_KEYS,
    PROVENANCE_COLUMNS,
    _as_bool,
    distinct_joined,
    freq_label,
    tidy_profile,
    with_provenance,
)

OP_COLUMNS = [
    *POINT_KEYS, "mapping", "freq_label", "repeats",
    *(f"{m}{s}" for m in METRICS for s in ("", "_min", "_max", "_iqr")),
    "latency_per_image_s", *EVAL_KEEP, "meter", *PROVENANCE_COLUMNS, "pareto_latency_s",
    "pareto_energy_j",
]  # fmt: skip


def _iqr(values: pd.Series) -> float:
    return float(values.quantile(0.75) - values.quantile(0.25))


def operating_points(joined: pd.DataFrame) -> pd.DataFrame:
    """One row per operating point: median, min, max and IQR of latency, energy and power.

    ``joined`` is ``join_tables``' output (a bare ``profile.csv`` works too, without accuracy).
    ``energy_provenance`` is the repeats' (``a+b`` where they mix), ``energy_source`` their
    sources, ``energy_note`` the reason energy is NaN where it is. Pareto flags are per (board,
    batch, model, backend): ``pareto_latency_s`` and ``pareto_energy_j``.

    >>> import pandas as pd
    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 8, "groups": 1,
    ...                         "latency_s": [0.010, 0.012, 0.020], "energy_j": 0.05,
    ...                         "power_w": 4.0, "meter": "modelled-cpu", "modelled": True})
    >>> operating_points(profile)[["repeats", "latency_s", "latency_per_image_s",
    ...                            "energy_provenance", "accuracy"]]
       repeats  latency_s  latency_per_image_s energy_provenance  accuracy
    0        3      0.012               0.0015          modelled       NaN
    """
    frame = joined if "mapping" in joined else tidy_profile(joined)
    frame = frame.copy()
    for col in EVAL_KEEP:
        if col not in frame:
            frame[col] = np.nan
    # NaN freq_khz ("clocks as set") is a key value of its own: dropna=False keeps those points
    grouped = frame.groupby(POINT_KEYS, dropna=False, sort=True)
    agg: dict[str, Any] = {"mapping": ("mapping", "first"), "freq_label": ("freq_label", "first"),
                           "repeats": ("latency_s", "size")}
    for m in METRICS:
        agg[m] = (m, "median")
        agg[f"{m}_min"] = (m, "min")
        agg[f"{m}_max"] = (m, "max")
        agg[f"{m}_iqr"] = (m, _iqr)
    for col in EVAL_KEEP:
        agg[col] = (col, "first")
    for col in ("meter", "energy_provenance", "energy_source"):
        agg[col] = (col, distinct_joined)
    agg["energy_note"] = ("energy_note", lambda s: next((v for v in s if v), ""))
    points = grouped.agg(**agg).reset_index()
    points["latency_per_image_s"] = points["latency_s"] / points["batch"]
    points = mark_pareto(points)
    return points[OP_COLUMNS]


def point_label(point: pd.Series | dict[str, Any], board: bool = True) -> str:
    """A point in words: ``vm: m k=2 on cpu[0]x1 (onnxruntime), clocks as set, batch 1``.

    The backend is named where the point has one (a hand-made table may not).

    >>> point_label({"board": "xu3", "model": "m", "groups": 2, "mapping": "cpu[4-7]x4",
    ...              "backend": "onnxruntime", "freq_label": "1400 MHz", "batch": 1})
    'xu3: m k=2 on cpu[4-7]x4 (onnxruntime), 1400 MHz, batch 1'
    """
    engine = f" ({point['backend']})" if point.get("backend") is not None else ""
    text = (f"{point['model']} k={int(point['groups'])} on {point['mapping']}{engine}, "
            f"{point['freq_label']}, batch {int(point['batch'])}")
    return f"{point['board']}: {text}" if board else text


def select(points: pd.DataFrame, board: str | None = None, mapping: str | None = None,
           batch: int | None = None, freq_label: str | None = None,
           model: str | None = None, backend: str | None = None) -> pd.DataFrame:
    """The points of one board / mapping / batch / clock / model / backend; None keeps all.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"board": ["vm", "vm", "xu3"], "batch": [1, 64, 1],
    ...                        "backend": "onnxruntime", "groups": 1})
    >>> select(points, board="vm", batch=1, backend="onnxruntime").index.tolist()
    [0]
    """
    keep = pd.Series(True, index=points.index)
    for col, value in (("board", board), ("mapping", mapping), ("batch", batch),
                       ("freq_label", freq_label), ("model", model), ("backend", backend)):
        if value is not None:
            keep &= points[col] == value
    return points[keep]


def read_operating_points(path: str | Path) -> pd.DataFrame:
    """``operating_points.csv`` read back with the dtypes ``operating_points`` gave it.

    A CSV alone would read cores ``"0"`` back as the number 0 and the flags as text:

    >>> import pandas as pd, tempfile
    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": 1,
    ...                         "latency_s": 0.002, "energy_j": 0.006, "power_w": 3.0},
    ...                        index=[0])
    >>> path = f"{tempfile.mkdtemp()}/operating_points.csv"
    >>> operating_points(profile).to_csv(path, index=False)
    >>> points = read_operating_points(path)
    >>> points.loc[0, "cores"], points.loc[0, "freq_label"], points["pareto_energy_j"].dtype
    ('0', 'clocks as set', dtype('bool'))
    """
    points = pd.read_csv(path, dtype={"cores": str, "board": str, "model": str, "meter": str,
                                      "backend": str, "energy_note": str})
    if "backend" not in points:  # written before the backend column: eager PyTorch
        points.insert(points.columns.get_loc("device") + 1, "backend", DEFAULT_BACKEND)
    points["freq_khz"] = pd.to_numeric(points["freq_khz"], errors="coerce").astype(float)
    points["freq_label"] = [freq_label(f) for f in points["freq_khz"]]
    for col in ("pareto_latency_s", "pareto_energy_j"):
        points[col] = _as_bool(points[col])
    if "latency_per_image_s" not in points:
        points["latency_per_image_s"] = points["latency_s"] / points["batch"]
    return with_provenance(points)
