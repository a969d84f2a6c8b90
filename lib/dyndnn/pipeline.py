"""The pipeline: validate the config, then run the notebooks in order with papermill.

>>> run_dir = run_pipeline("configs/quick.yaml", overrides=["epochs_per_stage=1"])

Each notebook gets the config keys its tagged ``parameters`` cell declares, plus ``run_dir``;
the executed copies land in ``<run_dir>/notebooks/``. A failing notebook stops the chain with a
``NotebookError`` naming the notebook, the cell and the error; its executed copy is kept.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path
from typing import Any

import papermill as pm
import yaml
from tqdm.auto import tqdm

from dyndnn.config import Config, load_config
from dyndnn.data import REPO_ROOT, locate
from dyndnn.errors import ConfigError, DatasetError, NotebookError
from dyndnn.manifest import (
    checkpoint_hashes,
    git_state,
    host_info,
    now,
    package_versions,
    write_manifest,
)

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
OUTPUTS_DIR = REPO_ROOT / "outputs"
KERNEL = "python3"


def notebook_path(name: str, notebooks_dir: Path = NOTEBOOKS_DIR) -> Path:
    """The source notebook of chain entry ``name`` (with or without ``.ipynb``)."""
    return notebooks_dir / (name if name.endswith(".ipynb") else f"{name}.ipynb")


def notebook_parameters(path: Path) -> dict[str, Any]:
    """Names and defaults declared in a notebook's ``parameters`` cell."""
    return {name: info["default"] for name, info in pm.inspect_notebook(str(path)).items()}


def plan(cfg: Config, notebooks_dir: Path = NOTEBOOKS_DIR) -> list[Path]:
    """Check, before any work, that every notebook exists and the data set is present."""
    paths = [notebook_path(n, notebooks_dir) for n in cfg.run.notebooks]
    missing = [str(p) for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"run.notebooks names notebook(s) that do not exist: {missing}")
    locate(cfg.data.dataset, cfg.data.data_root)  # raises DatasetError naming where it looked
    return paths


def resolve_dataset(cfg: Config) -> str:
    """``data.dataset`` if its files are present, else ``data.fallback_dataset``."""
    try:
        locate(cfg.data.dataset, cfg.data.data_root)
        return cfg.data.dataset
    except DatasetError:
        if not cfg.data.fallback_dataset:
            raise
        return cfg.data.fallback_dataset


def new_run_dir(config_path: str | Path | None) -> Path:
    """``outputs/<UTC timestamp>-<config name>``."""
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%d-%H%M%S")
    name = Path(config_path).stem if config_path else "defaults"
    return OUTPUTS_DIR / f"{stamp}-{name}"


def describe_failure(exc: Exception, name: str, executed: Path) -> tuple[dict, str]:
    """The manifest's error record and the user's message for a notebook that failed."""
    if isinstance(exc, pm.PapermillExecutionError):
        first_line = (exc.source or "").strip().splitlines()[:1]
        return ({"cell": exc.cell_index, "execution_count": exc.exec_count,
                 "ename": exc.ename, "evalue": exc.evalue},
                f"notebook {name} failed in cell {exc.cell_index + 1} of the executed notebook "
                f"(In [{exc.exec_count}]: {first_line[0] if first_line else ''}): "
                f"{exc.ename}: {exc.evalue}\nThe executed notebook with the error is kept at "
                f"{executed}")
    # nbclient's cell timeout, a dead kernel: no cell output to point at
    return ({"ename": type(exc).__name__, "evalue": str(exc)},
            f"notebook {name} did not finish: {type(exc).__name__}: {exc}\nThe executed "
            f"notebook, as far as it got, is kept at {executed}")


def run_pipeline(config_path: str | Path | None, out: str | Path | None = None,
                 overrides: list[str] | None = None, notebooks_dir: Path = NOTEBOOKS_DIR,
                 progress: bool = True) -> Path:
    """Run the chain; returns the run folder. An existing ``out`` folder is resumed."""
    cfg = load_config(config_path, overrides)
    # data_root is taken relative to where the command runs, then passed on absolute
    fixed = [f"data_root={Path(cfg.data.data_root).resolve()}"]
    if cfg.data.fallback_dataset:
        fixed += [f"dataset={resolve_dataset(cfg)}", "fallback_dataset=''"]
    cfg = load_config(config_path, [*(overrides or []), *fixed])
    paths = plan(cfg, notebooks_dir)
    run_dir = Path(out) if out else new_run_dir(config_path)
    run_dir = run_dir.resolve()
    (run_dir / "notebooks").mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
    manifest: dict[str, Any] = {
        "run_dir": str(run_dir), "config_file": str(config_path) if config_path else None,
        "overrides": list(overrides or []), "config": cfg.to_dict(), "seed": cfg.run.seed,
        "git": git_state(), "packages": package_versions(), "host": host_info(),
        "start": now(), "end": None, "status": "running", "notebooks": [],
    }
    write_manifest(run_dir, manifest)
    flat = {**cfg.flat(), "run_dir": str(run_dir)}
    chain = tqdm(paths, desc="pipeline", unit="notebook", disable=not progress)
    for path in chain:
        chain.set_postfix_str(path.stem)
        executed = run_dir / "notebooks" / path.name
        params = {k: v for k, v in flat.items() if k in notebook_parameters(path)}
        entry: dict[str, Any] = {"notebook": path.name, "executed": str(executed),
                                 "parameters": params}
        manifest["notebooks"].append(entry)
        start = time.perf_counter()
        try:
            pm.execute_notebook(str(path), str(executed), parameters=params, kernel_name=KERNEL,
                                progress_bar=False, cwd=str(run_dir),
                                execution_timeout=cfg.run.cell_timeout_s or None)
        except Exception as exc:
            error, message = describe_failure(exc, path.name, executed)
            entry.update(status="failed", seconds=round(time.perf_counter() - start, 2),
                         error=error)
            manifest.update(status="failed", end=now())
            write_manifest(run_dir, manifest)
            raise NotebookError(message) from exc
        entry.update(status="ok", seconds=round(time.perf_counter() - start, 2))
        manifest["checkpoints_sha256"] = checkpoint_hashes(run_dir)
        write_manifest(run_dir, manifest)
    manifest.update(status="ok", end=now())
    write_manifest(run_dir, manifest)
    return run_dir
