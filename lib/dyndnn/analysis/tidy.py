"""Tidy input: ``profile.csv`` with fixed dtypes, joined with ``eval.csv`` on (model, groups).

A CSV read back gives mixed types (cores "0" as 0, an empty frequency as "", booleans as text);
``tidy_profile`` fixes them and adds the readable ``mapping`` and ``freq_label`` columns, and
``join_tables`` gives every profile row its configuration's accuracy, MACs and bytes.

>>> freq_label(1400000.0), freq_label(float("nan"))
('1400 MHz', 'clocks as set')
"""

from __future__ import annotations

import math

import pandas as pd

from dyndnn.analysis.errors import AnalysisError

POINT_KEYS = ["board", "model", "device", "backend", "cores", "threads", "freq_khz", "batch",
              "groups"]
MAPPING_KEYS = ["device", "cores", "threads"]
DEFAULT_BACKEND = "eager"  # what a profile.csv without a backend column was measured with
METRICS = ["latency_s", "energy_j", "power_w"]
EVAL_KEEP = ["accuracy", "val_accuracy", "confidence_norm", "macs", "param_bytes"]
# where energy_j and power_w came from (latency_s is always measured, by a clock)
PROVENANCE_COLUMNS = ["energy_provenance", "energy_source", "energy_note"]
AS_SET = "clocks as set"


PROFILE_REQUIRED = [c for c in (*POINT_KEYS, *METRICS) if c != "backend"]
EVAL_REQUIRED = ["model", "groups", "accuracy"]


def read_table(path, required: list[str], remedy: str) -> pd.DataFrame:
    r"""A run's CSV, read and checked before anything is computed from it or written.

    Whatever is wrong (missing, not text, empty, not a table, columns missing) is an
    ``AnalysisError`` that names the file and ``remedy``.

    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "profile.csv"
    >>> _ = path.write_text("model,groups\nm,1\n")
    >>> read_table(path, ["model", "latency_s"], "rerun notebook 03_profile")
    Traceback (most recent call last):
    dyndnn.analysis.errors.AnalysisError: .../profile.csv lacks the column(s) ['latency_s'] ...
    """
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise AnalysisError(f"{path} does not exist; {remedy}") from None
    except (UnicodeDecodeError, pd.errors.EmptyDataError, pd.errors.ParserError,
            OSError) as exc:
        raise AnalysisError(f"{path} cannot be read as a table ({type(exc).__name__}: "
                            f"{str(exc)[:200]}); {remedy}") from None
    missing = [c for c in required if c not in table]
    if missing:
        raise AnalysisError(f"{path} lacks the column(s) {missing} (a table dyndnn wrote has "
                            f"them: damaged or cut short?); {remedy}")
    return table


def _as_bool(series: pd.Series) -> pd.Series:
    # a CSV read back gives True/False, "True"/"False" or 1/0 depending on what else is there
    return series.astype(str).str.strip().str.lower().isin(["true", "1", "1.0"])


def distinct_joined(values: pd.Series) -> str:
    """The distinct values of a column, sorted and joined by ``+`` (a range's provenances).

    >>> distinct_joined(pd.Series(["modelled", "measured", "modelled"]))
    'measured+modelled'
    """
    return "+".join(sorted(set(values.astype(str))))


def tidy_profile(profile: pd.DataFrame) -> pd.DataFrame:
    """``profile.csv`` with fixed dtypes and two readable columns, ``mapping`` and ``freq_label``.

    ``cores`` is a string ("0" and "0-1" alike), ``freq_khz`` a float with NaN for "clocks as
    they were", ``backend`` a string ("eager" where the column or a value is missing: such
    rows come from before the profiler measured more than one engine). ``energy_provenance``
    (measured, modelled, simulated or none), ``energy_source`` and ``energy_note`` are
    filled in for tables written before them, from their boolean ``modelled`` column.
    ``latency_per_image_s`` is ``latency_s`` (one forward pass of ``batch`` inputs) / batch.

    >>> row = dict(board="vm", model="m", device="cpu", cores=0, threads=1, freq_khz="",
    ...            batch=64, groups=1, latency_s=0.0064, energy_j=0.1, power_w=15.6,
    ...            meter="modelled-cpu", modelled=True)
    >>> tidy = tidy_profile(pd.DataFrame([row]))
    >>> tidy.loc[0, ["mapping", "backend", "energy_provenance"]].tolist()
    ['cpu[0]x1', 'eager', 'modelled']
    >>> float(tidy.loc[0, "latency_per_image_s"])
    0.0001
    """
    missing = sorted(set(PROFILE_REQUIRED) - set(profile.columns))
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
    out["meter"] = out["meter"].astype(str) if "meter" in out else "unknown"
    out = with_provenance(out)
    out["latency_per_image_s"] = out["latency_s"] / out["batch"]
    # rows from before the backend column (absent, or left empty in a merged file) ran eager
    backend = out.get("backend", pd.Series(pd.NA, index=out.index)).astype("string").str.strip()
    out["backend"] = backend.replace("", pd.NA).fillna(DEFAULT_BACKEND).astype(str)
    out["mapping"] = out["device"] + "[" + out["cores"] + "]x" + out["threads"].astype(str)
    out["freq_label"] = [freq_label(f) for f in out["freq_khz"]]
    return out


def with_provenance(out: pd.DataFrame) -> pd.DataFrame:
    """Energy provenance columns, from the boolean ``modelled`` of older tables if need be."""
    if "energy_provenance" not in out:
        legacy = _as_bool(out["modelled"]) if "modelled" in out else pd.Series(False,
                                                                             index=out.index)
        out["energy_provenance"] = legacy.map({True: "modelled", False: "measured"})
    provenance = out["energy_provenance"]
    out["energy_provenance"] = provenance.astype(object).where(provenance.notna(),
                                                                "none").astype(str)
    meter = out["meter"].astype(str) if "meter" in out else pd.Series("unknown", index=out.index)
    source = out["energy_source"] if "energy_source" in out else meter
    out["energy_source"] = source.astype(object).where(source.notna(), meter).astype(str)
    note = out["energy_note"] if "energy_note" in out else pd.Series("", index=out.index)
    out["energy_note"] = note.astype(object).where(note.notna(), "").astype(str)
    return out.drop(columns=["modelled"], errors="ignore")


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

    >>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "cores": "0",
    ...                         "threads": 1, "freq_khz": None, "batch": 1, "groups": [1, 2, 3],
    ...                         "latency_s": [0.002, 0.004, 0.006], "energy_j": 0.01,
    ...                         "power_w": 3.0})
    >>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88],
    ...                            "val_accuracy": [0.79, 0.87], "confidence_norm": [0.9, 1.0],
    ...                            "macs": [100, 200], "param_bytes": [40, 80]})
    >>> join_tables(evaluation, profile)[["groups", "latency_s", "accuracy", "macs"]]
       groups  latency_s  accuracy   macs
    0       1      0.002      0.80  100.0
    1       2      0.004      0.88  200.0
    2       3      0.006       NaN    NaN
    >>> join_tables(evaluation.assign(model="other"), profile)
    Traceback (most recent call last):
    dyndnn.analysis.errors.AnalysisError: no profile row matches an evaluated configuration:
    profile models ['m'], eval models ['other']
    """
    prof = tidy_profile(profile)
    # an eval.csv from before a column (val_accuracy) gives NaN there
    ev = evaluation.reindex(columns=["model", "groups", *EVAL_KEEP]).copy()
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
