"""Publishing a finished run folder as a reference run, small enough to commit.

    python -m dyndnn publish --out RUN --to results/NAME

A reference run is what a reader is handed instead of a training job: one finished run's
tables (``train.csv``, ``eval.csv``, ``profile.csv``, ``operating_points.csv``, the RCT
tables), ``summary.json``, its ``config.yaml`` and ``manifest.json``, its figures as PNG, the
group model's final checkpoint when it is small, and a ``RESULTS.md``
(``dyndnn.publish.results_md``) stating what ran where and the headline tables. It opens
like any run folder: the analysis (``load_run``) and notebook 05_explore read it without
training anything.

Only a run whose record holds together is published (``PublishError`` otherwise, exit 2,
nothing written): its manifest ends ``ok``; it was evaluated, profiled and analysed; every
family of its config has every configuration in ``eval.csv`` and points in ``profile.csv``;
``summary.json`` and ``operating_points.csv`` equal what the analysis computes from the two
tables now (a table edited or re-measured after the analysis would otherwise be published
beside a summary of other numbers); the checkpoint's hash is the one its manifest recorded;
and the whole is under ``MAX_BYTES``. The published ``manifest.json`` gains ``published``:
where from, when, at which commit, each file's SHA-256 and what was left out. Publishing
again over a folder this command wrote replaces it; any other non-empty folder is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from dyndnn.analysis import load_run, read_operating_points, summarise
from dyndnn.errors import PublishError
from dyndnn.publish.portable import portable_copies, same_source, source_of
from dyndnn.publish.results_md import results_markdown
from dyndnn.record import runlock
from dyndnn.record.atomic import write_text
from dyndnn.record.layout import GROUP_MODEL, RunLayout
from dyndnn.record.manifest import git_state, now, sha256_file, write_manifest

MAX_BYTES = 10 * 2**20  # a reference run is committed: every clone carries it
MAX_CHECKPOINT_BYTES = 8 * 2**20  # the group model's final checkpoint travels up to this
RECORD_RESERVE_BYTES = 256 * 2**10  # kept free for manifest.json and RESULTS.md, written last
RESULTS_FILE = "RESULTS.md"
TABLES = ("train.csv", "eval.csv", "profile.csv", "operating_points.csv", "rct.csv",
          "rct_history.csv", "rct_bits.csv", "rct_group.csv", "runtime.csv",
          "runtime_summary.csv", "runtime_calibration.csv")
RECORD = ("config.yaml", "summary.json")  # manifest.json is rewritten with ``published``
WRITTEN = ("manifest.json", RESULTS_FILE, ".lock")  # in a publication, beside the copied files
CONTEXT = ["board", "backend", "batch", "mapping", "freq_label"]  # a profile sweep's contexts


@dataclass(frozen=True)
class Publication:
    """A published reference run: its folder, files (bytes each) and what stayed behind."""

    root: Path
    file_bytes: dict[str, int]
    left_out: dict[str, str]
    replaced: bool = False  # an earlier publication of the same run was there

    def report(self) -> str:
        """What was published where, and its size."""
        total = sum(self.file_bytes.values())
        return (f"published {len(self.file_bytes)} files ({total / 2**20:.2f} MiB) to "
                f"{self.root}" + (" (replacing its earlier publication)" if self.replaced
                                  else "")
                + f"; {len(self.left_out)} left in the run folder; read "
                  f"{self.root / RESULTS_FILE}")


def publish(run_dir: str | Path | RunLayout, dest: str | Path, max_bytes: int = MAX_BYTES,
            max_checkpoint_bytes: int = MAX_CHECKPOINT_BYTES) -> Publication:
    """Publish the finished run ``run_dir`` into the folder ``dest``; see the module docstring."""
    layout = RunLayout.of(run_dir)
    if not layout.root.is_dir():
        raise PublishError(f"run folder {layout.root} does not exist: name a finished run "
                           "folder for --out (outputs/<time>-<config>)")
    if not layout.is_run_folder():
        raise PublishError(f"{layout.root} is not a dyndnn run folder (no manifest.json written "
                           "by dyndnn): publish the folder a pipeline or stage wrote")
    dest = Path(dest).absolute()
    # compared where they really are: `RUN/x/../pub` and a link to the run are the run too
    where, run_at = dest.resolve(), layout.root.resolve()
    if where == run_at or run_at in where.parents:
        raise PublishError(f"{dest} is inside the run folder {layout.root} (it is {where}): "
                           "publish to a folder of its own, e.g. results/<device>-<config>")
    replaced = _check_destination(dest, layout.root.absolute(), _source_manifest(layout))
    with layout.lock():  # no stage rewrites the run while it is checked and copied
        manifest = _finished_manifest(layout)
        evaluation, points, summary = _consistent_tables(layout, manifest)
        files, left_out = _chosen_files(layout, manifest, max_checkpoint_bytes)
        _check_size(files, layout, max_bytes)
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            sizes = _copy(layout.root, staging, files)
            record = portable_copies(manifest, layout.root.absolute(), staging)
            sizes.update({f: (staging / f).stat().st_size for f in RECORD if f in sizes})
            published = {"name": dest.name, "from": layout.root.name,
                         "source": source_of(layout.root, manifest), "at": now(),
                         "git": git_state(),
                         "files_sha256": {f: sha256_file(staging / f) for f in sizes},
                         "left_out": left_out}
            manifest = {**record, "published": published}
            write_manifest(staging, manifest)
            sizes["manifest.json"] = (staging / "manifest.json").stat().st_size
            text = results_markdown(manifest, summary, evaluation, points, sizes, left_out,
                                    _runtime_summary(staging))
            write_text(staging / RESULTS_FILE, text)
            sizes[RESULTS_FILE] = (staging / RESULTS_FILE).stat().st_size
            _readable_by_all(staging)
            _replace(staging, dest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return Publication(dest, dict(sorted(sizes.items())), left_out, replaced)


def is_publication(folder: str | Path) -> bool:
    """True if ``folder`` holds a reference run this module wrote (RESULTS.md + ``published``)."""
    folder = Path(folder)
    return (folder / RESULTS_FILE).is_file() and RunLayout(folder).is_published()


def refresh_results(folder: str | Path) -> Path:
    """Write a reference run's ``RESULTS.md`` again from its own files.

    For a deliberate change of its wording or table format; the files' hashes must hold.
    """
    problems = [p for p in verify_publication(folder) if not p.startswith(RESULTS_FILE)]
    if problems:
        raise PublishError(f"{folder} is not as published ({'; '.join(problems)}): publish its "
                           "run folder again instead")
    return write_text(Path(folder) / RESULTS_FILE, _results_text(Path(folder)))


def _results_text(folder: Path) -> str:
    """``RESULTS.md`` as the publication's own files give it."""
    manifest = json.loads((folder / "manifest.json").read_text())
    published = manifest["published"]
    evaluation, points = load_run(folder)
    sizes = {name: (folder / name).stat().st_size for name in published["files_sha256"]}
    sizes["manifest.json"] = (folder / "manifest.json").stat().st_size
    summary = json.loads((folder / "summary.json").read_text())
    return results_markdown(manifest, summary, evaluation, points, sizes,
                            published["left_out"], _runtime_summary(folder))


