"""ExecuTorch (XNNPACK): every configuration of every family in one program, equal to eager."""

import os
import sys

import numpy as np
import pytest
import torch

from dyndnn.board.profiler import profile_sweep
from dyndnn.models import FAMILIES, GroupNet
from dyndnn.serve import BundleError
from dyndnn.serve.engines import engine
from dyndnn.serve.executorch_server import ExecutorchServer, method_name
from test_serve import eager, trained_like  # tests/ is on the path (rootdir conftest)

pytest.importorskip("executorch", reason="the executorch backend: pip install -e '.[engines]'")


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_configuration_of_every_family_matches_eager_at_batch_1_and_7(family):
    model = trained_like(family)
    server = engine(model, "executorch", threads=1)
    assert server.method_names == [method_name(k) for k in range(1, model.groups + 1)]
    for batch in (1, 7):
        x = torch.randn(batch, 1, 28, 28)
        for k in range(1, model.groups + 1):
            server.set_active_groups(k)
            got = server(x.numpy())
            assert got.shape == (batch, 10)
            assert np.abs(got - eager(model, x, k).numpy()).max() < 1e-4, (family, batch, k)
            assert torch.equal(server(x), torch.from_numpy(got))  # torch in, torch out
    assert server.pte_bytes > 0 and server.macs(1) == model.macs(1)


def test_without_the_package_the_backend_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "executorch", None)  # import executorch fails
    with pytest.raises(BundleError, match="pip install 'executorch>=1.0'"):
        ExecutorchServer(GroupNet(groups=2, width=0.25, in_channels=1, image_size=28))


def small_group_net():
    return GroupNet(groups=2, width=0.25, in_channels=1, image_size=28)


def test_the_profiler_measures_the_executorch_backend(tmp_path):
    core = min(os.sched_getaffinity(0))
    table = profile_sweep(small_group_net, (1, 28, 28), [1, 2], [f"cpu:{core}x1"],
                          out_csv=tmp_path / "profile.csv", repeats=1, warmup=1,
                          min_window_s=0.02, meter="modelled", progress=False,
                          backends=["eager", "executorch"])
    assert set(table["backend"]) == {"eager", "executorch"} and set(table["groups"]) == {1, 2}
    assert (table["latency_s"] > 0).all() and (table["threads_read"] == 1).all()
