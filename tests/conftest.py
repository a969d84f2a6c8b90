import pytest
import torch

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
def analysed_run(tmp_path_factory):
    """One tiny finished run for the whole test session (copy it before writing into it)."""
    run = tmp_path_factory.mktemp("analysed") / "run"
    assert main(["train", "--config", "quick", "--out", str(run), "--no-progress",
                 *sum((["-p", p] for p in TINY_RUN), [])]) == 0
    for stage in ("evaluate", "profile", "analyse"):
        assert main([stage, "--out", str(run), "--no-progress"]) == 0, stage
    return run
