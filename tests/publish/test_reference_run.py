"""Publishing a finished run as a reference run: what travels, RESULTS.md read off the tables,
the folder opened like any run folder, and every run that must not be published refused (exit 2,
the problem and the fix named, nothing written)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dyndnn.__main__ import main
from dyndnn.analysis import load_run, summarise
from dyndnn.config import config_from_flat
from dyndnn.errors import PublishError
from dyndnn.publish.reference_run import (
    MAX_BYTES,
    is_publication,
    publish,
    refresh_results,
    verify_publication,
)
from dyndnn.publish.results_md import host_line
from dyndnn.record.checkpoint import load_final_model
from dyndnn.record.layout import RunLayout
from dyndnn.record.manifest import sha256_file
from dyndnn.stages.explore import explore as explore_stage
from dyndnn.views.explorer import Explorer, explore

REFERENCE_RUNS = sorted(p for p in (Path(__file__).parents[2] / "results").glob("*")
                        if p.is_dir() and not p.name.startswith("."))


def params(*items):
    return sum((["-p", p] for p in items), [])


@pytest.fixture(scope="module")
def finished(analysed_run):
    """A run trained, evaluated, profiled and analysed by the command line (two families)."""
    return analysed_run


@pytest.fixture(scope="module")
def published(finished, tmp_path_factory):
    dest = tmp_path_factory.mktemp("results") / "vm-quick"
    assert main(["publish", "--out", str(finished), "--to", str(dest)]) == 0
    return dest


def copy_of(run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns(".lock"))
    return copy


def test_what_travels_and_what_stays(finished, published):
    files = {p.relative_to(published).as_posix() for p in published.rglob("*") if p.is_file()}
    assert {"RESULTS.md", "manifest.json", "config.yaml", "summary.json", "train.csv",
            "eval.csv", "profile.csv", "operating_points.csv",
            "checkpoints/stage2.pt"} <= files
    assert not any(f.endswith(".svg") or f.startswith("checkpoints/tann") for f in files)
    assert sum(p.stat().st_size for p in published.rglob("*") if p.is_file()) < MAX_BYTES
    record = json.loads((published / "manifest.json").read_text())["published"]
    assert record["from"] == finished.name  # the folder's name: no path of this machine
    assert record["source"] == {"run": finished.name, "created": json.loads(
        (finished / "manifest.json").read_text())["created"]}
    assert record["files_sha256"]["checkpoints/stage2.pt"] == sha256_file(
        finished / "checkpoints" / "stage2.pt")
    assert all(sha256_file(published / f) == d for f, d in record["files_sha256"].items())
    assert "checkpoints/" in record["left_out"]  # tann's and the group's earlier stage
    assert is_publication(published) and verify_publication(published) == []
    umask = os.umask(0)
    os.umask(umask)
    assert {oct(p.stat().st_mode & 0o777) for p in published.rglob("*") if p.is_file()} == \
        {oct(0o644 & ~umask)}  # readable by all, though the run folder's files are 600
    assert oct(published.stat().st_mode & 0o777) == oct(0o755 & ~umask)


def test_results_md_states_the_numbers_of_the_tables(finished, published):
    text = (published / "RESULTS.md").read_text()
    evaluation = pd.read_csv(finished / "eval.csv")
    for _, row in evaluation.iterrows():
        assert f"{100 * row['accuracy']:.2f} ({100 * row['val_accuracy']:.2f})" in text
    summary = json.loads((finished / "summary.json").read_text())
    tann = next(r for r in summary["comparison"] if r["model"] == "tann")
    assert f"| tann          | eager     | {tann['time_x_median']:.2f}x (" in text
    assert "= time range (modelled: constant power per mapping" in text  # not a finding
    assert "| paper (up to) |           | 2.73x" in text and "2.36x" in text
    manifest = json.loads((finished / "manifest.json").read_text())
    assert manifest["git"]["commit"] in text
    commands = ["`python -m dyndnn train --config quick --out <run> -p groups=2 -p "
                "'models=[group,tann]'", *(f"`python -m dyndnn {stage} --out <run>`"
                                         for stage in ("evaluate", "profile", "analyse"))]
    assert all(command in text for command in commands), text
    assert text.count(f"on {host_line(manifest['host'])}") == 4  # where each command ran
    assert "\nEnergy MODELLED by CPU power model" in text  # no sensor here: said at the top
    assert text.startswith("# Reference run vm-quick\n")


def test_a_run_with_its_runtime_experiment_publishes_it(finished, tmp_path):
    """runtime.csv and its summary travel, and RESULTS.md shows the policies' table."""
    run = copy_of(finished, tmp_path)
    assert main(["runtime", "--out", str(run), "--no-progress",
                 *params("runtime_duration_s=0.6", "runtime_window_s=0.1",
                         "runtime_backends=[eager]", "runtime_scenarios=[hog]")]) == 0
    dest = tmp_path / "results" / "with-runtime"
    assert main(["publish", "--out", str(run), "--to", str(dest)]) == 0
    assert {"runtime.csv", "runtime_summary.csv", "runtime_calibration.csv"} <= {
        p.name for p in dest.iterdir()}
    text = (dest / "RESULTS.md").read_text()
    assert "## Runtime policies under contention" in text
    summary = pd.read_csv(run / "runtime_summary.csv")
    for row in summary.itertuples():
        assert f"| {row.policy}" in text
    assert "(modelled)" in text  # energy per inference: the profile's modelled power


