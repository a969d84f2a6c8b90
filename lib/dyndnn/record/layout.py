"""``RunLayout``: every path of a run folder, in one place.

>>> run = RunLayout("outputs/run1")
>>> run.final_checkpoint("group", groups=4).as_posix()
'outputs/run1/checkpoints/stage4.pt'
>>> run.final_checkpoint("slimmable", groups=4).as_posix()   # trained in one joint stage
'outputs/run1/checkpoints/slimmable/stage1.pt'
>>> run.eval_csv.name, run.figure("train_curves", "svg").as_posix()
('eval.csv', 'outputs/run1/figures/train_curves.svg')

The library, the notebooks and the command line take their paths from here; no other code
joins a run folder with a file name. ``claim()`` makes (or checks) the folder before anything
is written, and ``lock()`` holds it against a second writer. ``resolve_run_dir`` is how a
stage that reads a trained run finds it: the notebooks' default ``run_dir`` falls back to the
newest run folder beside it.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from dyndnn.config import JOINTLY_TRAINED, MODELS
from dyndnn.errors import RunFolderError
from dyndnn.record import runlock
from dyndnn.record.manifest import now, write_manifest

RUN_FORMAT = "dyndnn-run"  # the manifest's ``format``: what marks a folder as a run folder
GROUP_MODEL = MODELS[0]
# the notebooks' default run_dir, relative to the notebook: notebooks/ and make lab's lab/
# copies are both one level below the folder that holds outputs/, so it names one place
DEFAULT_RUN_DIR = "../outputs/interactive"
LISTED_RUNS = 5  # run folders an error lists


@dataclass(frozen=True)
class RunLayout:
    """The files of one run folder (nothing is created until something writes)."""

    root: Path

    def __init__(self, root: str | os.PathLike) -> None:
        object.__setattr__(self, "root", Path(root))

    @classmethod
    def of(cls, run_dir: str | os.PathLike | RunLayout) -> RunLayout:
        """``run_dir`` as a layout: the library's functions take either."""
        return run_dir if isinstance(run_dir, RunLayout) else cls(run_dir)

    # --- the record ---------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        """The validated config the run used (``config.yaml``)."""
        return self.root / "config.yaml"

    @property
    def manifest_file(self) -> Path:
        """What the run was and how it went (``manifest.json``)."""
        return self.root / "manifest.json"

    @property
    def lock_file(self) -> Path:
        """Held by the one process writing to the folder."""
        return self.root / ".lock"

    @property
    def notebooks_dir(self) -> Path:
        """The executed copies of the pipeline's notebooks."""
        return self.root / "notebooks"

    def executed_notebook(self, name: str) -> Path:
        """The executed copy of notebook ``name`` (with or without ``.ipynb``)."""
        return self.notebooks_dir / (name if name.endswith(".ipynb") else f"{name}.ipynb")

    # --- checkpoints --------------------------------------------------------------------
    @property
    def checkpoints_dir(self) -> Path:
        """Every checkpoint of the run (the group model's at the top, baselines below)."""
        return self.root / "checkpoints"

    def checkpoint_folder(self, family: str = GROUP_MODEL) -> Path:
        """``checkpoints/`` for the group model, ``checkpoints/<family>/`` for a baseline."""
        _check_family(family)
        return self.checkpoints_dir if family == GROUP_MODEL else self.checkpoints_dir / family

    def stage_checkpoint(self, family: str, stage: int) -> Path:
        """The model as it stood at the end of training stage ``stage`` (1-based)."""
        return self.checkpoint_folder(family) / f"stage{stage}.pt"

    def resume_checkpoint(self, family: str = GROUP_MODEL) -> Path:
        """The last complete epoch, with the optimiser: training resumes from it."""
        return self.checkpoint_folder(family) / "resume.pt"

    def final_checkpoint(self, family: str = GROUP_MODEL, groups: int = 4) -> Path:
        """The last stage's checkpoint: stage G, or stage 1 for a jointly trained family."""
        return self.stage_checkpoint(family, 1 if family in JOINTLY_TRAINED else groups)

    # --- tables, figures, export --------------------------------------------------------
    @property
    def train_csv(self) -> Path:
        """Per-epoch training history of every family (01)."""
        return self.root / "train.csv"

    @property
    def eval_csv(self) -> Path:
        """Accuracy, MACs, bytes and switch costs per configuration (02)."""
        return self.root / "eval.csv"

    @property
    def switch_dir(self) -> Path:
        """Scratch files the evaluation loads to time an independent model's switch."""
        return self.root / "switch"

    @property
    def export_dir(self) -> Path:
        """The deployment bundle and TorchScript (02)."""
        return self.root / "export"

    @property
    def profile_csv(self) -> Path:
        """One row per measured repeat (03)."""
        return self.root / "profile.csv"

    @property
    def operating_points_csv(self) -> Path:
        """Evaluation joined with profiling, one row per operating point (04)."""
        return self.root / "operating_points.csv"

    @property
    def summary_json(self) -> Path:
        """The analysis' headline numbers (04)."""
        return self.root / "summary.json"

    @property
    def rct_csv(self) -> Path:
        """fp32, QAT and RCT side by side (06)."""
        return self.root / "rct.csv"

    @property
    def rct_history_csv(self) -> Path:
        """Per-epoch history of the three methods (06)."""
        return self.root / "rct_history.csv"

    @property
    def rct_bits_csv(self) -> Path:
        """RCT's per-layer bitwidth over training (06)."""
        return self.root / "rct_bits.csv"

    @property
    def rct_group_csv(self) -> Path:
        """The last group retrained under RCT, against fp32 (06)."""
        return self.root / "rct_group.csv"

    @property
    def runtime_csv(self) -> Path:
        """The runtime experiment: one row per inference window (07)."""
        return self.root / "runtime.csv"

    @property
    def runtime_summary_csv(self) -> Path:
        """Miss rate, latency, accuracy served, switches per policy and scenario (07)."""
        return self.root / "runtime_summary.csv"

    @property
    def runtime_calibration_csv(self) -> Path:
        """Each (backend, k, mapping)'s latency measured unloaded before the runtime runs (07)."""
        return self.root / "runtime_calibration.csv"

    @property
    def figures_dir(self) -> Path:
        """Every figure, as PNG and SVG."""
        return self.root / "figures"

    def figure(self, name: str, ext: str = "png") -> Path:
        """``figures/<name>.<ext>``."""
        return self.figures_dir / f"{name}.{ext}"

    # --- integrity ----------------------------------------------------------------------
    def is_run_folder(self) -> bool:
        """True if the folder holds a manifest that dyndnn wrote."""
        try:
            manifest = json.loads(self.manifest_file.read_text())
        except (OSError, ValueError):
            return False
        # runs written before the format marker hold their config and status
        return isinstance(manifest, dict) and (
            manifest.get("format") == RUN_FORMAT or {"config", "status"} <= set(manifest))

    def is_published(self) -> bool:
        """True if the folder is a reference run (its manifest records ``published``)."""
        try:
            manifest = json.loads(self.manifest_file.read_text())
        except (OSError, ValueError):
            return False
        return isinstance(manifest, dict) and "published" in manifest

    def claim(self) -> None:
        """Make the folder, or check an existing one is a run folder; nothing else is written.

        A file, a non-empty folder dyndnn did not make, or one that cannot be written raises
        ``RunFolderError`` naming the folder and what to do.
        """
        root = self.root
        if root.exists() and not root.is_dir():
            raise RunFolderError(f"{root} is a file, not a folder: name a new folder or an "
                                 "existing run folder for --out")
        if root.is_dir() and not self.is_run_folder():
            self._check_manifest_readable()
            others = sorted(p.name for p in root.iterdir() if p.name != self.lock_file.name)
            if others:
                listed = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
                raise RunFolderError(
                    f"{root} is not empty ({listed}) and is not a dyndnn run folder (it has "
                    "no manifest.json written by dyndnn); dyndnn writes nothing over files it "
                    "did not make. Choose a new or empty folder for --out.")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunFolderError(f"cannot create run folder {root}: {exc.strerror}; choose a "
                                 "folder you can write to for --out") from exc
        if not os.access(root, os.W_OK | os.X_OK):
            raise RunFolderError(f"run folder {root} is not writable by this user; choose a "
                                 "folder you can write to for --out")

    def _check_manifest_readable(self) -> None:
        """A manifest that is there but cannot be read is said as such, not as a foreign folder.

        Advice to choose a new folder would abandon a run whose record is only damaged.
        """
        path = self.manifest_file
        if not path.exists():
            return
        try:
            json.loads(path.read_text())
        except PermissionError:
            raise RunFolderError(f"{path} cannot be read: permission denied. Ask its owner to "
                                 "make the run folder readable (chmod -R a+rX), or work on a "
                                 "copy of it") from None
        except (OSError, ValueError) as exc:
            raise RunFolderError(
                f"{path} is damaged ({type(exc).__name__}: {exc}); it is this run's record "
                "(config, commands, checkpoint hashes), so nothing is written over it. "
                "Restore it from a copy (a published run keeps one), or move the folder's "
                "tables and checkpoints to a new folder and run there.") from None

    @contextlib.contextmanager
    def lock(self) -> Iterator[RunLayout]:
        """Claim the folder and hold it against other writers (re-entrant)."""
        self.claim()
        with runlock.hold(self.lock_file, f"run folder {self.root}"):
            if not self.manifest_file.exists():  # a notebook run by hand: mark the folder
                write_manifest(self.root, {"format": RUN_FORMAT, "run_dir": str(self.root),
                                           "created": now(), "status": "interactive"})
            yield self


