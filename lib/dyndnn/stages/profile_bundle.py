"""The board side: profile a deployment bundle with the engines a board has, without torch.

``python -m dyndnn profile-bundle EXPORT --out FOLDER`` measures every configuration of the
bundle that 02_evaluate wrote (``RUN/export``, copied to the board) with the same profiler as
stage 03: the board's meters, mappings and clocks, one worker process per mapping, resumable.
It writes ``FOLDER/profile.csv`` (stage 03's columns; ``model`` is the bundle's family) and
``FOLDER/board_profile.json``: the bundle it measured (the SHA-256 of its manifest and
weights), the board, the host, the packages and the settings. Back on the workstation,
``python -m dyndnn analyse --out RUN -p board_profiles=[FOLDER]`` checks that the bundle is
the run's own and merges the rows into the run (``board.merge``).

What a board needs (``pip install "dyndnn[board]"``): numpy, pandas, PyYAML, tqdm and one
engine (onnxruntime, or openvino on an Intel CPU); no torch, no Jupyter. Two engines read a
file of their own, written where the run profiled them, and are measured when named: LiteRT
(``export/litert/model.tflite``; ``pip install ai-edge-litert``, no torch) with
``-p backends=[litert]``, and on a board that has torch and ExecuTorch, the ExecuTorch program
(``export/executorch/``) with ``-p backends=[executorch]``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from dyndnn.board import discover, plan_mappings, profile_sweep
from dyndnn.board.bundle_source import (
    BUNDLE_BACKENDS,
    NAMED_BUNDLE_BACKENDS,
    RECORD_FILE,
    RECORD_FORMAT,
    BundleSource,
    bundle_identity,
    installed_bundle_backends,
)
from dyndnn.config import Config
from dyndnn.errors import ConfigError
from dyndnn.record import runlock
from dyndnn.record.atomic import write_text
from dyndnn.record.manifest import host_info, now, package_versions

# the profile section's keys the board side takes (-p key=value), as stage 03 does
KEYS = ("mappings", "frequencies_khz", "profile_batches", "repeats", "warmup", "window_s",
        "meter", "board", "backends")


@dataclass
class BundleProfileResult:
    """What was measured where: the record written beside ``profile.csv``, and its rows."""

    folder: Path
    record: dict[str, Any]
    rows: int

    def report(self) -> str:
        """How many rows, of what, where; and the workstation's command that merges them."""
        r = self.record
        return (f"{self.rows} rows of bundle {r['bundle']['family']} (G={r['bundle']['groups']})"
                f" on board {r['board']}: backends {r['settings']['backends']}, mappings "
                f"{r['mappings']}, batches {r['settings']['profile_batches']}\n"
                f"merge them on the workstation: python -m dyndnn analyse --out RUN "
                f"-p board_profiles=[{self.folder}]")


def chosen_backends(cfg: Config, given: bool) -> list[str]:
    """The engines to measure: those given (``-p backends=...``), else every one installed.

    >>> from dyndnn.config import config_from_flat
    >>> chosen_backends(config_from_flat({"backends": ["onnxruntime"]}), given=True)
    ['onnxruntime']
    """
    if not given:
        found = installed_bundle_backends()
        if not found:
            raise ConfigError(f"no engine that reads a bundle is installed here (any of "
                              f"{', '.join(BUNDLE_BACKENDS)}): pip install onnxruntime, or "
                              "pip install 'dyndnn[board]'")
        return found
    wrong = [b for b in cfg.profile.backends if b not in BUNDLE_BACKENDS + NAMED_BUNDLE_BACKENDS]
    if wrong:
        raise ConfigError(f"backends {wrong} cannot read a bundle: give -p backends= with "
                          f"{' and/or '.join(BUNDLE_BACKENDS + NAMED_BUNDLE_BACKENDS)} (eager "
                          "PyTorch needs the checkpoint: python -m dyndnn profile on the run "
                          "folder)")
    return list(cfg.profile.backends)


