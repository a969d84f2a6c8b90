"""Trade-off analysis on the tidy tables: operating points, dynamic ranges, Pareto fronts, memory.

Pure functions of ``eval.csv`` (one row per model and configuration) and ``profile.csv`` (one
row per measured repeat); ``write_summary`` runs them all on a run folder.

>>> points = operating_points(join_tables(evaluation, profile))
>>> dynamic_ranges(points)[["backend", "batch", "level", "metric", "range"]]
>>> pareto_front(points, x="energy_j")[["mapping", "groups", "energy_j", "accuracy"]]
>>> summary = write_summary("outputs/run")  # summary.json and operating_points.csv

An *operating point* is one (board, model, device, backend, cores, threads, freq_khz, batch,
groups): a configuration k on an engine (``eager`` PyTorch or ``onnxruntime``) under a task
mapping, a clock and a batch size. ``latency_s`` and ``energy_j`` are per inference (one
forward pass of ``batch`` inputs), as the profiler writes them. An empty ``freq_khz`` (NaN
here) means the clocks were left as they were.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.errors import DyndnnError

POINT_KEYS = ["board", "model", "device", "backend", "cores", "threads", "freq_khz", "batch",
              "groups"]
MAPPING_KEYS = ["device", "cores", "threads"]
DEFAULT_BACKEND = "eager"  # what a profile.csv without a backend column was measured with
METRICS = ["latency_s", "energy_j", "power_w"]
EVAL_KEEP = ["accuracy", "confidence_norm", "macs", "param_bytes"]
OP_COLUMNS = [
    *POINT_KEYS, "mapping", "freq_label", "repeats",
    *(f"{m}{s}" for m in METRICS for s in ("", "_min", "_max", "_iqr")),
    *EVAL_KEEP, "meter", "modelled", "pareto_latency_s", "pareto_energy_j",
]  # fmt: skip
# Each level fixes these columns and takes max/min over everything else of its (board, batch);
# an engine is never mixed with another: each backend's ranges stand side by side
RANGE_LEVELS = {
    "pruning": ["board", "model", "backend", "batch", *MAPPING_KEYS, "freq_khz"],
    "pruning+mapping": ["board", "model", "backend", "batch", "freq_khz"],
    "pruning+mapping+dvfs": ["board", "model", "backend", "batch"],
}
PARETO_BY = ("board", "batch", "model", "backend")  # the groups fronts are taken in
AS_SET = "clocks as set"


class AnalysisError(DyndnnError):
    """A run folder or table cannot be analysed; says what is missing and where it comes from."""


# ----------------------------------------------------------------------------------------------
# tidy input


def _as_bool(series: pd.Series) -> pd.Series:
    # a CSV read back gives True/False, "True"/"False" or 1/0 depending on what else is there
    return series.astype(str).str.strip().str.lower().isin(["true", "1", "1.0"])


def tidy_profile(profile: pd.DataFrame) -> pd.DataFrame:
    """``profile.csv`` with fixed dtypes and two readable columns, ``mapping`` and ``freq_label``.

    ``cores`` is a string ("0" and "0-1" alike), ``freq_khz`` a float with NaN for "clocks as
    they were", ``modelled`` a bool, ``backend`` a string ("eager" where the column or a value
    is missing: such rows come from before the profiler measured more than one engine).

    >>> tidy_profile(pd.read_csv("outputs/run/profile.csv"))["mapping"].unique()
    array(['cpu[0]x1', 'cpu[0-1]x2'], dtype=object)
    """
    missing = sorted({*POINT_KEYS, *METRICS} - {"backend"} - set(profile.columns))
    if missing:
        raise AnalysisError(f"profile table lacks column(s) {missing}; is it a profile.csv "
                            "written by dyndnn.board.profile_sweep (notebook 03_profile)?")
    out = profile.copy()
    for col in ("board", "model", "device", "cores"):
        out[col] = out[col].astype(str)
    for col in ("threads", "batch", "groups"):
        out[col] = out[col].astype(int)
    out["freq_khz"] = pd.to_numeric(out["freq_khz"], errors="coerce").astype(float)
    for col in METRICS:
        out[col] = pd.to_numeric(out[col], errors="coerce").astype(float)
    out["modelled"] = _as_bool(out["modelled"]) if "modelled" in out else False
    out["meter"] = out["meter"].astype(str) if "meter" in out else "unknown"
    # rows from before the backend column (absent, or left empty in a merged file) ran eager
    backend = out.get("backend", pd.Series(pd.NA, index=out.index)).astype("string").str.strip()
    out["backend"] = backend.replace("", pd.NA).fillna(DEFAULT_BACKEND).astype(str)
    out["mapping"] = out["device"] + "[" + out["cores"] + "]x" + out["threads"].astype(str)
    out["freq_label"] = [freq_label(f) for f in out["freq_khz"]]
    return out


def freq_label(freq_khz: float | None) -> str:
    """``"1400 MHz"``, or ``"clocks as set"`` for a missing frequency.

    >>> freq_label(1400000.0), freq_label(float("nan"))
    ('1400 MHz', 'clocks as set')
    """
    if freq_khz is None or (isinstance(freq_khz, float) and math.isnan(freq_khz)):
        return AS_SET
    return f"{float(freq_khz) / 1000:g} MHz"


def join_tables(evaluation: pd.DataFrame, profile: pd.DataFrame) -> pd.DataFrame:
    """Every profile row with its configuration's accuracy, confidence, MACs and bytes.

    Joined on (model, groups). A profile row whose configuration was not evaluated keeps NaN
    accuracy; if no row matches at all the model names disagree, which raises.

    >>> join_tables(pd.read_csv("eval.csv"), pd.read_csv("profile.csv"))  # doctest: +SKIP
    """
    prof = tidy_profile(profile)
    ev = evaluation[["model", "groups", *EVAL_KEEP]].copy()
    ev["model"], ev["groups"] = ev["model"].astype(str), ev["groups"].astype(int)
    if ev.duplicated(["model", "groups"]).any():
        raise AnalysisError("eval table has more than one row for a (model, groups) pair")
    joined = prof.drop(columns=[c for c in EVAL_KEEP if c in prof]).merge(
        ev, on=["model", "groups"], how="left")
    if len(joined) and joined["accuracy"].isna().all():
        raise AnalysisError(
            f"no profile row matches an evaluated configuration: profile models "
            f"{sorted(prof['model'].unique())}, eval models {sorted(ev['model'].unique())}")
    return joined


# ----------------------------------------------------------------------------------------------
# operating points


def _iqr(values: pd.Series) -> float:
    return float(values.quantile(0.75) - values.quantile(0.25))


def operating_points(joined: pd.DataFrame) -> pd.DataFrame:
    """One row per operating point: median, min, max and IQR of latency, energy and power.

    ``joined`` is ``join_tables``' output (a bare ``profile.csv`` works too, without accuracy).
    ``modelled`` is True where any repeat's energy was modelled. Pareto flags are per (board,
    batch, model, backend): ``pareto_latency_s`` and ``pareto_energy_j``.

    >>> points = operating_points(join_tables(evaluation, profile))  # doctest: +SKIP
    >>> points.loc[points["pareto_energy_j"], ["mapping", "groups", "energy_j"]]  # doctest: +SKIP
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
    agg["meter"] = ("meter", lambda s: "+".join(sorted(set(s.astype(str)))))
    agg["modelled"] = ("modelled", "any")
    points = grouped.agg(**agg).reset_index()
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

    >>> select(points, board="vm", batch=1, backend="onnxruntime")  # doctest: +SKIP
    """
    keep = pd.Series(True, index=points.index)
    for col, value in (("board", board), ("mapping", mapping), ("batch", batch),
                       ("freq_label", freq_label), ("model", model), ("backend", backend)):
        if value is not None:
            keep &= points[col] == value
    return points[keep]


# ----------------------------------------------------------------------------------------------
# Pareto fronts


def pareto_mask(cost: Sequence[float] | np.ndarray, gain: Sequence[float] | np.ndarray
                ) -> np.ndarray:
    """True for every point that no other point dominates (lower ``cost``, higher ``gain``).

    A point is dominated by one at most as costly and at least as good, better in one of the
    two; equal points do not dominate each other, so both stay. NaN points are never on it.

    >>> pareto_mask([1.0, 2.0, 3.0, 2.0], [0.5, 0.7, 0.6, 0.4]).tolist()
    [True, True, False, False]
    """
    c, g = np.asarray(cost, dtype=float), np.asarray(gain, dtype=float)
    valid = ~(np.isnan(c) | np.isnan(g))
    # n x n comparisons: operating-point tables have hundreds of rows, not millions
    no_worse = (c[:, None] <= c[None, :]) & (g[:, None] >= g[None, :])
    better = (c[:, None] < c[None, :]) | (g[:, None] > g[None, :])
    dominates = no_worse & better & valid[:, None] & valid[None, :]
    return valid & ~dominates.any(axis=0)


def mark_pareto(points: pd.DataFrame, metrics: Sequence[str] = ("latency_s", "energy_j"),
                by: Sequence[str] = PARETO_BY, gain: str = "accuracy") -> pd.DataFrame:
    """A copy of ``points`` with ``pareto_<metric>`` flags, fronts taken per ``by`` group.

    Per model and backend by default: a configuration of one model is never "dominated" by
    another model's, which it cannot switch to without a load (the baselines are compared in
    ``compare_models``), nor by another engine's, which a deployment does not run beside it.

    >>> mark_pareto(points)["pareto_energy_j"].sum()  # doctest: +SKIP
    """
    out = points.copy()
    for metric in metrics:
        flag = pd.Series(False, index=out.index)
        for _, part in out.groupby(list(by), dropna=False):
            flag.loc[part.index] = pareto_mask(part[metric], part[gain])
        out[f"pareto_{metric}"] = flag.astype(bool)
    return out


def pareto_front(points: pd.DataFrame, x: str = "latency_s", y: str = "accuracy",
                 by: Sequence[str] = PARETO_BY) -> pd.DataFrame:
    """The non-dominated points (``x`` low, ``y`` high) of every ``by`` group, sorted by ``x``.

    >>> pareto_front(points, x="energy_j")[["board", "batch", "groups", "energy_j"]]
    ... # doctest: +SKIP
    """
    flagged = mark_pareto(points, [x], by, y)
    front = flagged[flagged[f"pareto_{x}"]].drop(columns=[f"pareto_{x}"])
    return front.sort_values([*by, x]).reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# dynamic ranges


def _context(row: pd.Series, level: str) -> str:
    if level == "pruning":
        return f"{row['mapping']}, {row['freq_label']}"
    if level == "pruning+mapping":
        return row["freq_label"]
    return "all mappings and clocks"


def dynamic_range_table(points: pd.DataFrame,
                        metrics: Sequence[str] = ("latency_s", "energy_j")) -> pd.DataFrame:
    """Max/min of each metric for every fixed context of every level.

    Levels: ``pruning`` (over k at one mapping, clock and batch), ``pruning+mapping`` (over k
    and mappings at one clock and batch) and ``pruning+mapping+dvfs`` (over k, mappings and
    clocks at one batch). Batches are never mixed: a latency per inference of 64 images is no
    operating point of a batch-1 service; nor are backends: every level is per engine.
    ``largest``/``smallest`` name the two end points.

    >>> dynamic_range_table(points).query("level == 'pruning'")  # doctest: +SKIP
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
                    "modelled": bool(part["modelled"].any()) and metric != "latency_s",
                    "meter": "+".join(sorted(set(part["meter"].astype(str)))),
                })  # fmt: skip
    return pd.DataFrame(rows)


