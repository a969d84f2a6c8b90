"""``make lab``: JupyterLab on working copies of the notebooks, never on the tracked ones.

JupyterLab autosaves outputs and edited parameters into the notebook it has open; opened on
``notebooks/`` it dirtied the tracked files, and the test that they are committed clean then
failed. ``python -m dyndnn lab`` (what ``make lab`` runs) copies each shipped notebook into
``lab/`` (beside ``notebooks/``, git-ignored) and starts JupyterLab with ``lab/`` as its root,
so the tracked notebooks cannot even be reached from the browser. ``lab/`` sits at the same
depth as ``notebooks/``, so every relative default of a parameters cell (``../data``,
``../outputs/interactive``) names the same place from both.

A copy is never overwritten once you may have changed it: a missing copy is made, a copy
still as it was made is refreshed when the shipped notebook changed, and an edited copy of a
changed notebook is kept, with a message that says how to take the new one.

>>> import tempfile
>>> lab = prepare_lab(Path(tempfile.mkdtemp()) / "lab")
>>> [p.name for p in lab.copied][:2]
['01_train.ipynb', '02_evaluate.ipynb']
>>> prepare_lab(lab.folder).copied                       # the second time: nothing to do
[]
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from dyndnn.errors import DyndnnError
from dyndnn.record.atomic import atomic_write, write_text
from dyndnn.resources import resource_dir

LAB_DIR = Path("lab")
# source hash of each copy when it was made: tells "you edited it" from "we shipped a new one"
SOURCES_FILE = ".copied-from.json"


class LabError(DyndnnError):
    """The lab folder cannot be used, or JupyterLab is not installed."""


@dataclass
class LabCopies:
    """What ``prepare_lab`` did to each working copy."""

    folder: Path
    copied: list[Path] = field(default_factory=list)  # made (they did not exist)
    updated: list[Path] = field(default_factory=list)  # unedited, and the shipped one changed
    kept: list[Path] = field(default_factory=list)  # edited, and the shipped one changed

    def report(self) -> str:
        """One line per copy that was made or refreshed, and per edited copy that was kept."""
        lines = [f"copied {p.name} into {self.folder}" for p in self.copied]
        lines += [f"updated {p} (you had not changed it; its shipped notebook changed)"
                  for p in self.updated]
        lines += [f"kept your copy {p}: its shipped notebook changed since it was copied. To "
                  f"take the new one, rename or delete {p} and run make lab again"
                  for p in self.kept]
        return "\n".join(lines) or f"working copies in {self.folder} are up to date"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def prepare_lab(folder: str | os.PathLike = LAB_DIR, source: Path | None = None) -> LabCopies:
    """Make or refresh the working copies of ``source``'s notebooks in ``folder``.

    ``source`` defaults to the shipped notebooks (``resource_dir("notebooks")``); nothing in
    it is ever written. ``LabError`` when ``folder`` is ``source`` or is not a folder.
    """
    source = Path(source or resource_dir("notebooks"))
    folder = Path(folder)
    if folder.resolve() == source.resolve():
        raise LabError(f"the lab folder {folder} is the folder of the tracked notebooks; "
                       "choose another (the default is lab/)")
    if folder.exists() and not folder.is_dir():
        raise LabError(f"{folder} is a file, not a folder: move it away or choose another lab "
                       "folder")
    folder.mkdir(parents=True, exist_ok=True)
    record_file = folder / SOURCES_FILE
    try:
        recorded = json.loads(record_file.read_text()) if record_file.is_file() else {}
    except ValueError:
        recorded = {}  # a damaged record: every copy that differs is kept, none overwritten
    done = LabCopies(folder)
    for notebook in sorted(source.glob("*.ipynb")):
        copy, shipped = folder / notebook.name, _sha256(notebook)
        if not copy.exists():
            done.copied.append(copy)
        elif _sha256(copy) == shipped or recorded.get(notebook.name) == shipped:
            # identical, or edited by you from the notebook as it still ships: leave it
            recorded[notebook.name] = shipped
            continue
        elif _sha256(copy) == recorded.get(notebook.name):
            done.updated.append(copy)  # untouched since copied: take the new notebook
        else:
            done.kept.append(copy)
            continue
        with atomic_write(copy, "wb") as f:
            f.write(notebook.read_bytes())
        copy.chmod(notebook.stat().st_mode & 0o777 | 0o600)  # yours to edit, as the source
        recorded[notebook.name] = shipped
    write_text(record_file, json.dumps(recorded, indent=1, sort_keys=True) + "\n")
    return done


def launch_lab(folder: str | os.PathLike = LAB_DIR, extra: list[str] | None = None) -> None:
    """Replace this process by JupyterLab on ``folder`` (its root: nothing above is reachable).

    ``LabError`` when JupyterLab is not installed (``make lab`` installs it).
    """
    try:
        import jupyterlab  # noqa: F401 (only to say clearly that it is missing)
    except ImportError as exc:
        raise LabError("JupyterLab is not installed: make lab installs it, or pip install "
                       "'dyndnn[lab]'") from exc
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}",
               *(extra or [])]
    sys.stdout.flush()
    os.execv(sys.executable, command)  # Ctrl-C and the exit status are JupyterLab's own