def _runtime_summary(folder: Path) -> pd.DataFrame | None:
    """The runtime experiment's summary where the run has one (07_runtime)."""
    path = folder / "runtime_summary.csv"
    return pd.read_csv(path) if path.is_file() else None


def verify_publication(folder: str | Path) -> list[str]:
    """What no longer holds in a reference run: an empty list when it is as published.

    Each file's SHA-256 is the one recorded when it was published, and ``RESULTS.md`` is what
    its tables give now (it is written again from them and compared).
    """
    folder = Path(folder)
    if not is_publication(folder):
        return [f"{folder} is not a reference run written by publish"]
    manifest = json.loads((folder / "manifest.json").read_text())
    published = manifest["published"]
    problems = [f"{name}: missing" if not (folder / name).is_file() else
                f"{name}: SHA-256 differs from the published one"
                for name, digest in published["files_sha256"].items()
                if not (folder / name).is_file() or sha256_file(folder / name) != digest]
    if problems:
        return problems
    if (folder / RESULTS_FILE).read_text() != _results_text(folder):
        problems.append(f"{RESULTS_FILE} differs from what the folder's tables give: after a "
                        "deliberate change of its format, dyndnn.publish.refresh_results(folder)"
                        " writes it again")
    return problems


def _source_manifest(layout: RunLayout) -> dict[str, Any]:
    try:
        return json.loads(layout.manifest_file.read_text())
    except (OSError, ValueError):
        return {}  # _finished_manifest, under the lock, says what is wrong with it