def dynamic_ranges(points: pd.DataFrame,
                   metrics: Sequence[str] = ("latency_s", "energy_j")) -> pd.DataFrame:
    """The widest range of each (board, model, backend, batch, level, metric): the headlines.

    For ``pruning`` this is the best fixed mapping and clock (where pruning alone buys most).
    Each backend's rows follow one another, so the engines' ranges read side by side.

    >>> dynamic_ranges(points).pivot_table("range", ["backend", "batch", "level"], "metric")
    ... # doctest: +SKIP
    """
    table = dynamic_range_table(points, metrics)
    if table.empty:
        return table
    keys = ["board", "model", "backend", "batch", "level", "metric"]
    best = table.loc[table.groupby(keys, sort=False)["range"].idxmax()]
    order = {level: i for i, level in enumerate(RANGE_LEVELS)}
    best = best.assign(_order=best["level"].map(order))
    return best.sort_values(["board", "model", "batch", "metric", "_order", "backend"]).drop(
        columns="_order").reset_index(drop=True)


# ----------------------------------------------------------------------------------------------
# memory


def memory_footprint(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Bytes to serve every configuration: each model as built vs one separate model per k.

    ``dynamic_bytes`` is what the model holds to serve all its configurations: the
    ``serving_bytes`` column where the table has it (a slimmable network's switchable BNs, the
    independent models' sum), else the largest configuration's bytes. ``separate_bytes`` is one
    copy per configuration (baseline 1 of DESIGN.md), their sum.

    >>> memory_footprint(pd.DataFrame({"model": ["m"] * 4, "groups": [1, 2, 3, 4],
    ...                                "param_bytes": [1, 2, 3, 4]}))["saving"].item()
    2.5
    """
    rows = []
    for model, part in evaluation.groupby("model", sort=True):
        part = part.sort_values("groups")
        if "serving_bytes" not in part:  # an eval.csv from before the baselines
            dynamic = int(part["param_bytes"].max())
        elif part["serving_bytes"].isna().any():
            raise AnalysisError(f"eval table lacks serving_bytes for model {model!r}; rerun "
                                "notebook 02_evaluate on this run folder")
        else:
            dynamic = int(part["serving_bytes"].max())
        separate = int(part["param_bytes"].sum())
        rows.append({"model": model, "configurations": len(part),
                     "smallest_bytes": int(part["param_bytes"].min()), "dynamic_bytes": dynamic,
                     "separate_bytes": separate, "saving": separate / dynamic})
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# the comparison with the baselines (the paper's 2.73x time, 2.36x energy, 2.4x memory)

REFERENCE = "group-alexnet"
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

    >>> compare_models(evaluation, points)[["model", "batch", "time_range_vs_reference"]]
    ... # doctest: +SKIP
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
                "energy_modelled": bool(mine["modelled"].any()),
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
    """Per baseline and backend, the paper's three numbers: the reference's widest advantage.

    ``time_x`` / ``energy_x``: the largest ``*_vs_reference`` over the measured contexts, with
    the context it was found at, and the median over contexts next to it; ``memory_x``: bytes
    to serve all configurations, baseline / reference; ``fastest_`` / ``slowest_vs_reference_
    median``: its fastest and slowest configuration's latency over the reference's. One row per
    (baseline, backend): whether a conclusion holds on the deployed engine reads off it.

    >>> comparison_headline(compare_models(evaluation, points))  # doctest: +SKIP
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
                row.update({f"{metric}_x": math.nan, f"{metric}_x_median": math.nan,
                            f"{metric}_x_at": ""})
                continue
            best = valid.loc[valid[column].idxmax()]
            row[f"{metric}_x"] = float(best[column])
            row[f"{metric}_x_median"] = float(valid[column].median())
            row[f"{metric}_x_at"] = (f"{best['board']}, batch {int(best['batch'])}, "
                                     f"{best['mapping']}, {best['freq_label']}")
        row["memory_x"] = float(part["memory_vs_reference"].iloc[0])
        row["fastest_vs_reference_median"] = float(part["latency_min_vs_reference"].median())
        row["slowest_vs_reference_median"] = float(part["latency_max_vs_reference"].median())
        row["energy_modelled"] = bool(part["energy_modelled"].any())
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------------------------
# summary of a run


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
    """How the energy of ``table`` was obtained, in words: 'modelled' or the meters used."""
    modelled = _as_bool(table["modelled"])
    if modelled.all():
        return "energy MODELLED (no power sensor; see dyndnn.board.modelled)"
    if modelled.any():
        return "energy partly MODELLED (see the meter column)"
    return "energy measured by " + ", ".join(sorted(table["meter"].astype(str).unique()))


def summarise(evaluation: pd.DataFrame, points: pd.DataFrame) -> dict[str, Any]:
    """The headline numbers of a run as a plain dict (what ``summary.json`` holds).

    ``backends`` lists the engines; ``dynamic_range`` and ``comparison`` records name their
    ``backend``; Pareto fronts are keyed ``board/backend/batch n``.

    >>> summarise(evaluation, points)["dynamic_range"][0]  # doctest: +SKIP
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
        "energy_modelled": bool(points["modelled"].all()),
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
            "comparison_contexts": _records(comparison)}


def read_operating_points(path: str | Path) -> pd.DataFrame:
    """``operating_points.csv`` read back with the dtypes ``operating_points`` gave it.

    >>> points = read_operating_points("outputs/run/operating_points.csv")  # doctest: +SKIP
    """
    points = pd.read_csv(path, dtype={"cores": str, "board": str, "model": str, "meter": str,
                                      "backend": str})
    if "backend" not in points:  # written before the backend column: eager PyTorch
        points.insert(points.columns.get_loc("device") + 1, "backend", DEFAULT_BACKEND)
    points["freq_khz"] = pd.to_numeric(points["freq_khz"], errors="coerce").astype(float)
    points["freq_label"] = [freq_label(f) for f in points["freq_khz"]]
    for col in ("modelled", "pareto_latency_s", "pareto_energy_j"):
        points[col] = _as_bool(points[col])
    return points


def load_run(run_dir: str | Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(eval table, operating points)`` of a run folder, computed from its two CSVs.

    >>> evaluation, points = load_run("outputs/run")  # doctest: +SKIP
    """
    run = Path(run_dir)
    paths = {"eval.csv": "02_evaluate", "profile.csv": "03_profile"}
    for name, notebook in paths.items():
        if not (run / name).is_file():
            raise AnalysisError(f"{run / name} does not exist; run notebook {notebook} on this "
                                "run folder first")
    evaluation = pd.read_csv(run / "eval.csv")
    profile = pd.read_csv(run / "profile.csv")
    if profile.empty:
        raise AnalysisError(f"{run / 'profile.csv'} has no rows; the profile sweep measured "
                            "nothing (rerun notebook 03_profile)")
    return evaluation, operating_points(join_tables(evaluation, profile))


def write_summary(run_dir: str | Path) -> dict[str, Any]:
    """Write ``operating_points.csv`` and ``summary.json`` in the run folder; return the summary.

    >>> summary = write_summary("outputs/run")  # doctest: +SKIP
    >>> [(r["level"], r["metric"], round(r["range"], 1)) for r in summary["dynamic_range"]]
    ... # doctest: +SKIP
    """
    run = Path(run_dir)
    evaluation, points = load_run(run)
    points.to_csv(run / "operating_points.csv", index=False)
    summary = {"run_dir": str(run.resolve()), **summarise(evaluation, points)}
    # allow_nan=False: a stray NaN would make the file unreadable by strict JSON parsers
    (run / "summary.json").write_text(json.dumps(summary, indent=2, allow_nan=False) + "\n")
    return summary
