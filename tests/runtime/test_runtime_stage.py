"""The runtime stage on a real (tiny) run: real workers, real co-runners, its tables and figures."""

import json
import shutil

import pandas as pd
import pytest

from dyndnn.__main__ import main
from dyndnn.runtime.policies import POLICIES

RUNTIME = ["runtime_duration_s=1.0", "runtime_window_s=0.1", "runtime_backends=[eager]",
           "runtime_scenarios=[hog,second_dnn]"]


def params(values):
    return sum((["-p", v] for v in values), [])


@pytest.fixture(scope="module")
def trained(analysed_run, tmp_path_factory):
    """A copy of the session's tiny finished run (group and tann, G = 2): this writes into it."""
    run = tmp_path_factory.mktemp("runtime") / "run"
    shutil.copytree(analysed_run, run, ignore=shutil.ignore_patterns(".lock"))
    return run


def test_every_policy_plays_every_scenario_and_the_tables_say_what_ran(trained, capsys):
    assert main(["runtime", "--out", str(trained), "--no-progress", *params(RUNTIME)]) == 0
    assert "stage runtime complete" in capsys.readouterr().out
    windows = pd.read_csv(trained / "runtime.csv")
    for column in ("t_s", "scenario", "policy", "backend", "k", "mapping", "latency_s",
                   "budget_s", "missed", "load"):
        assert column in windows, column
    assert set(zip(windows["scenario"], windows["policy"], strict=True)) == {
        (s, p) for s in ("hog", "second_dnn") for p in POLICIES}
    assert (windows["latency_s"] > 0).all() and set(windows["k"]) <= {1, 2}
    loads = set(windows["load"])  # the co-runners were on in their phases, off outside
    assert "calm" in loads and any(x.startswith("cpu_hog on") for x in loads)
    assert any(x.startswith("dnn on") for x in loads)
    summary = pd.read_csv(trained / "runtime_summary.csv")
    assert set(summary["policy"]) == {*POLICIES, "oracle (offline)"}
    assert summary["miss_rate"].between(0, 1).all()
    evaluation = pd.read_csv(trained / "eval.csv")
    val = set(evaluation.loc[evaluation["model"] == "group", "val_accuracy"].round(6))
    static = summary[summary["policy"].isin(["static_full", "static_min"])]
    assert set(static["accuracy_served"].round(6)) <= val  # validation, never test
    calibration = pd.read_csv(trained / "runtime_calibration.csv")
    assert len(calibration) == 2 * calibration["mapping"].nunique()
    for name in ("runtime_hog_eager", "runtime_second_dnn_eager", "runtime_tradeoff"):
        assert (trained / "figures" / f"{name}.png").is_file(), name
    # the profile's power for each point served: modelled energy, labelled so
    assert (summary["energy_provenance"] == "modelled").all()
    assert summary["energy_per_inference_j"].gt(0).all()
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["commands"][-1]["command"] == "runtime"


@pytest.mark.parametrize(("param", "message"), [
    ("runtime_scenarios=[storm]", "unknown scenario 'storm'"),
    ("runtime_budget_factor=0.5", "must be >= 1"),
    ("runtime_backends=[tflite]", "unknown backend 'tflite'"),
    ("runtime_window_s=30", "at most runtime_duration_s"),
])
def test_bad_parameters_are_refused_before_anything_runs(trained, capsys, param, message):
    assert main(["runtime", "--out", str(trained), "--no-progress", "-p", param]) == 2
    assert message in capsys.readouterr().err


def test_a_run_without_its_evaluation_is_refused_by_name(analysed_run, tmp_path, capsys):
    run = tmp_path / "unevaluated"
    shutil.copytree(analysed_run, run, ignore=shutil.ignore_patterns(".lock"))
    (run / "eval.csv").unlink()
    assert main(["runtime", "--out", str(run), "--no-progress", *params(RUNTIME)]) == 2
    assert "eval.csv is missing: run the evaluate stage first" in capsys.readouterr().err