def _check_family(family: str) -> None:
    if family not in MODELS:
        raise RunFolderError(f"unknown model family {family!r}; known: {', '.join(MODELS)}")


def run_folders(folder: str | os.PathLike) -> list[RunLayout]:
    """The run folders directly inside ``folder``, the one whose manifest was written last first.

    >>> import tempfile
    >>> outputs = Path(tempfile.mkdtemp())
    >>> for name in ("20260101-000000-quick", "20260102-000000-quick"):
    ...     with RunLayout(outputs / name).lock():
    ...         pass
    >>> (outputs / "notes").mkdir()                          # not a run folder: not listed
    >>> [run.root.name for run in run_folders(outputs)]
    ['20260102-000000-quick', '20260101-000000-quick']
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    runs = [RunLayout(p) for p in root.iterdir() if p.is_dir() and RunLayout(p).is_run_folder()]
    # the manifest is rewritten at every step, so its time is when the run last did something;
    # the name breaks ties (pipeline folders are named by their start time)
    return sorted(runs, key=lambda run: (run.manifest_file.stat().st_mtime_ns, run.root.name),
                  reverse=True)


def resolve_run_dir(run_dir: str | os.PathLike | RunLayout, default: str = DEFAULT_RUN_DIR,
                    say: Callable[[str], object] = print) -> RunLayout:
    """The run folder a stage reads: ``run_dir`` itself, if it exists.

    When it does not and it is the notebooks' ``default`` (nothing trained interactively yet,
    only ``make run`` folders), the newest run folder beside it (``run_folders``) is used and
    ``say`` names it. Otherwise ``RunFolderError`` names the missing folder, lists the run
    folders that exist (newest first) and says how to point ``run_dir`` at one; nothing is
    created.
    """
    layout = RunLayout.of(run_dir)
    if layout.root.is_dir():
        return layout
    outputs = Path(default).parent
    if os.path.normpath(layout.root) == os.path.normpath(default):
        runs = run_folders(outputs)
        if runs:
            say(f"run_dir {default} does not exist; using the newest run folder in {outputs}: "
                f"{runs[0].root} (set run_dir in the parameters cell to choose another)")
            return runs[0]
    where = layout.root.parent if layout.root.parent.is_dir() else outputs
    runs = run_folders(where)
    if runs:
        listed = ", ".join(str(run.root) for run in runs[:LISTED_RUNS])
        more = f" and {len(runs) - LISTED_RUNS} more" if len(runs) > LISTED_RUNS else ""
        found = (f"The run folders in {where}, newest first: {listed}{more}. Set run_dir "
                 "(the parameters cell, or --out on the command line) to one of them.")
    else:
        found = (f"{where} holds no run folder: train one first (make run, python -m dyndnn "
                 "train, or notebook 01_train), then set run_dir to it.")
    raise RunFolderError(f"run folder {layout.root} does not exist "
                         f"({layout.root.absolute()}). {found}")
