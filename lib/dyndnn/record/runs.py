"""Opening a run folder for writing: the checks that keep its record true, and its manifest.

>>> import json, tempfile
>>> from dyndnn.resources import find_config
>>> out = f"{tempfile.mkdtemp()}/r1"
>>> with open_run(find_config("quick"), out, ["groups=2"], command="run") as run:
...     with run.step("notebooks", "01_train.ipynb"):
...         pass                                        # the notebook runs here
>>> manifest = json.loads(run.layout.manifest_file.read_text())
>>> manifest["status"], manifest["notebooks"][0]["status"], manifest["config"]["model"]["groups"]
('ok', 'ok', 2)
>>> manifest["commands"][0]["config_name"]              # typed as --config quick
'quick'

Before anything is written: the config is validated, the data set resolved (a fallback warns
and is recorded as ``dataset_used``), the folder claimed (a file, a foreign non-empty folder or
an unwritable place is refused) and locked (a second writer is refused, naming the holder),
and a folder that already holds checkpoints is resumed only with the same training config
(``RunFolderError`` lists the keys that differ). Then ``config.yaml`` and ``manifest.json`` are
written; the manifest ends ``ok``, ``failed`` or ``interrupted``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from dyndnn.config import (
    TRAINING_KEYS,
    Config,
    describe_differences,
    load_config,
    training_differences,
)
from dyndnn.errors import DatasetError, RunFolderError, RunInterrupted
from dyndnn.record.atomic import write_text
from dyndnn.record.layout import RUN_FORMAT, RunLayout
from dyndnn.record.manifest import (
    checkpoint_hashes,
    git_state,
    host_info,
    now,
    package_versions,
    write_manifest,
)
from dyndnn.resources import find_config, shipped_config_name

DEFAULT_CONFIG = "quick"  # the shipped quick config
TRAINING_COMMANDS = ("run", "train")  # they record the processes that train (a stage after
# training keeps the record its training wrote)


class DatasetFallbackWarning(UserWarning):
    """The configured data set is absent and its fallback is used instead."""


@dataclass(frozen=True)
class ResolvedConfig:
    """A validated config whose data set is the one actually used."""

    cfg: Config
    config_file: Path | None
    dataset_requested: str
    dataset_used: str

    @property
    def fell_back(self) -> bool:
        """True when the fallback data set replaced the requested one."""
        return self.dataset_used != self.dataset_requested


def resolve_config(config: str | Path | None, overrides: list[str] | None = None
                   ) -> ResolvedConfig:
    """Validate ``config`` + ``overrides``; fix ``data_root`` (absolute) and the data set used.

    A shipped config may be named without its folder (``quick``). When ``data.dataset`` is
    absent and ``data.fallback_dataset`` is set, a ``DatasetFallbackWarning`` says so.
    """
    from dyndnn.data import locate  # torch is imported only when a run really starts

    path = find_config(config) if config is not None else None
    overrides = list(overrides or [])
    cfg = load_config(path, overrides)
    fixed = [f"data_root={Path(cfg.data.data_root).resolve()}"]
    requested = used = cfg.data.dataset
    try:
        locate(requested, cfg.data.data_root)
    except DatasetError as exc:
        if not cfg.data.fallback_dataset:
            raise
        used = cfg.data.fallback_dataset
        locate(used, cfg.data.data_root)  # the fallback must be there: name where it looked
        warnings.warn(
            f"data set {requested} is not available ({str(exc).splitlines()[0]}); running on "
            f"the fallback {used} instead. The run folder is named after it and the manifest "
            f"records dataset_used={used}.", DatasetFallbackWarning, stacklevel=2)
    if cfg.data.fallback_dataset:
        fixed += [f"dataset={used}", "fallback_dataset=''"]
    return ResolvedConfig(load_config(path, [*overrides, *fixed]), path, requested, used)


def new_run_dir(resolved: ResolvedConfig, outputs: Path | None = None) -> Path:
    """``outputs/<UTC time>-<config name>``, ``-<data set>`` appended after a fallback."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M%S")
    name = resolved.config_file.stem if resolved.config_file else "defaults"
    if resolved.fell_back:
        name += f"-{resolved.dataset_used}"
    return (outputs or Path.cwd() / "outputs") / f"{stamp}-{name}"


