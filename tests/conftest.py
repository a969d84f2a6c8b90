import shutil

import pytest
import torch
from filelock import FileLock  # torch's own dependency

from dyndnn.__main__ import main
from dyndnn.data import load_dataset

# --doctest-modules (pyproject.toml) would import this file as a module of docstring examples
# too, under the name "conftest" that lib/conftest.py (the examples' own) also has: pytest then
# refuses the second one. It holds no examples, so it is not collected; it still loads as a
# conftest.
collect_ignore = ["conftest.py", "browser_check.py",  # the browser check is manual: README.md
                  "fakes"]  # stand-ins put on a subprocess's path (tests/test_gpu_reference.py)


@pytest.fixture(autouse=True)
def _torch_defaults():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def mini_dataset():
    """A small slice of the embedded data set (real images, quick to train on)."""
    return load_dataset("fashion-mnist-mini", train_limit=384, test_limit=200)


# a run trained, evaluated, profiled and analysed by the command line: two families, tiny
TINY_RUN = ["groups=2", "models=[group,tann]", "train_limit=256", "test_limit=200",
            "epochs_per_stage=1", "batch_size=64", "threads=1", "repeats=2", "warmup=1",
            "profile_batches=[1]", "window_s=0.05", "live_demo_s=0", "backends=[eager]"]


@pytest.fixture(scope="session")
def analysed_run(tmp_path_factory, worker_id):
    """One tiny finished run for the whole test session (copy it before writing into it).

    Under ``make test``'s workers it is made once for all of them: the first to need it
    builds it under a file lock in the folder the workers share, the others wait and read it.
    """
    shared = (tmp_path_factory.mktemp("analysed") if worker_id == "master"
              else tmp_path_factory.getbasetemp().parent / "analysed")
    shared.mkdir(exist_ok=True)
    run, built = shared / "run", shared / "built"
    with FileLock(str(shared / ".lock")):
        if not built.is_file():
            shutil.rmtree(run, ignore_errors=True)  # what a failed build left
            assert main(["train", "--config", "quick", "--out", str(run), "--no-progress",
                         *sum((["-p", p] for p in TINY_RUN), [])]) == 0
            for stage in ("evaluate", "profile", "analyse"):
                assert main([stage, "--out", str(run), "--no-progress"]) == 0, stage
            built.touch()
    return run


# `make test`'s two workers take files in this order, the slowest first (each file's tests'
# time added up, `--junitxml`, this host): a long file started last would leave one worker
# running it alone while the other idles. xdist's own order (most tests first, with
# `--loadscope-reorder`) put the bench and the GPU script, two tests each, last. A file not
# listed keeps its place after these.
SLOWEST_FIRST = ["tests/training/test_distributed.py", "tests/test_pipeline.py",
                 "tests/bench/test_suite.py", "tests/test_serve.py",
                 "tests/board/test_board_side.py", "tests/test_gpu_reference.py",
                 "tests/test_cli.py", "tests/publish/test_reference_run.py",
                 "tests/test_packaging.py", "tests/runtime/test_runtime_stage.py",
                 "tests/stages/test_rct.py", "tests/board/test_profiler.py"]


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))