def test_the_reference_run_opens_like_a_run_folder(finished, published, tmp_path):
    evaluation, points = load_run(published)
    pd.testing.assert_frame_equal(points, load_run(finished)[1])
    recorded = json.loads((published / "summary.json").read_text())
    recorded.pop("run_dir")
    assert json.loads(json.dumps(summarise(evaluation, points))) == recorded
    view = explore(points, batch=1, latency_s=float(points["latency_s"].median()))
    assert view.choice.point["latency_s"] <= float(points["latency_s"].median())
    assert Explorer(points).view.choice.point["model"] in {"group", "tann"}
    copy = copy_of(published, tmp_path)  # 05_explore writes its figures into the folder
    result = explore_stage(config_from_flat({"live_demo_s": 0}), str(copy))  # as it calls it
    assert (copy / "figures" / "runtime_simulation.png").is_file() and len(result.points)
    assert load_final_model(RunLayout(copy), "group", 2).groups == 2
    assert verify_publication(copy) == []  # its figures are beside, not over, the published


@pytest.mark.parametrize("stage", ["explore", "profile", "analyse", "run"])
def test_a_stage_does_not_write_into_a_reference_run(published, capsys, stage):
    before = {p: p.read_bytes() for p in published.rglob("*") if p.is_file()}
    assert main([stage, "--out", str(published)]) == 2
    assert "is a published reference run: it is read, not written" in capsys.readouterr().err
    assert {p: p.read_bytes() for p in published.rglob("*") if p.is_file()} == before


def test_publishing_again_replaces_a_publication_of_the_same_run(finished, published,
                                                                 tmp_path):
    dest = copy_of(published, tmp_path)
    old_manifest = (dest / "manifest.json").read_bytes()
    publication = publish(finished, dest)
    assert publication.replaced and "replacing its earlier publication" in publication.report()
    assert (dest / "manifest.json").read_bytes() != old_manifest  # a new publication time
    assert verify_publication(dest) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy")]  # no leftovers


def test_a_publication_is_not_replaced_where_files_would_be_lost(finished, published,
                                                                 tmp_path):
    dest = copy_of(published, tmp_path)
    (dest / "figures" / "mine.png").write_bytes(b"a user's figure")
    with pytest.raises(PublishError, match=r"holds files publishing did not write \(figures/"
                                           r"mine.png\); replacing it would delete them"):
        publish(finished, dest)
    assert (dest / "figures" / "mine.png").read_bytes() == b"a user's figure"
    other = copy_of(finished, tmp_path / "other")
    with pytest.raises(PublishError, match="holds the reference run published from .*, not "
                                           "from .*other/copy; publishing would replace it"):
        publish(other, published)
    assert verify_publication(published) == []


