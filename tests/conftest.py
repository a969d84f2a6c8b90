import pytest
import torch

from dyndnn.data import load_dataset


@pytest.fixture(autouse=True)
def _torch_defaults():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="session")
def mini_dataset():
    """A small slice of the embedded data set (real images, quick to train on)."""
    return load_dataset("fashion-mnist-mini", train_limit=384, test_limit=200)
