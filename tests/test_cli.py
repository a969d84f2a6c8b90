"""The command line on a run folder: each stage without Jupyter, and every refusal a careless
user met (exit 2, the problem and the fix named, nothing written)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from dyndnn.__main__ import main
from dyndnn.config import load_config
from dyndnn.models import GroupNet
from dyndnn.record.checkpoint import save_checkpoint
from dyndnn.record.layout import RunLayout
from dyndnn.serve.optional_engines import installed_backends

TINY = ["groups=2", "models=[group]", "train_limit=256", "test_limit=200",
        "epochs_per_stage=1", "batch_size=64", "threads=1"]
MEASURE = ["repeats=1", "warmup=1", "profile_batches=[1]", "window_s=0.05", "live_demo_s=0"]


def params(*items):
    return sum((["-p", p] for p in items), [])


def record(run):
    return {p.name: p.read_bytes() for p in (run / "config.yaml", run / "manifest.json")}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A run folder trained by ``python -m dyndnn train`` (no Jupyter)."""
    run = tmp_path_factory.mktemp("cli") / "run"
    assert main(["train", "--config", "quick", "--out", str(run), "--no-progress",
                 *params(*TINY)]) == 0
    return run


def test_train_evaluate_profile_analyse_explore_on_a_run_without_jupyter(trained, capsys):
    run = trained
    for stage in ("evaluate", "profile", "analyse", "explore"):
        assert main([stage, "--out", str(run), "--no-progress", *params(*MEASURE)]) == 0, stage
    out = capsys.readouterr().out
    assert "group: accuracy k=1" in out and "stage analyse complete" in out
    assert set(pd.read_csv(run / "eval.csv")["groups"]) == {1, 2}
    # the quick config's engines, each measured (the ones installed: the dev install has all)
    quick = load_config("configs/quick.yaml")
    assert set(pd.read_csv(run / "profile.csv")["backend"]) == set(
        installed_backends(quick.profile.backends)) == {"eager", "onnxruntime", "openvino",
                                                         "litert"}
    assert (run / "operating_points.csv").is_file() and (run / "summary.json").is_file()
    assert (run / "figures" / "runtime_simulation.svg").is_file()
    manifest = json.loads((run / "manifest.json").read_text())
    assert [s["name"] for s in manifest["stages"]] == ["train", "evaluate", "profile", "analyse",
                                                       "explore"]
    assert all(s["status"] == "ok" for s in manifest["stages"])
    assert manifest["config"]["profile"]["repeats"] == 1  # the folder's config, then -p


@pytest.mark.parametrize("change, listed", [
    (["seed=7", "lr=0.01"], "lr 0.1 -> 0.01, seed 0 -> 7"),
    (["epochs_per_stage=5"], "epochs_per_stage 1 -> 5"),
    (["groups=1"], "groups 2 -> 1"),
])
@pytest.mark.parametrize("command", ["run", "train", "evaluate"])
def test_a_changed_training_config_is_refused_and_lists_the_keys(trained, capsys, command,
                                                                 change, listed):
    before = record(trained)
    assert main([command, "--out", str(trained), *params(*change)]) == 2
    err = capsys.readouterr().err
    assert f"differs in: {listed}." in err and "new --out" in err
    assert record(trained) == before


@pytest.mark.parametrize("record", ["config.yaml", "checkpoints alone"])
def test_evaluate_called_as_its_notebook_does_takes_g_and_families_from_the_run(
        trained, tmp_path, record):
    from dyndnn.config import config_from_flat
    from dyndnn.resources import resource_dir
    from dyndnn.stages.evaluate import evaluate

    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    if record == "checkpoints alone":  # as notebooks run by hand leave a folder
        (copy / "config.yaml").unlink()
    # the notebook's parameters: no groups (the default config says 4), no models
    cfg = config_from_flat({"data_root": str(resource_dir("data")), "test_limit": 100,
                            "backends": ["eager"]})
    assert cfg.model.groups == 4
    result = evaluate(cfg, str(copy))
    assert result.table["groups"].tolist() == [1, 2]
    assert set(result.table["model"]) == {"group"}


