"""The papermill chain: a smoke run of the real notebooks, failures, bad input."""

import json
from pathlib import Path

import pandas as pd
import pytest

from dyndnn.__main__ import main
from dyndnn.errors import NotebookError
from dyndnn.pipeline import run_pipeline
from dyndnn.record.checkpoint import sha256_file

TEST_NOTEBOOKS = Path(__file__).parent / "notebooks"
TINY = ["train_limit=256", "test_limit=200", "epochs_per_stage=1", "groups=2", "batch_size=64",
        "threads=1", "repeats=1", "warmup=1", "profile_batches=[1]", "window_s=0.05",
        "rct_epochs=1", "rct_train_limit=256", "rct_width=0.125", "text_epochs=1",
        "live_demo_s=2", "runtime_duration_s=0.5", "runtime_window_s=0.1",
        # the chain is what this tests: two engines (the quick config's other two, 11 s more
        # here, go through every stage in tests/test_cli.py and through papermill in make run)
        "backends=[eager,onnxruntime]"]


def test_smoke_whole_chain_through_papermill(tmp_path):
    run_dir = tmp_path / "run"
    assert main(["run", "--config", "configs/quick.yaml", "--out", str(run_dir),
                 "--no-progress", *sum((["-p", p] for p in TINY), [])]) == 0
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["seed"] == 0
    assert manifest["config"]["model"]["groups"] == 2
    assert manifest["git"]["commit"] and manifest["packages"]["torch"]
    assert manifest["start"] <= manifest["end"]
    assert [n["notebook"] for n in manifest["notebooks"]] == [
        "01_train.ipynb", "02_evaluate.ipynb", "03_profile.ipynb", "04_analyse.ipynb",
        "05_explore.ipynb", "06_rct.ipynb", "07_runtime.ipynb"]
    for entry in manifest["notebooks"]:
        assert Path(entry["executed"]).is_file() and entry["status"] == "ok"
    hashes = manifest["checkpoints_sha256"]
    assert {"stage1.pt", "stage2.pt"} <= set(hashes)
    assert hashes["stage2.pt"] == sha256_file(run_dir / "checkpoints" / "stage2.pt")
    assert "tann/stage2.pt" in hashes and "slimmable/stage1.pt" in hashes  # the baselines
    train = pd.read_csv(run_dir / "train.csv")
    stages = train.groupby("model", sort=False)["stage"].apply(list).to_dict()
    assert stages == {"group": [1, 2], "independent": [1, 2], "tann": [1, 2],
                      "slimmable": [1, 1]}  # one joint stage of quick's 2 x epochs_per_stage
    evaluation = pd.read_csv(run_dir / "eval.csv")
    assert evaluation.groupby("model")["groups"].apply(list).to_dict() == {
        m: [1, 2] for m in stages}
    group = evaluation[evaluation["model"] == "group"]
    assert group["macs"].iloc[1] == 2 * group["macs"].iloc[0]
    independent = evaluation[evaluation["model"] == "independent"]
    assert independent["serving_bytes"].iloc[0] == independent["param_bytes"].sum()
    assert independent["load_s"].gt(0).all() and evaluation["assign_s"].gt(0).all()
    assert evaluation[["switch_eager_s", "switch_onnxruntime_s"]].notna().all().all()
    # the deployment bundle: both configurations over one weights file, and TorchScript
    bundle = json.loads((run_dir / "export" / "manifest.json").read_text())
    assert [c["file"] for c in bundle["configurations"]] == ["k1.onnx", "k2.onnx"]
    assert [c["accuracy"] for c in bundle["configurations"]] == group["accuracy"].tolist()
    assert (run_dir / "export" / "weights.bin").is_file()
    assert (run_dir / "export" / "group-k2.pt").is_file()
    assert (run_dir / "figures" / "configurations.svg").is_file()
    profile = pd.read_csv(run_dir / "profile.csv")
    # one row per (mapping, configuration): real latency, modelled energy on this host
    assert set(profile["groups"]) == {1, 2} and (profile["latency_s"] > 0).all()
    assert set(profile["backend"]) == {"eager", "onnxruntime"}
    assert set(profile["model"]) == set(stages)
    assert profile["threads_read"].tolist() == profile["threads"].tolist()
    assert (run_dir / "figures" / "latency_per_configuration.png").is_file()
    # 04_analyse: one operating point per (mapping, configuration), the summary, the figures
    points = pd.read_csv(run_dir / "operating_points.csv")
    assert len(points) == profile.groupby(["model", "backend", "cores", "groups"]).ngroups
    assert points["accuracy"].notna().all()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["points"] == len(points) and summary["dynamic_range"]
    # the comparison with the baselines, one headline row per baseline
    assert sorted((row["model"], row["backend"]) for row in summary["comparison"]) == [
        (m, b) for m in ("independent", "slimmable", "tann") for b in ("eager", "onnxruntime")]
    independent = next(r for r in summary["comparison"] if r["model"] == "independent")
    group_bytes = evaluation.loc[evaluation["model"] == "group", "serving_bytes"].iloc[0]
    assert independent["memory_x"] == pytest.approx(
        evaluation.loc[evaluation["model"] == "independent", "param_bytes"].sum() / group_bytes)
    for name in ("operating_points", "dynamic_ranges", "runtime_simulation", "runtime_live",
                 "comparison"):
        assert (run_dir / "figures" / f"{name}.png").is_file(), name
        assert (run_dir / "figures" / f"{name}.svg").is_file(), name
    # 05_explore: the executed notebook holds the explorer's widgets
    explored = json.loads((run_dir / "notebooks" / "05_explore.ipynb").read_text())
    assert any("application/vnd.jupyter.widget-view+json" in o.get("data", {})
               for c in explored["cells"] for o in c.get("outputs", []))
    # 06_rct: the contract's columns, one row per task and method; the re-trained group kept
    # 1..G-1
    rct = pd.read_csv(run_dir / "rct.csv")
    assert list(rct.columns[:7]) == ["task", "method", "accuracy", "param_bytes",
                                     "optimizer_bytes", "gemm_energy_j", "movement_energy_j"]
    assert list(zip(rct["task"], rct["method"], strict=True)) == [
        (task, method) for task in ("image", "text") for method in ("fp32", "qat", "rct")]
    assert (run_dir / "figures" / "rct_comparison_text.png").is_file()
    # too few steps to be worth two processes: the tasks trained in turn, and say on what
    assert (rct["tasks_side_by_side"] == 1).all() and (rct["threads"] >= 1).all()
    assert pd.read_csv(run_dir / "rct_group.csv")["earlier_groups_unchanged"].all()
    # 07_runtime: the quick config's short version, every policy on both engines
    runtime = pd.read_csv(run_dir / "runtime_summary.csv")
    assert set(runtime["backend"]) == {"eager", "onnxruntime"} and set(runtime["scenario"]) == {
        "hog"}
    assert (runtime["energy_provenance"] == "modelled").all()  # the profile's power model


