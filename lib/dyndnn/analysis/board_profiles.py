"""Rows a board measured on its own (``profile-bundle``), merged into the run they belong to.

A board without torch profiles the run's deployment bundle (``export/``) and writes a folder:
``profile.csv`` in stage 03's columns and ``board_profile.json``, the record of what it
measured (the bundle's SHA-256, the board, the host). ``merge_board_profiles`` checks that the
bundle is this run's own (same manifest and weights bytes: same weights, same accuracies),
then puts the rows into the run's ``profile.csv``: a row of the same point and repeat is
replaced (a board measured again), every other row is kept. What it returns is recorded in
the run's manifest, under the analyse stage, so each row's origin stays findable.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from dyndnn.analysis.errors import AnalysisError
from dyndnn.board.bundle_source import RECORD_FILE, RECORD_FORMAT, bundle_identity
from dyndnn.board.profiler import COLUMNS, KEY_COLUMNS
from dyndnn.record.atomic import write_csv
from dyndnn.record.layout import RunLayout
from dyndnn.record.manifest import sha256_file
from dyndnn.serve import executorch_bundle, litert_bundle

# engines measured from a file of their own: the record's key for its SHA-256, its path in
# export/ and what to call it
ENGINE_FILES = (
    ("executorch_program_sha256",
     Path(executorch_bundle.BUNDLE_FOLDER, executorch_bundle.PROGRAM_FILE), "ExecuTorch program"),
    ("litert_model_sha256", Path(litert_bundle.BUNDLE_FOLDER, litert_bundle.MODEL_FILE),
     "LiteRT model"),
)

ROW_KEY = ["board", *KEY_COLUMNS, "repeat"]  # one measured window of one board


def read_board_profile(folder: str | os.PathLike) -> tuple[dict[str, Any], pd.DataFrame]:
    """A board profile folder's record and rows, checked; an AnalysisError says what is wrong."""
    root = Path(folder)
    record_file, rows_file = root / RECORD_FILE, root / "profile.csv"
    for path in (record_file, rows_file):
        if not path.is_file():
            raise AnalysisError(f"{root} is not a board profile: {path.name} is missing "
                                "(python -m dyndnn profile-bundle EXPORT --out FOLDER writes "
                                "both on the board)")
    try:
        record = json.loads(record_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnalysisError(f"{record_file} is not valid JSON ({exc}); copy it again from "
                            "the board") from exc
    if not isinstance(record, dict) or record.get("format") != RECORD_FORMAT:
        raise AnalysisError(f"{record_file} is not a {RECORD_FORMAT} record")
    if record.get("status") != "ok":
        raise AnalysisError(f"{record_file} says the board's sweep ended "
                            f"{record.get('status')!r}: run profile-bundle again on the board "
                            "(it resumes) and copy the folder when it ends ok")
    rows = pd.read_csv(rows_file)
    if list(rows.columns) != COLUMNS:
        raise AnalysisError(f"{rows_file} has columns {list(rows.columns)}, not the "
                            "profiler's; it was not written by profile-bundle")
    family = record["bundle"]["family"]
    if rows.empty or set(rows["model"]) != {family}:
        raise AnalysisError(f"{rows_file} holds rows of {sorted(set(rows['model']))}, not of "
                            f"the bundle's family {family!r} alone")
    return record, rows


def merge_board_profiles(layout: RunLayout, folders: list[str]) -> list[dict[str, Any]]:
    """Merge each board profile into ``layout``'s ``profile.csv``; returns what was merged."""
    if not folders:
        return []
    export = layout.export_dir
    if not (export / "manifest.json").is_file():
        raise AnalysisError(f"{layout.root} has no deployment bundle ({export}): a board "
                            "profile can only be checked against the bundle it measured "
                            "(02_evaluate writes it)")
    ours = bundle_identity(export)
    merged_rows, records = pd.read_csv(layout.profile_csv), []
    for folder in folders:
        record, rows = read_board_profile(folder)
        theirs = {k: record["bundle"].get(k) for k in ours}
        if theirs != ours:
            raise AnalysisError(f"{folder} measured another bundle than {export} (its SHA-256 "
                                "differ): profile this run's export/ on the board")
        for key, file, what in ENGINE_FILES:
            measured = record["bundle"].get(key)
            if measured is not None and measured != _sha256(export / file):
                raise AnalysisError(f"{folder} measured another {what} than {export / file}: "
                                    "profile this run's export/ on the board")
        key = pd.MultiIndex.from_frame(rows[ROW_KEY].astype(str))
        kept = ~pd.MultiIndex.from_frame(merged_rows[ROW_KEY].astype(str)).isin(key)
        replaced = int((~kept).sum())
        merged_rows = pd.concat([merged_rows[kept], rows], ignore_index=True)
        records.append({"folder": str(folder), "board": record.get("board"),
                        "rows": len(rows), "replaced": replaced,
                        "hostname": record.get("host", {}).get("hostname"),
                        "measured": [record.get("start"), record.get("end")],
                        "backends": record.get("settings", {}).get("backends"),
                        **ours})
    write_csv(merged_rows[COLUMNS], layout.profile_csv)
    return records


def _sha256(file: Path) -> str | None:
    """The SHA-256 of one of the run's engine files, if it has it."""
    return sha256_file(file) if file.is_file() else None
