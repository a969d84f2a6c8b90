"""Publishing a finished run as a reference run: what travels, RESULTS.md read off the tables,
the folder opened like any run folder, and every run that must not be published refused (exit 2,
the problem and the fix named, nothing written)."""

import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from dyndnn.__main__ import main
from dyndnn.analysis import load_run, summarise
from dyndnn.checkpoint import load_final_model
from dyndnn.explorer import Explorer, explore
from dyndnn.layout import RunLayout
from dyndnn.manifest import sha256_file
from dyndnn.publish import MAX_BYTES, is_publication, publish, verify_publication

TINY = ["groups=2", "models=[group,tann]", "train_limit=256", "test_limit=200",
        "epochs_per_stage=1", "batch_size=64", "threads=1", "repeats=2", "warmup=1",
        "profile_batches=[1]", "window_s=0.05", "live_demo_s=0", "backends=[eager]"]
REFERENCE_RUNS = sorted(p for p in (Path(__file__).parents[1] / "results").glob("*")
                        if p.is_dir())


def params(*items):
    return sum((["-p", p] for p in items), [])


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A run trained, evaluated, profiled and analysed by the command line (two families)."""
    run = tmp_path_factory.mktemp("pub") / "run"
    assert main(["train", "--config", "quick", "--out", str(run), "--no-progress",
                 *params(*TINY)]) == 0
    for stage in ("evaluate", "profile", "analyse"):
        assert main([stage, "--out", str(run), "--no-progress"]) == 0, stage
    return run


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
    assert record["from"] == str(finished)
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
    assert f"| tann       | eager     | {tann['time_x_median']:.2f}x" in text
    assert "| paper      |           | 2.73x" in text and "2.36x" in text
    manifest = json.loads((finished / "manifest.json").read_text())
    assert manifest["git"]["commit"] in text
    commands = [f"`python -m dyndnn train --config quick --out {finished} -p groups=2 -p "
                "models=[group,tann]", *(f"`python -m dyndnn {stage} --out {finished}`"
                                         for stage in ("evaluate", "profile", "analyse"))]
    assert all(command in text for command in commands), text
    assert "\nEnergy MODELLED by CPU power model" in text  # no sensor here: said at the top
    assert text.startswith("# Reference run vm-quick\n")


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
    assert main(["explore", "--out", str(copy), "-p", "live_demo_s=0"]) == 0
    assert load_final_model(RunLayout(copy), "group", 2).groups == 2


def test_publishing_again_replaces_a_publication(finished, published, tmp_path):
    dest = copy_of(published, tmp_path)
    (dest / "figures" / "stale.png").write_bytes(b"old")
    assert publish(finished, dest).root == dest
    assert not (dest / "figures" / "stale.png").exists() and verify_publication(dest) == []
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".copy")]  # no leftovers


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


@pytest.mark.parametrize("damage, says", [
    (_status, "recorded as 'interrupted'"),
    (lambda run: (run / "summary.json").unlink(), "has not been analysed"),
    (lambda run: (run / "profile.csv").unlink(), "run notebook 03_profile"),
    (_edit_accuracy, "summary.json disagrees with eval.csv and profile.csv (accuracy"),
    (_drop_family, "profile.csv has no point of tann"),
    (_drop_configuration, "eval.csv holds configurations [1] of group"),
    (_edit_points, "operating_points.csv disagrees"),
    (_checkpoint, "not the checkpoint the manifest recorded"),
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
    with pytest.raises(Exception, match="over the 0 MiB limit; the largest files: checkpoints"):
        publish(finished, tmp_path / "big", max_bytes=1000)
    assert not (tmp_path / "big").exists()


def test_a_large_checkpoint_stays_behind(finished, tmp_path):
    publication = publish(finished, tmp_path / "small", max_checkpoint_bytes=100)
    assert "checkpoints/stage2.pt" not in publication.files
    assert "over the 0 MiB a published checkpoint may have" in \
        publication.left_out["checkpoints/stage2.pt"]
    assert verify_publication(tmp_path / "small") == []


@pytest.mark.parametrize("folder", REFERENCE_RUNS, ids=lambda p: p.name)
def test_each_committed_reference_run_is_as_published_and_opens(folder):
    assert verify_publication(folder) == []
    evaluation, points = load_run(folder)
    assert Explorer(points).view.choice is not None
    assert set(evaluation["model"]) == set(points["model"])