def _check_destination(dest: Path, source: Path, manifest: dict[str, Any]) -> bool:
    """Refuse a destination whose files would be lost; True if it holds this run's publication.

    Only a publication of the same run folder is replaced, and only when it holds nothing but
    what publishing wrote (a figure or note added there would be deleted with it).
    """
    if dest.exists() and not dest.is_dir():
        raise PublishError(f"{dest} is a file: name a folder for --to")
    if not dest.is_dir() or not any(dest.iterdir()):
        return False
    if not is_publication(dest):
        raise PublishError(f"{dest} is not empty and holds no reference run written by "
                           "publish; nothing is written over files it did not make. Choose a "
                           "new folder for --to.")
    published = json.loads((dest / "manifest.json").read_text())["published"]
    if not same_source(published, source, manifest):
        raise PublishError(f"{dest} holds the reference run published from "
                           f"{published.get('from')}, not from {source}; publishing would "
                           "replace it. Choose another --to, or remove that folder first.")
    added = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()
                   and p.relative_to(dest).as_posix() not in
                   {*published["files_sha256"], *WRITTEN})
    if added:
        raise PublishError(f"{dest} holds files publishing did not write ({', '.join(added[:5])}"
                           f"{', ...' if len(added) > 5 else ''}); replacing it would delete "
                           "them. Move them out, or choose another --to.")
    return True


def _finished_manifest(layout: RunLayout) -> dict[str, Any]:
    """The manifest of a run whose last command and every step's last run ended ``ok``."""
    manifest = json.loads(layout.manifest_file.read_text())
    status = manifest.get("status")
    if status != "ok":
        raise PublishError(f"{layout.root} is recorded as {status!r}, not 'ok': only a finished "
                           "run is published. Run its command again on the folder to finish "
                           "it (it resumes), then publish.")
    last = {(kind, step.get("name")): step.get("status") for kind in ("notebooks", "stages")
            for step in manifest.get(kind) or []}  # later runs of a step overwrite earlier
    unfinished = sorted(f"{name} ({status})" for (_, name), status in last.items()
                        if status != "ok")
    if unfinished:
        raise PublishError(f"{layout.root}: the last run of {', '.join(unfinished)} did not end "
                           "ok, so its tables may be partial. Run those steps again on the "
                           "folder, then analyse, then publish.")
    if not layout.config_file.is_file():
        raise PublishError(f"{layout.config_file} is missing: a run without its config cannot "
                           "say what ran; publish a folder the pipeline or a stage wrote")
    return manifest


def _not_all_configurations(table: pd.DataFrame, family: str, groups: int) -> list[int] | None:
    """The k ``table`` holds for ``family`` when they are not exactly 1..``groups``; else None."""
    found = set(table.loc[table["model"] == family, "groups"].astype(int))
    return None if found == set(range(1, groups + 1)) else sorted(found)


def _consistent_tables(layout: RunLayout, manifest: dict[str, Any]
                       ) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The run's tables, once they are shown to agree with its config and its analysis."""
    evaluation, points = load_run(layout)  # AnalysisError names a missing stage
    groups = int(manifest["config"]["model"]["groups"])
    families = list(manifest["config"]["model"]["models"])
    for family in families:
        evaluated = _not_all_configurations(evaluation, family, groups)
        if evaluated is not None:
            raise PublishError(
                f"eval.csv holds configurations {evaluated} of {family}, but the run "
                f"trained k=1..{groups}: evaluate again (python -m dyndnn evaluate --out "
                f"{layout.root}), then analyse")
        if not (points["model"] == family).any():
            raise PublishError(f"profile.csv has no point of {family}, which the run trained: "
                               f"profile again (python -m dyndnn profile --out {layout.root})")
    profiled = points[points["model"].isin(families)]
    for context, part in profiled.groupby(CONTEXT, dropna=False):
        for family in families:
            found = _not_all_configurations(part, family, groups)
            if found is not None:
                raise PublishError(
                    f"profile.csv has configurations {found} of {family} at "
                    f"{', '.join(map(str, context))}, not k=1..{groups}: a sweep cut short. "
                    f"Profile again (python -m dyndnn profile --out {layout.root}), then "
                    "analyse")
    analyse = f"python -m dyndnn analyse --out {layout.root}"
    if not (layout.summary_json.is_file() and layout.operating_points_csv.is_file()):
        raise PublishError(f"{layout.root} has not been analysed (no summary.json or "
                           f"operating_points.csv): run {analyse} (or notebook 04_analyse)")
    recorded = json.loads(layout.summary_json.read_text())
    recorded.pop("run_dir", None)
    computed = json.loads(json.dumps(summarise(evaluation, points)))
    if recorded != computed:
        changed = sorted(k for k in {*recorded, *computed} if recorded.get(k) != computed.get(k))
        raise PublishError(f"summary.json disagrees with eval.csv and profile.csv "
                           f"({', '.join(changed)} differ): a table changed after the "
                           f"analysis. Run {analyse}, then publish")
    try:
        pd.testing.assert_frame_equal(read_operating_points(layout.operating_points_csv),
                                      points, check_dtype=False, rtol=1e-9)
    except AssertionError as exc:
        raise PublishError(f"operating_points.csv disagrees with eval.csv and profile.csv "
                           f"({str(exc).splitlines()[0]}): run {analyse}, then publish") from exc
    return evaluation, points, computed


