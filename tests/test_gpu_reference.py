"""``scripts/gpu_reference.sh`` on this CPU: a tiny config, a stand-in NVML, no papermill.

So the only unknown on the GPU machine is the GPU: the script's stages, its deadline, what it
packs, and that the publication it makes is whole (``verify_publication``) once unpacked
elsewhere, all run here. ``tests/fakes`` holds the stand-ins (NVML at 250 W; papermill and
Jupyter's parts made unimportable, as they are missing there).
"""

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd

from dyndnn.publish import verify_publication

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_reference.sh"
TINY = ("dataset=fashion-mnist-mini device=cpu mappings=[cpu:0] meter=nvml models=[group] "
        "groups=2 width=0.0625 train_limit=400 test_limit=200 epochs_per_stage=1 repeats=1 "
        "profile_batches=[1] threads=1")


def run_script(tmp_path, budget_s, overrides=TINY, reserve_s=20):
    env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT / "tests" / "fakes"),
           "GPU_REFERENCE_OVERRIDES": overrides, "GPU_REFERENCE_NAME": "cpu-test-paper",
           "GPU_REFERENCE_WORK": str(tmp_path / "work"),
           "GPU_REFERENCE_RESERVE_S": str(reserve_s)}
    return subprocess.run(["bash", str(SCRIPT), str(tmp_path / "out"), str(budget_s)], env=env,
                          capture_output=True, text=True, timeout=budget_s + 120)


def test_the_script_publishes_measured_energy_within_its_budget(tmp_path):
    done = run_script(tmp_path, 400)
    out = tmp_path / "out"
    assert done.returncode == 0, done.stdout + done.stderr
    log = (out / "gpu_reference.log").read_text()
    assert "gpu0: Fake NVIDIA H200, SM clock 1980 MHz, power limit 700 W (read only)" in log
    for stage in ("train", "evaluate", "profile", "analyse", "publish"):
        assert f"{stage}: done" in log
    assert len(list(out.iterdir())) <= 8  # what comes back from the GPU machine: 8 files
    results = tmp_path / "results"
    with tarfile.open(out / "cpu-test-paper.tar.gz") as tar:
        tar.extractall(results, filter="data")
    publication = results / "cpu-test-paper"
    assert verify_publication(publication) == []  # whole, where it is unpacked
    manifest = json.loads((publication / "manifest.json").read_text())
    assert [c["command"] for c in manifest["commands"]] == ["train", "evaluate", "profile",
                                                           "analyse"]
    assert manifest["config"]["train"]["device"] == "cpu"  # the environment's words come last
    profile = pd.read_csv(publication / "profile.csv")
    assert set(profile["energy_provenance"]) == {"measured"}
    assert set(profile["meter"]) == {"nvml-energy"}
    assert set(profile["backend"]) == {"eager", "onnxruntime"}
    # the stand-in draws 250 W: energy over each window is that power, as the counter says
    assert ((profile["power_w"] - 250).abs() < 5).all(), profile["power_w"].describe()
    assert "measured" in (publication / "RESULTS.md").read_text()


def test_the_script_stops_at_its_deadline_and_keeps_the_record(tmp_path):
    done = run_script(tmp_path, 35, TINY.replace("epochs_per_stage=1", "epochs_per_stage=200"),
                      reserve_s=20)
    out = tmp_path / "out"
    assert done.returncode == 1, done.stdout + done.stderr
    log = (out / "gpu_reference.log").read_text()
    assert "train: exit status 124 (stopped at its deadline)" in log
    assert not (out / "cpu-test-paper.tar.gz").exists()
    with tarfile.open(out / "run-record.tar.gz") as tar:
        manifest = json.load(tar.extractfile("run/manifest.json"))
        assert not [n for n in tar.getnames() if n.endswith(".pt")]
    assert manifest["status"] == "interrupted"
