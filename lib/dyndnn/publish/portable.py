"""Paths a reader can re-type: a publication names no folder of the machine that made it.

A run folder's own record holds absolute paths (its folder, its config file, the data root):
a stage resuming the run needs them. A publication is read on other machines, so its copy of
the record names each path as a reader would type it: the run folder as ``<run>``, a file in it
relative to ``<run>``, a file of the project (a shipped config, ``data/``) relative to the
project's root, and anything else by its last part under ``<elsewhere>`` (where it lay is the
making machine's business, and would leak its layout).

>>> run, project = Path("/w/runs/r1"), Path("/src")
>>> portable_path("/w/runs/r1/config.yaml", run, project)
'<run>/config.yaml'
>>> portable_path("/src/configs/paper.yaml", run, project)
'configs/paper.yaml'
>>> portable_path("/w/runs/r1", run, project)
'<run>'
>>> portable_path("/usr/share/datasets/fashion-mnist", run, project)
'<elsewhere>/fashion-mnist'
>>> portable_path("outputs/r1", run, project)   # already relative: kept
'outputs/r1'
>>> portable({"run_dir": "/w/runs/r1", "data": {"data_root": "/src/data"}, "seed": 0},
...          run, project)
{'run_dir': '<run>', 'data': {'data_root': 'data'}, 'seed': 0}
>>> absolute_paths("`python -m dyndnn train --config /home/me/p.yaml`, 2.73x / 2.36x")
['/home/me/p.yaml']
"""

from __future__ import annotations

import json
import re
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from dyndnn.resources import SOURCE_ROOT

RUN = "<run>"
ELSEWHERE = "<elsewhere>"
# an absolute POSIX path of at least two parts where a token starts (not "k/G", not " / ")
_ABSOLUTE = re.compile(r"(?:(?<=^)|(?<=[\s`'\"(=:,\[]))/[\w.+-]+(?:/[\w.+-]*)+")


def portable_path(value: str, run_root: Path, project_root: Path) -> str:
    """``value`` as a reader types it (see the module docstring); a relative path is kept."""
    path = PurePosixPath(value)
    if not path.is_absolute():
        return value
    for root, prefix in ((PurePosixPath(run_root), RUN), (PurePosixPath(project_root), None)):
        if path == root or root in path.parents:
            rest = path.relative_to(root).as_posix()
            if prefix is None:
                return rest
            return prefix if rest == "." else f"{prefix}/{rest}"
    return f"{ELSEWHERE}/{path.name}"


def portable(record: Any, run_root: Path, project_root: Path) -> Any:
    """``record`` (JSON-like) with every absolute path string made portable."""
    if isinstance(record, dict):
        return {key: portable(value, run_root, project_root) for key, value in record.items()}
    if isinstance(record, list):
        return [portable(value, run_root, project_root) for value in record]
    if isinstance(record, str) and record.startswith("/"):
        return portable_path(record, run_root, project_root)
    return record


def absolute_paths(text: str) -> list[str]:
    """The absolute paths written in ``text`` (a file's contents), in order."""
    return _ABSOLUTE.findall(text)


def source_of(run_root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Which run a publication came from, without the path of the machine that made it.

    The run folder's name and its manifest's creation time: one run folder keeps both for its
    whole life, and two run folders share them only when one is a copy of the other.
    """
    return {"run": run_root.name, "created": manifest.get("created")}


def portable_copies(manifest: dict[str, Any], run_root: Path, staging: Path
                    ) -> dict[str, Any]:
    """The manifest, and the copied config and summary, with their paths made portable.

    The copies in ``staging`` are rewritten before they are hashed, so what is published
    holds no absolute path of the machine that made it; the manifest is returned.
    """
    config = staging / "config.yaml"
    if config.is_file():
        config.write_text(yaml.safe_dump(portable(yaml.safe_load(config.read_text()), run_root,
                                                  SOURCE_ROOT), sort_keys=False))
    summary = staging / "summary.json"
    if summary.is_file():
        summary.write_text(json.dumps(portable(json.loads(summary.read_text()), run_root,
                                               SOURCE_ROOT), indent=2) + "\n")
    return portable(manifest, run_root, SOURCE_ROOT)


def same_source(published: dict[str, Any], source: Path, manifest: dict[str, Any]) -> bool:
    """True if ``published`` (a manifest's section) came from the run at ``source``."""
    if "source" in published:
        return published["source"] == source_of(source, manifest)
    return published.get("from") == str(source)  # published before ``source`` was recorded