def recorded_config(layout: RunLayout) -> dict[str, Any] | None:
    """The folder's ``config.yaml`` in flat form (``{"groups": 4, ...}``); None without one.

    A damaged file raises ``RunFolderError``: the record is what a reader trusts.
    """
    if not layout.config_file.is_file():
        return None
    try:
        recorded = yaml.safe_load(layout.config_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RunFolderError(f"{layout.config_file} is not valid YAML ({exc}); the folder's "
                             "record is damaged: choose a new --out") from exc
    if not isinstance(recorded, dict):
        raise RunFolderError(f"{layout.config_file} holds a {type(recorded).__name__}, not a "
                             "config; the folder's record is damaged: choose a new --out")
    return {k: v for section in recorded.values() if isinstance(section, dict)
            for k, v in section.items()}


def recorded_differences(layout: RunLayout, cfg: Config, keys: tuple[str, ...] = TRAINING_KEYS
                         ) -> dict[str, tuple]:
    """Training keys among ``keys`` where ``cfg`` differs from the folder's ``config.yaml``."""
    recorded = recorded_config(layout)
    if recorded is None:
        return {}
    return {k: v for k, v in training_differences(recorded, cfg).items() if k in keys}


def check_training_config(layout: RunLayout, cfg: Config) -> None:
    """Refuse a config whose training keys differ from those the folder's checkpoints had."""
    if not any(layout.checkpoints_dir.rglob("*.pt")):
        return  # nothing trained here yet: any config may start
    differences = recorded_differences(layout, cfg)
    if differences:
        raise RunFolderError(
            f"run folder {layout.root} was trained with another training config; this one "
            f"differs in: {describe_differences(differences)}. Its checkpoints would not match "
            "its record. Drop those overrides to resume it, or choose a new --out for the new "
            "config.")


@dataclass
class Run:
    """An open run folder: its config, paths and manifest (written on every change)."""

    cfg: Config
    layout: RunLayout
    manifest: dict[str, Any]

    def save(self) -> None:
        """Write the manifest (atomically), with the checkpoints' hashes as they are now."""
        self.manifest["checkpoints_sha256"] = checkpoint_hashes(self.layout.root)
        write_manifest(self.layout.root, self.manifest)

    @contextlib.contextmanager
    def step(self, kind: str, name: str, **record: Any) -> Iterator[dict[str, Any]]:
        """Record one notebook or stage under ``manifest[kind]``: its status and seconds."""
        entry: dict[str, Any] = {"name": name, **record, "status": "running"}
        self.manifest.setdefault(kind, []).append(entry)
        self.save()
        start = time.perf_counter()
        try:
            yield entry
        except BaseException as exc:
            entry.setdefault("error", {"ename": type(exc).__name__, "evalue": str(exc)[:2000]})
            entry["status"] = _ended_by(exc)
            raise
        else:
            entry["status"] = "ok"
        finally:
            entry["seconds"] = round(time.perf_counter() - start, 2)
            self.save()


@contextlib.contextmanager
def open_run(config: str | Path | None, out: str | Path | None,
             overrides: list[str] | None = None, command: str = "run",
             check: Callable[[Config], Any] | None = None,
             world_size: int | None = None) -> Iterator[Run]:
    """Check, lock and record a run folder for ``command``; see the module docstring.

    ``out=None`` makes a new folder under ``outputs/``; with ``config=None`` an existing
    folder's own ``config.yaml`` is used (the shipped quick config for a new one). ``check``
    runs on the config before the folder is touched (the pipeline checks its notebooks so).
    ``world_size``: the size of the torchrun world a train command runs in (recorded).
    """
    if config is None:  # a run folder's own record; never a foreign folder's config.yaml
        existing = RunLayout(out) if out is not None else None
        config = (existing.config_file if existing is not None and existing.is_run_folder()
                  and existing.config_file.is_file() else DEFAULT_CONFIG)
    resolved = resolve_config(config, overrides)
    cfg = resolved.cfg
    if check is not None:
        check(cfg)
    layout = RunLayout(Path(out or new_run_dir(resolved)).absolute())
    if layout.is_published():
        raise RunFolderError(
            f"{layout.root} is a published reference run: it is read, not written (a stage "
            "would change the files its record hashes). Open it with 05_explore or "
            "dyndnn.analysis.load_run, or run the stage on the run folder it came from.")
    with layout.lock():
        check_training_config(layout, cfg)
        previous = _read_manifest(layout) if command != "run" else {}
        write_text(layout.config_file, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        invocation = {"command": command, "config_file": str(resolved.config_file)
                      if resolved.config_file else None,
                      "config_name": shipped_config_name(resolved.config_file),
                      "overrides": list(overrides or [])}
        git, host = git_state(), host_info()
        manifest = {
            **previous, "format": RUN_FORMAT, "run_dir": str(layout.root), **invocation,
            # every command that wrote here, in order: a folder made stage by stage says how
            # and where: a run trained on a GPU server is often profiled on its board
            "commands": [*_earlier_commands(previous), {**invocation, "start": now(),
                                                          "git": git, "host": host}],
            "config": cfg.to_dict(), "seed": cfg.run.seed,
            "dataset_requested": resolved.dataset_requested,
            "dataset_used": resolved.dataset_used, "git": git,
            "packages": package_versions(), "host": host,
            **(training_world(cfg, world_size) if command in TRAINING_COMMANDS else {}),
            "start": now(), "end": None, "status": "running"}
        run = Run(cfg, layout, manifest)
        run.save()
        try:
            yield run
        except BaseException as exc:
            manifest.update(status=_ended_by(exc), end=now())
            run.save()
            if isinstance(exc, KeyboardInterrupt):
                raise RunInterrupted(f"interrupted; {layout.root} is recorded as interrupted "
                                     "and resumes where it stopped when run again") from None
            raise
        manifest.update(status="ok", end=now())
        run.save()


def training_world(cfg: Config, world_size: int | None = None) -> dict[str, Any]:
    """The processes that train this run: ``world_size`` and ``backend`` (None: one process).

    ``world_size``: the torchrun world this process is one of (its caller knows it), else
    ``train.processes`` (the stage launches them itself).
    """
    size = cfg.train.processes if world_size is None else world_size
    joined = size > 1 or world_size is not None
    return {"world_size": size, "backend": cfg.train.distributed_backend if joined else None}


def _earlier_commands(previous: dict[str, Any]) -> list[dict[str, Any]]:
    """The commands an earlier manifest records; one written before the list, its last one."""
    if "commands" in previous:
        return list(previous["commands"])
    if "command" in previous:
        return [{k: previous.get(k) for k in ("command", "config_file", "config_name",
                                              "overrides", "start", "git", "host")}]
    return []


def _ended_by(exc: BaseException) -> str:
    """The manifest status of a run or step that raised ``exc``."""
    return "interrupted" if isinstance(exc, KeyboardInterrupt | RunInterrupted) else "failed"


def _read_manifest(layout: RunLayout) -> dict[str, Any]:
    try:
        manifest = json.loads(layout.manifest_file.read_text())
    except (OSError, ValueError):
        return {}
    return manifest if isinstance(manifest, dict) else {}


def record_abandoned(layout: RunLayout, why: str) -> bool:
    """Mark a run whose writer died ``failed``; True if this call marked it.

    For the processes that do not write (torchrun's ranks above 0): when the writer was
    killed, nothing else would end its record, which would say ``running`` for ever. Only a
    folder that no live process holds is marked, and only while it says ``running``.
    """
    try:
        with layout.lock():
            manifest = _read_manifest(layout)
            if manifest.get("status") != "running":
                return False
            for step in manifest.get("stages", []):
                if step.get("status") == "running":
                    step.update(status="failed", error={"ename": "WriterLost", "evalue": why})
            manifest.update(status="failed", end=now(), error=why)
            write_manifest(layout.root, manifest)
            return True
    except (RunFolderError, OSError):  # the writer lives and ends its own record
        return False
