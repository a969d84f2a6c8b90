"""The board side: ``profile-bundle`` on a run's export with torch blocked in every process,
its rows merged back into the run by ``analyse -p board_profiles=[...]``, and every wrong input
refused (exit 2, the problem named, nothing merged)."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from dyndnn.__main__ import main
from dyndnn.board.bundle_source import RECORD_FILE, BundleSource, bundle_identity
from dyndnn.board.profiler import COLUMNS
from dyndnn.models import GroupNet
from dyndnn.serve import write_bundle

LIB = Path(__file__).parents[2] / "lib"
MEASURE = ["-p", "repeats=2", "-p", "warmup=1", "-p", "profile_batches=[1]",
           "-p", "window_s=0.02", "-p", "meter=modelled", "-p", "backends=[onnxruntime]"]


@pytest.fixture(scope="module")
def no_torch(tmp_path_factory):
    """A PYTHONPATH entry whose ``torch`` refuses to import: a board where torch is absent
    (and NVML, an optional sensor library no ARM board has).

    On the path of every process (the profiler's spawned workers too), unlike
    ``sys.modules['torch'] = None``, which holds in one interpreter only.
    """
    root = tmp_path_factory.mktemp("no-torch")
    for name in ("torch", "torchvision", "pynvml"):
        (root / name).mkdir()
        (root / name / "__init__.py").write_text(
            f"raise ImportError('{name} is not installed on this board')\n")
    return root


def board_cli(no_torch, *args, cwd):
    """``python -m dyndnn ARGS`` as a board without torch runs it."""
    env = {**os.environ, "PYTHONPATH": f"{no_torch}{os.pathsep}{LIB}"}
    return subprocess.run([sys.executable, "-m", "dyndnn", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def board_profile(analysed_run, no_torch, tmp_path_factory):
    """The run's export/ copied to a "board" and profiled there without torch."""
    board = tmp_path_factory.mktemp("board")
    shutil.copytree(analysed_run / "export", board / "export")
    done = board_cli(no_torch, "profile-bundle", "export", "--out", "measured", *MEASURE,
                     "-p", "board=odroid-xu3", cwd=board)
    assert done.returncode == 0, done.stderr
    assert "torch" not in done.stderr
    return board


def test_the_board_measures_every_configuration_without_torch(analysed_run, board_profile):
    rows = pd.read_csv(board_profile / "measured" / "profile.csv")
    record = json.loads((board_profile / "measured" / RECORD_FILE).read_text())
    source = BundleSource(str(analysed_run / "export"))
    assert list(rows.columns) == COLUMNS
    assert set(rows["groups"]) == set(range(1, source.groups + 1))
    assert set(rows["model"]) == {source.family} and set(rows["board"]) == {"odroid-xu3"}
    assert set(rows["backend"]) == {"onnxruntime"}
    assert (rows["latency_s"] > 0).all()
    # no torch: the threads read back are the engine's, and they are the mapping's
    assert (rows["threads_read"] == rows["threads"]).all()
    assert len(rows) == 2 * source.groups * rows["cores"].nunique()
    assert record["status"] == "ok" and record["board"] == "odroid-xu3"
    assert {k: record["bundle"][k] for k in ("manifest_sha256", "weights_sha256")} == \
        bundle_identity(analysed_run / "export")


def test_profiling_again_measures_only_what_is_missing(board_profile, no_torch):
    before = (board_profile / "measured" / "profile.csv").read_bytes()
    done = board_cli(no_torch, "profile-bundle", "export", "--out", "measured", *MEASURE,
                     "-p", "board=odroid-xu3", cwd=board_profile)
    assert done.returncode == 0, done.stderr
    assert (board_profile / "measured" / "profile.csv").read_bytes() == before


@pytest.mark.parametrize("args, says", [
    (["-p", "backends=[eager]"], "cannot read a bundle"),
    (["-p", "epochs_per_stage=3"], "only the profile keys"),
    (["-p", "repeats=0"], "repeats"),
])
def test_wrong_settings_are_refused_before_anything_is_measured(board_profile, no_torch, args,
                                                                 says, tmp_path):
    done = board_cli(no_torch, "profile-bundle", board_profile / "export", "--out",
                     tmp_path / "out", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert not (tmp_path / "out" / "profile.csv").exists()


def test_a_folder_that_is_no_bundle_and_another_bundle_in_the_same_folder_are_refused(
        board_profile, no_torch, tmp_path):
    done = board_cli(no_torch, "profile-bundle", tmp_path, "--out", tmp_path / "out",
                     cwd=tmp_path)
    assert done.returncode == 2 and "manifest.json is missing" in done.stderr
    other = write_bundle(GroupNet(groups=2, width=0.25, in_channels=1, image_size=28),
                         tmp_path / "other")
    shutil.copytree(board_profile / "measured", tmp_path / "measured")
    before = (tmp_path / "measured" / "profile.csv").read_bytes()
    done = board_cli(no_torch, "profile-bundle", other, "--out", tmp_path / "measured",
                     *MEASURE, cwd=tmp_path)
    assert done.returncode == 2 and "another bundle" in done.stderr
    assert (tmp_path / "measured" / "profile.csv").read_bytes() == before


@pytest.fixture
def run_copy(analysed_run, tmp_path):
    shutil.copytree(analysed_run, tmp_path / "run", ignore=shutil.ignore_patterns(".lock"))
    return tmp_path / "run"


def analyse_with(run, *folders):
    return main(["analyse", "--out", str(run), "--no-progress", "-p",
                 f"board_profiles=[{','.join(map(str, folders))}]"])


def test_analyse_merges_the_board_rows_and_records_where_they_came_from(run_copy,
                                                                        board_profile):
    ours = pd.read_csv(run_copy / "profile.csv")
    measured = board_profile / "measured"
    assert analyse_with(run_copy, measured) == 0
    merged = pd.read_csv(run_copy / "profile.csv")
    assert len(merged) == len(ours) + len(pd.read_csv(measured / "profile.csv"))
    points = pd.read_csv(run_copy / "operating_points.csv")
    board_points = points[points["board"] == "odroid-xu3"]
    assert set(board_points["backend"]) == {"onnxruntime"}
    assert board_points["accuracy"].notna().all()
    manifest = json.loads((run_copy / "manifest.json").read_text())
    entry = [s for s in manifest["stages"] if s["name"] == "analyse"][-1]
    [merge] = entry["board_profiles"]
    assert merge["board"] == "odroid-xu3" and merge["rows"] == len(board_points) * 2
    assert merge["weights_sha256"] == bundle_identity(run_copy / "export")["weights_sha256"]
    assert analyse_with(run_copy, measured) == 0  # merged again: replaced, not doubled
    assert len(pd.read_csv(run_copy / "profile.csv")) == len(merged)


def _damaged(board_profile, tmp_path, change):
    copy = tmp_path / "measured"
    shutil.copytree(board_profile / "measured", copy)
    change(copy)
    return copy


def _record(folder, **changes):
    record = json.loads((folder / RECORD_FILE).read_text())
    if "weights_sha256" in changes:
        record["bundle"]["weights_sha256"] = changes.pop("weights_sha256")
    record.update(changes)
    (folder / RECORD_FILE).write_text(json.dumps(record))


@pytest.mark.parametrize("change, says", [
    (lambda f: _record(f, weights_sha256="0" * 64), "measured another bundle"),
    (lambda f: _record(f, status="interrupted"), "ended 'interrupted'"),
    (lambda f: (f / RECORD_FILE).unlink(), "is not a board profile"),
    (lambda f: (f / "profile.csv").write_text("a,b\n1,2\n"), "not the profiler's"),
])
def test_a_board_profile_that_is_not_this_runs_is_not_merged(run_copy, board_profile, tmp_path,
                                                             capsys, change, says):
    before = (run_copy / "profile.csv").read_bytes()
    assert analyse_with(run_copy, _damaged(board_profile, tmp_path, change)) == 2
    assert says in capsys.readouterr().err
    assert (run_copy / "profile.csv").read_bytes() == before


IMPORTED = """
import json, sys
from dyndnn.__main__ import main
status = main(sys.argv[1:])
third_party = sorted({name.split(".")[0] for name in sys.modules} - set(sys.stdlib_module_names)
                     - {"dyndnn", "__main__", "_distutils_hack"})
print(json.dumps([status, third_party]))
"""


def _with_requirements(names):
    """``names`` (distributions) and everything they require, transitively, as installed."""
    import re
    from importlib import metadata

    seen, todo = set(), [n.lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        todo += [re.split(r"[<>=!~ ;\[(]", r, maxsplit=1)[0].lower() for r in requires
                 if "extra ==" not in r]
    return {n.replace("_", "-") for n in seen}


def test_what_the_board_side_imports_is_what_requirements_board_installs(analysed_run, no_torch,
                                                                       tmp_path):
    from importlib import metadata

    listed = [line.split(">=")[0] for line in
              (LIB.parent / "requirements-board.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert "torch" not in listed
    env = {**os.environ, "PYTHONPATH": f"{no_torch}{os.pathsep}{LIB}"}
    done = subprocess.run([sys.executable, "-c", IMPORTED, "profile-bundle",
                           analysed_run / "export", "--out", tmp_path / "out", *MEASURE],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    status, modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert status == 0, done.stderr
    allowed = _with_requirements(listed)
    owners = metadata.packages_distributions()
    unowned = [m for m in modules if m not in owners]  # the interpreter's and Cython's own
    assert [m for m in unowned if not m.startswith("_") and m != "cython_runtime"] == []
    outside = {m: owners[m] for m in modules if m in owners
               and not {d.lower().replace("_", "-") for d in owners[m]} & allowed}
    assert outside == {}


@pytest.mark.skipif(importlib.util.find_spec("executorch") is None,
                    reason="pip install -e '.[engines]'")
def test_a_run_that_profiles_executorch_ships_its_program_and_a_board_measures_it(
        run_copy, tmp_path, capsys):
    """02_evaluate writes export/executorch/ when the run profiles ExecuTorch; a board with
    torch and ExecuTorch (a Jetson, say) measures it when named, and analyse merges its rows."""
    from dyndnn.serve.executorch_bundle import read_program_manifest

    export = run_copy / "export"
    core = min(os.sched_getaffinity(0))  # one mapping: a worker imports torch and ExecuTorch
    named = ["-p", "backends=[executorch]", "-p", "meter=modelled", "-p", "repeats=1",
             "-p", "warmup=1", "-p", "window_s=0.02", "-p", f"mappings=[cpu:{core}x1]"]
    # an eager and onnxruntime run ships no program, and the board says so by name
    assert not (export / "executorch").exists()
    assert main(["profile-bundle", str(export), "--out", str(tmp_path / "none"), *named,
                 "-p", "profile_batches=[1]"]) == 2
    assert "export/executorch is not an ExecuTorch bundle" in capsys.readouterr().err
    assert main(["evaluate", "--out", str(run_copy), "--no-progress",
                 "-p", "backends=[eager,executorch]"]) == 0
    program = read_program_manifest(export / "executorch")
    group = pd.read_csv(run_copy / "eval.csv").query("model == 'group'")
    assert [c["accuracy"] for c in program["configurations"]] == group["accuracy"].tolist()
    assert program["family"] == "group" and program["layout"] == "per-group"
    # a batch beyond the program's memory plan: refused before anything is measured
    assert main(["profile-bundle", str(export), "--out", str(tmp_path / "big"), *named,
                 "-p", "profile_batches=[1,64]"]) == 2
    assert "takes batches of up to" in capsys.readouterr().err
    measured = tmp_path / "measured"
    assert main(["profile-bundle", str(export), "--out", str(measured), *named,
                 "-p", "profile_batches=[1]"]) == 0
    rows = pd.read_csv(measured / "profile.csv")
    assert set(rows["backend"]) == {"executorch"} and set(rows["groups"]) == {1, 2}
    assert (rows["latency_s"] > 0).all()
    record = json.loads((measured / RECORD_FILE).read_text())
    assert record["bundle"]["executorch_program_sha256"] == program["program"]["sha256"]
    assert_merged_only_as_the_runs_own(run_copy, measured, "executorch",
                                       "executorch_program_sha256", capsys,
                                       "measured another ExecuTorch program")


def assert_merged_only_as_the_runs_own(run, measured, backend, key, capsys, said):
    """analyse merges the board's rows of ``backend``; with the record's SHA-256 of the
    engine's file (``key``) made another file's, it refuses them and says ``said``."""
    rows = pd.read_csv(measured / "profile.csv")
    assert analyse_with(run, measured) == 0  # merged: the run's own file
    merged = pd.read_csv(run / "profile.csv")
    assert (merged["backend"] == backend).sum() == len(rows)
    record = json.loads((measured / RECORD_FILE).read_text())
    record["bundle"][key] = "0" * 64  # another file's rows
    (measured / RECORD_FILE).write_text(json.dumps(record))
    assert analyse_with(run, measured) == 2
    assert said in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("ai_edge_litert") is None,
                    reason="pip install -e '.[engines]'")
def test_a_run_that_profiles_litert_ships_its_model_and_a_board_without_torch_measures_it(
        run_copy, no_torch, tmp_path, capsys):
    """02_evaluate writes export/litert/ when the run profiles LiteRT; a board with LiteRT and
    no torch measures it when named, and analyse merges its rows (the run's own model only)."""
    from dyndnn.serve.litert_bundle import read_litert_manifest

    export = run_copy / "export"
    named = ["-p", "backends=[litert]", "-p", "meter=modelled", "-p", "repeats=1",
             "-p", "warmup=1", "-p", "window_s=0.02", "-p", "profile_batches=[1,64]"]
    # an eager and onnxruntime run ships no LiteRT model, and the board says so by name
    done = board_cli(no_torch, "profile-bundle", export, "--out", tmp_path / "none", *named,
                     cwd=tmp_path)
    assert done.returncode == 2 and "export/litert is not a LiteRT bundle" in done.stderr
    assert main(["evaluate", "--out", str(run_copy), "--no-progress",
                 "-p", "backends=[eager,litert]"]) == 0
    model = read_litert_manifest(export / "litert")
    group = pd.read_csv(run_copy / "eval.csv").query("model == 'group'")
    assert [c["accuracy"] for c in model["configurations"]] == group["accuracy"].tolist()
    assert [c["signature"] for c in model["configurations"]] == ["k1", "k2"]
    # one weight set: the group model's tensors once, as in the ONNX bundle's weights.bin
    assert model["weight_bytes"] <= (export / "weights.bin").stat().st_size
    measured = tmp_path / "measured"
    done = board_cli(no_torch, "profile-bundle", export, "--out", measured, *named,
                     cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    rows = pd.read_csv(measured / "profile.csv")
    assert set(rows["backend"]) == {"litert"} and set(rows["groups"]) == {1, 2}
    assert set(rows["batch"]) == {1, 64} and (rows["latency_s"] > 0).all()
    assert (rows["threads_read"] == rows["threads"]).all()
    record = json.loads((measured / RECORD_FILE).read_text())
    assert record["bundle"]["litert_model_sha256"] == model["model"]["sha256"]
    assert_merged_only_as_the_runs_own(run_copy, measured, "litert", "litert_model_sha256",
                                       capsys, "measured another LiteRT model")