def executorch_program(export: str | os.PathLike, batches: list[int]) -> dict[str, Any]:
    """The bundle's ExecuTorch program's manifest, checked against the batches to measure.

    A missing or changed program is a ``BundleError``; a batch beyond its memory plan a
    ``ConfigError`` that says which batches it takes.
    """
    from dyndnn.serve.executorch_bundle import BUNDLE_FOLDER, read_program_manifest

    manifest = read_program_manifest(Path(export) / BUNDLE_FOLDER)
    too_large = [b for b in batches if b > int(manifest["max_batch"])]
    if too_large:
        raise ConfigError(f"the bundle's ExecuTorch program takes batches of up to "
                          f"{manifest['max_batch']} images (its memory plan); not {too_large}: "
                          f"give -p profile_batches= with batches up to {manifest['max_batch']}")
    return manifest


def profile_bundle(export: str | os.PathLike, out: str | os.PathLike, cfg: Config,
                   backends_given: bool = False, progress: bool = True,
                   command: dict[str, Any] | None = None) -> BundleProfileResult:
    """Measure every configuration of the bundle in ``export`` into ``out`` (resumable)."""
    source = BundleSource(os.path.abspath(export))
    bundle = source.manifest  # a BundleError (bad input) before anything is written
    backends = chosen_backends(cfg, backends_given)
    identity = bundle_identity(source.folder)
    if "executorch" in backends:  # its own program: checked, and named in the record
        program = executorch_program(export, list(cfg.profile.profile_batches))
        identity["executorch_program_sha256"] = program["program"]["sha256"]
    if "litert" in backends:  # likewise its .tflite
        from dyndnn.serve.litert_bundle import BUNDLE_FOLDER, read_litert_manifest

        model = read_litert_manifest(Path(export) / BUNDLE_FOLDER)
        identity["litert_model_sha256"] = model["model"]["sha256"]
    folder = Path(out).absolute()
    folder.mkdir(parents=True, exist_ok=True)
    record_file = folder / RECORD_FILE
    with runlock.hold(folder / ".lock", f"board profile folder {folder}"):
        if record_file.is_file():  # resuming: only the same bundle's rows go in one folder
            earlier = json.loads(record_file.read_text())
            if earlier.get("bundle", {}).get("weights_sha256") != identity["weights_sha256"]:
                raise ConfigError(f"{folder} holds the profile of another bundle "
                                  f"({earlier.get('bundle', {}).get('source')}): give a new "
                                  "--out folder for this one")
        section = cfg.profile
        plan = plan_mappings(list(section.mappings), discover(probe_cuda=False))
        record: dict[str, Any] = {
            "format": RECORD_FORMAT, "board": None, "mappings": [m.label for m in plan],
            "bundle": {"source": str(Path(export)), "family": source.family,
                       "groups": source.groups, **identity},
            "settings": {k: (list(v) if isinstance(v, tuple) else v)
                         for k, v in asdict(section).items() if k in KEYS}
            | {"backends": backends},
            "command": command or {}, "host": host_info(), "packages": package_versions(),
            "start": now(), "end": None, "status": "running"}
        write_text(record_file, json.dumps(record, indent=2) + "\n")  # kept if interrupted
        table = profile_sweep(
            source, source.input_shape, list(range(1, source.groups + 1)), plan,
            list(section.frequencies_khz) or [None], list(section.profile_batches),
            folder / "profile.csv", warmup=section.warmup, repeats=section.repeats,
            meter=section.meter, board=section.board or None, model_name=bundle["family"],
            min_window_s=section.window_s, backends=backends, progress=progress)
        record.update(board=str(table["board"].iloc[0]) if len(table) else None,
                      end=now(), status="ok")
        write_text(record_file, json.dumps(record, indent=2) + "\n")
    return BundleProfileResult(folder, record, len(table))