def test_a_checkpoint_of_another_g_is_refused(trained, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(trained, copy)
    layout = RunLayout(copy)
    save_checkpoint(layout.final_checkpoint("group", 2),
                    GroupNet(groups=3, width=0.25, in_channels=1, image_size=28), stage=3)
    for stage in ("evaluate", "profile", "explore"):
        assert main([stage, "--out", str(copy), *params(*MEASURE)]) == 2
        assert "holds a model of G=3 groups but the config says groups=2" in \
            capsys.readouterr().err


def test_a_stage_without_its_checkpoint_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    with RunLayout(run).lock():
        pass
    assert main(["explore", "--out", str(run)]) == 2  # 05 no longer runs without a model
    assert "stage4.pt does not exist; train first" in capsys.readouterr().err


def test_a_busy_folder_is_refused_naming_the_holder(trained, capsys):
    hold = ("import sys, time\nfrom dyndnn.record.layout import RunLayout\n"
            "with RunLayout(sys.argv[1]).lock():\n    print('held', flush=True)\n"
            "    time.sleep(60)")
    holder = subprocess.Popen([sys.executable, "-c", hold, str(trained)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        before = record(trained)
        assert main(["run", "--out", str(trained), *params(*TINY)]) == 2
        assert f"is in use by process {holder.pid}" in capsys.readouterr().err
        assert record(trained) == before
    finally:
        holder.kill()
        holder.wait()


def test_out_on_a_file_or_a_foreign_folder_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "config.yaml").write_text("my notes\n")
    (mine / "train.csv").write_text("a,b\n")
    assert main(["run", "--out", str(mine)]) == 2
    assert "is not a dyndnn run folder" in capsys.readouterr().err
    assert (mine / "config.yaml").read_text() == "my notes\n"
    assert sorted(p.name for p in mine.iterdir()) == ["config.yaml", "train.csv"]
    assert main(["run", "--out", str(mine / "train.csv")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert main(["train", "--out", str(mine / "train.csv" / "run")]) == 2
    assert "cannot create run folder" in capsys.readouterr().err


def test_bad_config_files_exit_2_with_the_reason(tmp_path, capsys):
    (tmp_path / "list.yaml").write_text("- a\n")
    assert main(["run", "--config", str(tmp_path / "list.yaml"), "--out", str(tmp_path / "r")]) \
        == 2
    assert "must hold a mapping of sections" in capsys.readouterr().err
    assert main(["run", "--config", "nope.yaml"]) == 2
    assert "not as a path from" in capsys.readouterr().err


def wait_for(predicate, timeout_s=120.0):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("command", ["train", "run"])
def test_ctrl_c_prints_one_line_exits_130_and_records_interrupted(tmp_path, command):
    run = tmp_path / "run"
    slow = [*TINY[:-3], "epochs_per_stage=50", "batch_size=64", "threads=1",
            "notebooks=[01_train]"]
    proc = subprocess.Popen([sys.executable, "-m", "dyndnn", command, "--out", str(run),
                             "--no-progress", *params(*slow)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            cwd=Path(__file__).parents[1])
    # wait until training has saved an epoch: the kernel (run) or the process (train) is busy
    assert wait_for(lambda: RunLayout(run).resume_checkpoint().is_file())
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the whole group
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted"
    entries = manifest["notebooks" if command == "run" else "stages"]
    assert entries[-1]["status"] == "interrupted"


def test_sigterm_ends_a_stage_as_ctrl_c_does(tmp_path):
    run = tmp_path / "run"
    slow = [*TINY[:-3], "epochs_per_stage=50", "batch_size=64", "threads=1"]
    proc = subprocess.Popen([sys.executable, "-m", "dyndnn", "train", "--out", str(run),
                             "--no-progress", *params(*slow)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).parents[1])
    assert wait_for(lambda: RunLayout(run).resume_checkpoint().is_file())
    proc.send_signal(signal.SIGTERM)  # what kill, timeout and schedulers send, to the process
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert len(err.strip().splitlines()) == 1 and "interrupted" in err, err
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "interrupted" and manifest["stages"][-1]["status"] == (
        "interrupted")


@pytest.fixture
def small_disk(tmp_path):
    """A real file system of a few hundred kB (tmpfs); skipped where it cannot be mounted."""
    disks = []

    def mount(kilobytes):
        where = tmp_path / f"disk{len(disks)}"
        where.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kilobytes}k", "tmpfs",
                               str(where)], capture_output=True, text=True)
        if done.returncode:
            pytest.skip(f"cannot mount a small file system here ({done.stderr.strip()})")
        disks.append(where)
        return where

    yield mount
    for where in disks:
        subprocess.run(["umount", str(where)], capture_output=True)


def _fill(disk, leave_kb):
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(0, free - leave_kb * 1024))


def _temporaries(folder):
    return [p.name for p in folder.rglob("*") if ".tmp" in p.name]


def test_a_full_disk_while_training_is_named_exit_2_nothing_left_manifest_failed(small_disk,
                                                                                capsys):
    run = small_disk(300) / "run"  # room for the record, not for a checkpoint
    assert main(["train", "--config", "quick", "--out", str(run), "--no-progress",
                 *params(*TINY)]) == 2
    err = capsys.readouterr().err
    assert "no space left on device while writing" in err and "resume.pt" in err
    assert _temporaries(run) == []
    assert json.loads((run / "manifest.json").read_text())["status"] == "failed"


@pytest.mark.parametrize("leave_kb", [60, 800, 1200])
def test_a_full_disk_while_evaluating_is_named_never_a_native_abort(small_disk, capsys,
                                                                    leave_kb):
    """At some levels of free space torch's own file writer aborted the process (exit 134)."""
    disk = small_disk(6144)
    run = disk / "run"
    assert main(["train", "--config", "quick", "--out", str(run), "--no-progress",
                 *params(*TINY)]) == 0
    _fill(disk, leave_kb)
    code = subprocess.run([sys.executable, "-m", "dyndnn", "evaluate", "--out", str(run),
                           "--no-progress"], capture_output=True, text=True, timeout=300)
    assert code.returncode == 2, code.stderr[-2000:]
    assert "no space left on device while writing" in code.stderr
    assert _temporaries(run) == []
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "failed" and manifest["stages"][-1]["status"] == "failed"


def test_rct_says_a_missing_text_data_set_before_training_anything(trained, tmp_path,
                                                                   monkeypatch, capsys):
    from dyndnn.data import text as text_data
    from dyndnn.stages import rct as rct_stage

    monkeypatch.setattr(text_data, "DEBIAN_WORDNET", tmp_path / "no-wordnet")
    trained_methods = []
    monkeypatch.setattr(rct_stage, "compare_methods",
                        lambda *a, **k: trained_methods.append(a) or None)
    assert main(["rct", "--out", str(trained), "--no-progress",
                 *params("text_dataset=wordnet-supersense", f"data_root={tmp_path}")]) == 2
    assert "data set 'wordnet-supersense' not found" in capsys.readouterr().err
    assert trained_methods == []  # the image comparison never started