def test_failing_notebook_stops_the_chain_and_is_kept(tmp_path):
    run_dir = tmp_path / "run"
    with pytest.raises(NotebookError) as info:
        run_pipeline(None, run_dir, ["notebooks=[ok, broken, after]"],
                     notebooks_dir=TEST_NOTEBOOKS, progress=False)
    message = str(info.value)
    # cell 4 counting the cell papermill injects; the source line says which one it is
    assert "broken.ipynb" in message and "cell 4" in message
    assert 'raise ValueError("boom' in message
    assert "ValueError: boom: purpose-made failure" in message
    kept = run_dir / "notebooks" / "broken.ipynb"
    assert kept.is_file() and str(kept) in message
    assert (run_dir / "ok.txt").is_file() and not (run_dir / "after.txt").exists()
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["status"] == "failed"
    assert manifest["notebooks"][-1]["error"]["ename"] == "ValueError"


def test_kernels_print_no_transport_warning_and_a_failing_cell_still_shows(tmp_path, capfd):
    run_dir = tmp_path / "run"
    with pytest.raises(NotebookError, match="ValueError: boom: purpose-made failure"):
        run_pipeline(None, run_dir, ["notebooks=[ok, broken]"], notebooks_dir=TEST_NOTEBOOKS,
                     progress=False)
    captured = capfd.readouterr()
    logs = [p.read_text() for p in sorted((run_dir / "notebooks").glob("*.kernel.log"))]
    assert len(logs) == 2  # both kernels ran, and each kept its own log
    # the kernels listen on Unix sockets in a private folder: the TCP warning has no cause
    for text in (captured.out, captured.err, *logs):
        assert "without encryption" not in text


def test_a_hung_cell_fails_the_chain_after_the_cell_timeout(tmp_path):
    with pytest.raises(NotebookError, match="slow.ipynb did not finish: CellTimeoutError"):
        run_pipeline(None, tmp_path / "run", ["notebooks=[slow]", "cell_timeout_s=3"],
                     notebooks_dir=TEST_NOTEBOOKS, progress=False)
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["status"] == "failed"


@pytest.mark.parametrize("args, message", [
    (["-p", "groups=0"], "model.groups must be >= 1"),
    (["-p", "active_groups=9"], "model.active_groups must be between 1 and groups"),
    (["-p", "epochs_per_stage=-2"], "train.epochs_per_stage must be >= 0"),
    (["-p", "dataset=imagenet"], "data.dataset must be one of"),
    (["-p", "colour=red"], "unknown config key 'colour'"),
    (["-p", "notebooks=[01_train, 99_missing]"], "99_missing'], which are not the workbook's"),
    (["-p", "notebooks=[../../../elsewhere/evil]"], "a config may name only 01_train, "),
    (["-p", "notebooks=[01_train, 01_train]"], "names ['01_train'] more than once"),
    (["-p", "notebooks=[02_evaluate, 01_train]"], "must keep the pipeline's order"),
    (["-p", "dataset=cifar10", "-p", "data_root=/nonexistent"], "python -m dyndnn fetch cifar10"),
])
def test_bad_input_fails_fast_with_a_clear_message(tmp_path, capsys, args, message):
    out = tmp_path / "run"
    assert main(["run", "--config", "configs/quick.yaml", "--out", str(out), *args]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()  # nothing was started


def test_a_notebooks_lines_reach_the_terminal_while_it_runs(tmp_path, monkeypatch, capsys):
    import time

    from dyndnn import pipeline

    arrived = []

    class Timed(pipeline.KernelLines):
        def write(self, text):
            arrived.append((time.monotonic(), text))
            return super().write(text)

    monkeypatch.setattr(pipeline, "KernelLines", Timed)
    run_pipeline(None, tmp_path / "run", ["notebooks=[epochs]"], notebooks_dir=TEST_NOTEBOOKS,
                 progress=True)
    lines = [(t, text.strip()) for t, text in arrived if "epoch" in text]
    assert [text for _, text in lines] == ["epoch 1/2: val acc 0.80", "epoch 2/2: val acc 0.85"]
    assert lines[1][0] - lines[0][0] > 1.0  # relayed as the cell printed, not when it ended
    assert "epochs | epoch 1/2: val acc 0.80" in capsys.readouterr().out
    arrived.clear()
    run_pipeline(None, tmp_path / "quiet", ["notebooks=[epochs]"],
                 notebooks_dir=TEST_NOTEBOOKS, progress=False)
    assert arrived == [] and "epoch 1/2" not in capsys.readouterr().out