def test_a_failed_replacement_puts_the_earlier_publication_back(finished, published, tmp_path,
                                                                monkeypatch):
    dest = copy_of(published, tmp_path)
    before = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    rename = Path.rename

    def failing(self, target):
        if self.name.startswith(".copy.") and Path(target) == dest:  # the new one's move
            raise OSError(28, "No space left on device")
        return rename(self, target)

    monkeypatch.setattr(Path, "rename", failing)
    with pytest.raises(PublishError, match="No space left on device.*earlier one is back"):
        publish(finished, dest)
    monkeypatch.undo()
    after = {p.relative_to(dest): p.read_bytes() for p in dest.rglob("*") if p.is_file()}
    assert {p: b for p, b in after.items() if p.name != ".lock"} == before  # lock: held then
    assert [p.name for p in tmp_path.iterdir()] == ["copy"]  # no staging or old folder left


def test_refresh_rewrites_results_md_only_where_the_files_hold(published, tmp_path):
    copy = copy_of(published, tmp_path)
    (copy / "RESULTS.md").write_text("an older wording\n")
    assert "RESULTS.md differs" in verify_publication(copy)[0]
    refresh_results(copy)
    assert verify_publication(copy) == []
    (copy / "eval.csv").write_text((copy / "eval.csv").read_text() + "\n")
    with pytest.raises(PublishError, match="eval.csv: SHA-256 differs"):
        refresh_results(copy)


def test_a_tampered_reference_run_is_found(published, tmp_path):
    copy = copy_of(published, tmp_path)
    frame = pd.read_csv(copy / "eval.csv")
    frame.loc[0, "accuracy"] = 0.999
    frame.to_csv(copy / "eval.csv", index=False)
    assert verify_publication(copy) == ["eval.csv: SHA-256 differs from the published one"]
    copy2 = copy_of(published, tmp_path / "b")
    (copy2 / "RESULTS.md").write_text((copy2 / "RESULTS.md").read_text() + "edited\n")
    assert "RESULTS.md differs" in verify_publication(copy2)[0]


def _status(run):
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["status"] = "interrupted"
    (run / "manifest.json").write_text(json.dumps(manifest))


def _edit_accuracy(run):
    frame = pd.read_csv(run / "eval.csv")
    frame.loc[0, "accuracy"] += 0.01
    frame.to_csv(run / "eval.csv", index=False)


def _drop_family(run):
    frame = pd.read_csv(run / "profile.csv")
    frame[frame["model"] != "tann"].to_csv(run / "profile.csv", index=False)


def _drop_configuration(run):
    frame = pd.read_csv(run / "eval.csv")
    frame[frame["groups"] != 2].to_csv(run / "eval.csv", index=False)


def _edit_points(run):
    frame = pd.read_csv(run / "operating_points.csv")
    frame.loc[0, "latency_s"] *= 2
    frame.to_csv(run / "operating_points.csv", index=False)


def _checkpoint(run):
    with open(run / "checkpoints" / "stage2.pt", "ab") as f:
        f.write(b"\0")


def _unrecorded_checkpoint(run):
    manifest = json.loads((run / "manifest.json").read_text())
    del manifest["checkpoints_sha256"]["stage2.pt"]
    (run / "manifest.json").write_text(json.dumps(manifest))


def _interrupted_profile(run):  # a later command ended ok: the run's status says ok
    manifest = json.loads((run / "manifest.json").read_text())
    step = next(s for s in manifest["stages"] if s["name"] == "profile")
    step["status"] = "interrupted"
    (run / "manifest.json").write_text(json.dumps(manifest))


def _profile_cut_short(run):  # and analysed again, so the summary matches it
    frame = pd.read_csv(run / "profile.csv")
    frame[~((frame["model"] == "tann") & (frame["groups"] == 2))].to_csv(run / "profile.csv",
                                                                         index=False)
    assert main(["analyse", "--out", str(run)]) == 0