def _chosen_files(layout: RunLayout, manifest: dict[str, Any], max_checkpoint_bytes: int
                  ) -> tuple[list[str], dict[str, str]]:
    """The files that travel (relative paths) and, for the rest, why they stay."""
    root = layout.root
    files = [f for f in (*RECORD, *TABLES) if (root / f).is_file()]
    files += sorted(p.relative_to(root).as_posix() for p in layout.figures_dir.glob("*.png"))
    left_out: dict[str, str] = {}
    svgs = list(layout.figures_dir.glob("*.svg"))
    if svgs:
        left_out["figures/*.svg"] = f"{len(svgs)} vector copies of the PNG figures"
    if layout.notebooks_dir.is_dir():
        left_out["notebooks/"] = "the executed notebooks (their outputs are the files here)"
    groups = int(manifest["config"]["model"]["groups"])
    final = layout.final_checkpoint(GROUP_MODEL, groups)
    recorded = manifest.get("checkpoints_sha256") or {}
    if not final.is_file():
        left_out[final.relative_to(root).as_posix()] = "missing from the run folder"
    else:
        key = final.relative_to(layout.checkpoints_dir).as_posix()
        if recorded.get(key) != sha256_file(final):
            raise PublishError(f"{final} is not the checkpoint the manifest recorded (its "
                               "SHA-256 differs, or none was recorded): it changed after the "
                               "run, so the tables may describe another model. Restore it, or "
                               "evaluate, profile and analyse the folder again, then publish")
        size = final.stat().st_size
        if size <= max_checkpoint_bytes:
            files.append(final.relative_to(root).as_posix())
        else:
            left_out[final.relative_to(root).as_posix()] = (
                f"{size:,} bytes, over the {max_checkpoint_bytes:,} a published checkpoint may "
                "have")
    others = [p for p in layout.checkpoints_dir.rglob("*.pt") if p != final] \
        if layout.checkpoints_dir.is_dir() else []
    if others:
        left_out["checkpoints/"] = (f"{len(others)} other checkpoints, "
                                    f"{sum(p.stat().st_size for p in others) / 2**20:.1f} MiB")
    return files, left_out


def _check_size(files: list[str], layout: RunLayout, max_bytes: int) -> None:
    sizes = {f: (layout.root / f).stat().st_size for f in files}
    total = sum(sizes.values()) + RECORD_RESERVE_BYTES
    if total > max_bytes:
        largest = sorted(sizes.items(), key=lambda item: -item[1])[:5]
        raise PublishError(
            f"the reference run would hold {total:,} bytes with its record, over the "
            f"{max_bytes:,}-byte limit; the largest files: " + ", ".join(
                f"{f} {n:,} bytes" for f, n in largest)
            + ". Profile fewer repeats or batches, or fewer figures, in a new run folder.")


def _copy(source: Path, staging: Path, files: list[str]) -> dict[str, int]:
    sizes = {}
    for name in files:
        target = staging / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, target)
        sizes[name] = target.stat().st_size
    return sizes


def _readable_by_all(folder: Path) -> None:
    """Folders 755 and files 644, less the umask.

    A run folder's files are written through ``mkstemp`` (mode 600): private to the user who
    ran it, which a published folder should not be.
    """
    umask = os.umask(0)
    os.umask(umask)
    for path in [folder, *folder.rglob("*")]:
        path.chmod((0o755 if path.is_dir() else 0o644) & ~umask)


def _replace(staging: Path, dest: Path) -> None:
    """Put ``staging`` at ``dest``; a previous publication there is removed only after.

    Its lock is held meanwhile (05_explore holds it while it writes figures there), and it is
    moved back if the new one cannot take its place.
    """
    if dest.is_dir() and any(dest.iterdir()):
        with runlock.hold(dest / ".lock", f"reference run {dest}"):
            old = Path(tempfile.mkdtemp(prefix=f".{dest.name}.old.", dir=dest.parent))
            dest.rename(old / dest.name)
            try:
                staging.rename(dest)
            except OSError as exc:
                (old / dest.name).rename(dest)
                old.rmdir()
                raise PublishError(f"could not put the new publication at {dest} "
                                   f"({exc.strerror}); the earlier one is back in place") \
                    from exc
        shutil.rmtree(old)
        return
    if dest.is_dir():
        dest.rmdir()
    staging.rename(dest)
