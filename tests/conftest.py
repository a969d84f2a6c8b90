import pytest
import torch

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