@pytest.mark.parametrize("damage, says", [
    (_status, "recorded as 'interrupted'"),
    (lambda run: (run / "summary.json").unlink(), "has not been analysed"),
    (lambda run: (run / "profile.csv").unlink(), "run notebook 03_profile"),
    (_edit_accuracy, "summary.json disagrees with eval.csv and profile.csv (accuracy"),
    (_drop_family, "profile.csv has no point of tann"),
    (_drop_configuration, "eval.csv holds configurations [1] of group"),
    (_edit_points, "operating_points.csv disagrees"),
    (_checkpoint, "not the checkpoint the manifest recorded"),
    (_unrecorded_checkpoint, "or none was recorded"),
    (_interrupted_profile, "the last run of profile (interrupted) did not end ok"),
    (_profile_cut_short, "profile.csv has configurations [1] of tann at "),
    (lambda run: (run / "manifest.json").unlink(), "not a dyndnn run folder"),
])
def test_a_run_that_contradicts_itself_is_not_published(finished, tmp_path, capsys, damage,
                                                        says):
    run = copy_of(finished, tmp_path)
    damage(run)
    dest = tmp_path / "results" / "x"
    assert main(["publish", "--out", str(run), "--to", str(dest)]) == 2
    err = capsys.readouterr().err
    assert says in err, err
    assert not dest.exists() and not any((tmp_path / "results").glob(".*"))


