"""The install files agree, and the notebooks are committed clean and papermill-ready."""

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def names(requirements):
    return {re.split(r"[<>=!~ ]", r.strip(), maxsplit=1)[0].lower() for r in requirements}


def test_environment_yml_installs_what_pyproject_declares():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = names(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        declared |= names(extra)
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    listed = [p for p in pip if not p.startswith("-e")]
    assert names(listed) == declared
    pins = [line for line in (ROOT / "requirements-torch.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert set(pins) <= set(listed)  # the same torch pair as make setup


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_are_clean_and_parameterised(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert all(not c["outputs"] and c["execution_count"] is None for c in code), \
        "commit notebooks without outputs"
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and "run_dir" in "".join(tagged[0]["source"])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_open_unmodified_in_jupyterlab(path):
    """JupyterLab writes the kernel's language_info into the notebook when the kernel starts;
    a notebook saved with less (``{"name": "python"}``) opened marked modified (seen in the
    browser check). Committed with what ipykernel reports, for the project's Python."""
    from ipykernel.ipkernel import IPythonKernel

    saved = json.loads(path.read_text())["metadata"]["language_info"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    python = next(d for d in env["dependencies"] if isinstance(d, str) and
                  d.startswith("python=")).split("=")[1]
    reported = {k: v for k, v in IPythonKernel.language_info.items() if k != "version"}
    assert {k: v for k, v in saved.items() if k != "version"} == reported
    assert saved["version"].startswith(python + ".")


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    commands = [line for line in ci.splitlines() if line and not line.startswith(("#", "set ",
                                                                                  "cd "))]
    assert commands == ["make test"]
    assert "make test" in (ROOT / "README.md").read_text()


# --- thin notebooks: parameters, config_from_flat, one stage call, display ---------------------
STAGE_OF = {"01_train": "train", "02_evaluate": "evaluate", "03_profile": "profile",
            "04_analyse": "analyse", "05_explore": "explore", "06_rct": "rct",
            "07_runtime": "runtime"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebooks_hold_no_logic_beyond_the_stage_call_and_display(path):
    import ast
    import importlib

    import papermill as pm

    stage = STAGE_OF[path.stem]
    keys = importlib.import_module(f"dyndnn.stages.{stage}").KEYS
    declared = set(pm.inspect_notebook(str(path)))
    assert set(keys) | {"run_dir"} == declared  # every key the stage reads, nothing else
    code = [c for c in json.loads(path.read_text())["cells"]
            if c["cell_type"] == "code" and "parameters" not in c["metadata"].get("tags", [])]
    source = "\n".join("".join(c["source"]) for c in code)
    tree = ast.parse(source)
    logic = (ast.For, ast.While, ast.If, ast.With, ast.FunctionDef, ast.ClassDef, ast.Try,
             ast.ListComp, ast.DictComp, ast.Lambda)
    assert not [type(n).__name__ for n in ast.walk(tree) if isinstance(n, logic)]
    assert "config_from_flat(globals())" in source
    calls = [n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)]
    assert calls.count(stage) == 1


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_defaults_run_dir_to_the_one_the_library_resolves(path):
    import papermill as pm

    from dyndnn.record.layout import DEFAULT_RUN_DIR

    # resolve_run_dir falls back to the newest run only for this exact default
    assert json.loads(pm.inspect_notebook(str(path))["run_dir"]["default"]) == DEFAULT_RUN_DIR


@pytest.mark.parametrize("stage", ["evaluate", "profile", "analyse", "explore", "runtime"])
def test_stages_that_read_a_trained_run_take_its_training_keys_from_the_run(stage):
    import importlib

    from dyndnn.stages.common import RECORDED_KEYS

    keys = importlib.import_module(f"dyndnn.stages.{stage}").KEYS
    assert not set(keys) & set(RECORDED_KEYS)  # G, the families, ... are never a parameter


# --- an installed wheel, run from another folder ------------------------------------------------
def test_floors_are_what_the_code_needs():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    floors = {re.split(r"[<>=!~ ]", d, maxsplit=1)[0]: d for d in project["dependencies"]}
    assert floors["numpy"] == "numpy>=2.0"  # np.trapezoid
    assert floors["torch"] == "torch>=2.5"  # the dynamo ONNX exporter
    assert project["requires-python"] == ">=3.11"  # tomllib


def test_a_wheel_installed_elsewhere_runs_the_chain_from_another_folder(tmp_path):
    import subprocess
    import sys

    wheels, target, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "elsewhere"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(wheels)], check=True,
                   capture_output=True)
    wheel = next(wheels.glob("dyndnn-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(target), str(wheel)], check=True, capture_output=True)
    tiny = ["groups=2", "models=[group]", "train_limit=256", "test_limit=200",
            "epochs_per_stage=1", "batch_size=64", "threads=1", "repeats=1", "warmup=1",
            "profile_batches=[1]", "window_s=0.05", "live_demo_s=0", "backends=[onnxruntime]",
            "notebooks=[01_train, 02_evaluate, 03_profile, 04_analyse]"]
    env = {k: v for k, v in __import__("os").environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(target)  # the installed copy, ahead of the editable checkout
    where = subprocess.run([sys.executable, "-c", "import dyndnn; print(dyndnn.__file__)"],
                           env=env, cwd=work, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target))
    done = subprocess.run([sys.executable, "-m", "dyndnn", "run", "--config", "quick",
                           "--no-progress", *sum((["-p", p] for p in tiny), [])], env=env,
                          cwd=work, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    run = next((work / "outputs").iterdir())
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "ok" and manifest["dataset_used"] == "fashion-mnist-mini"
    assert all(e["executed"].startswith(str(run)) for e in manifest["notebooks"])
    assert (run / "operating_points.csv").is_file()