def test_a_foreign_or_inner_destination_and_an_oversized_run_are_refused(finished, tmp_path,
                                                                        capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    assert main(["publish", "--out", str(finished), "--to", str(foreign)]) == 2
    assert "not empty" in capsys.readouterr().err and (foreign / "notes.txt").read_text() == "keep"
    assert main(["publish", "--out", str(finished), "--to", str(finished / "pub")]) == 2
    assert "inside the run folder" in capsys.readouterr().err
    assert not (finished / "pub").exists()
    # the same place by another name: through '..', and through a link to the run
    (tmp_path / "link").symlink_to(finished)
    for dest in (finished / "x" / ".." / "pub", tmp_path / "link" / "pub", tmp_path / "link"):
        assert main(["publish", "--out", str(finished), "--to", str(dest)]) == 2, dest
        assert "inside the run folder" in capsys.readouterr().err
        assert not (finished / "pub").exists() and not (finished / "x").exists()
    with pytest.raises(PublishError, match="over the 1,000-byte limit; the largest files: "
                                           "checkpoints"):
        publish(finished, tmp_path / "big", max_bytes=1000)
    assert not (tmp_path / "big").exists()


def test_a_large_checkpoint_stays_behind(finished, tmp_path):
    publication = publish(finished, tmp_path / "small", max_checkpoint_bytes=100)
    assert "checkpoints/stage2.pt" not in publication.file_bytes
    assert "over the 100 a published checkpoint may have" in \
        publication.left_out["checkpoints/stage2.pt"]
    assert "05_explore needs it" in (tmp_path / "small" / "RESULTS.md").read_text()
    assert verify_publication(tmp_path / "small") == []


@pytest.mark.parametrize("folder", REFERENCE_RUNS, ids=lambda p: p.name)
def test_each_committed_reference_run_is_as_published_and_opens(folder):
    assert verify_publication(folder) == []
    evaluation, points = load_run(folder)
    assert Explorer(points).view.choice is not None
    assert set(evaluation["model"]) == set(points["model"])


@pytest.mark.parametrize("folder", REFERENCE_RUNS, ids=lambda p: p.name)
def test_each_committed_reference_run_reads_the_same_from_another_checkout(folder, tmp_path):
    """CI clones the repository elsewhere: RESULTS.md must follow from the record alone."""
    checkout = tmp_path / "elsewhere"
    shutil.copytree(Path(__file__).parents[2] / "lib", checkout / "lib",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(Path(__file__).parents[2] / "configs", checkout / "configs")
    script = ("import sys; from dyndnn import publish, resources; "
              "assert resources.SOURCE_ROOT == __import__('pathlib').Path(sys.argv[1]); "
              "print(publish.verify_publication(sys.argv[2]))")
    found = subprocess.run([sys.executable, "-c", script, str(checkout), str(folder)],
                           env={**os.environ, "PYTHONPATH": str(checkout / "lib")},
                           capture_output=True, text=True, check=True, cwd=tmp_path)
    assert found.stdout.strip() == "[]", found.stderr


def published_files(folder):
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*")
            if p.is_file() and p.suffix in (".md", ".json", ".yaml", ".csv")}


def test_a_publication_names_no_path_of_the_machine_that_made_it(finished, published):
    """Commands re-typeable anywhere: shipped config by name, the run as <run>, nothing absolute."""
    from dyndnn.publish.portable import absolute_paths

    # the run's own record does hold this machine's paths (a resumed stage needs them)
    assert absolute_paths((finished / "manifest.json").read_text())
    found = {name: absolute_paths(text) for name, text in published_files(published).items()}
    assert {name: paths for name, paths in found.items() if paths} == {}
    text = (published / "RESULTS.md").read_text()
    assert "`python -m dyndnn train --config quick --out <run>" in text
    assert "`python -m dyndnn evaluate --out <run>`" in text
    assert f"from run folder {finished.name} (commit" in text
    manifest = json.loads((published / "manifest.json").read_text())
    assert manifest["run_dir"] == "<run>" and manifest["config"]["data"]["data_root"] == "data"
    assert json.loads((published / "summary.json").read_text())["run_dir"] == "<run>"


def test_a_copy_of_the_run_elsewhere_is_another_source(finished, published, tmp_path):
    """The same run folder replaces its publication; a folder of another run does not."""
    moved = copy_of(finished, tmp_path)  # same name? no: "copy"; rename it to the run's name
    twin = moved.rename(tmp_path / finished.name)
    manifest = json.loads((twin / "manifest.json").read_text())
    (twin / "manifest.json").write_text(json.dumps({**manifest, "created": "2000-01-01"}))
    with pytest.raises(PublishError, match="holds the reference run published from"):
        publish(twin, published)


@pytest.mark.parametrize("folder", REFERENCE_RUNS, ids=lambda p: p.name)
def test_each_committed_reference_run_names_no_absolute_path(folder):
    from dyndnn.publish.portable import absolute_paths

    found = {name: absolute_paths(text) for name, text in published_files(folder).items()}
    assert {name: paths for name, paths in found.items() if paths} == {}


def test_an_older_publication_is_made_portable_keeping_its_numbers(finished, published,
                                                                   tmp_path):
    """As one published before paths were made portable: absolute paths in its record."""
    import yaml

    from dyndnn.publish.migrate import make_portable
    from dyndnn.publish.portable import absolute_paths

    old = shutil.copytree(published, tmp_path / "old")
    manifest = json.loads((old / "manifest.json").read_text())
    published_record = manifest.pop("published")
    published_record.pop("source")
    published_record["from"] = str(finished)
    config = yaml.safe_load((old / "config.yaml").read_text())
    config["data"]["data_root"] = "/somewhere/data"
    (old / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    summary = json.loads((old / "summary.json").read_text())
    (old / "summary.json").write_text(json.dumps({**summary, "run_dir": str(finished)}))
    for name in ("config.yaml", "summary.json"):
        published_record["files_sha256"][name] = sha256_file(old / name)
    (old / "manifest.json").write_text(json.dumps(
        {**manifest, "run_dir": str(finished), "published": published_record}))
    tables = {name: sha256_file(old / name) for name in ("eval.csv", "profile.csv")}

    assert make_portable(old, finished)[-2:] == ["manifest.json", "RESULTS.md"]
    assert verify_publication(old) == []
    assert {n: p for n, t in published_files(old).items() if (p := absolute_paths(t))} == {}
    assert {name: sha256_file(old / name) for name in tables} == tables
    (old / "eval.csv").write_text("tampered")  # and a folder whose files changed is refused
    with pytest.raises(PublishError, match="eval.csv: SHA-256 differs"):
        make_portable(old, finished)
