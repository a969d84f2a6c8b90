import math
from dataclasses import replace

import pandas as pd
import pytest
import torch

from dyndnn.config import TrainSection
from dyndnn.data import load_dataset
from dyndnn.models import GroupNet
from dyndnn.rct import RctSettings, RctTrainer, convert, measure_param_bytes, train_group_rct
from dyndnn.rct.layers import RctLayer

CFG = TrainSection(epochs_per_stage=1, lr=0.05)


@pytest.fixture(scope="module")
def data_2k():
    return load_dataset("fashion-mnist-mini", train_limit=2000, test_limit=500)


def path(method, settings=None):
    torch.manual_seed(0)
    return convert(GroupNet(1, 0.125, 1, 28).group_path(0), method, settings)


def test_no_persistent_fp32_weight_copy_between_steps(mini_dataset):
    module = path("rct", RctSettings(interval=2))
    trainer = RctTrainer(module, "rct", mini_dataset, CFG, RctSettings(interval=2),
                         batch_size=64)
    seen = []

    def inspect(*_):
        floats = [t for t in list(module.parameters()) + list(module.buffers())
                  if t.dtype == torch.float32 and t.dim() >= 2]
        state = [t for s in trainer.optimizer.state.values() for t in s.values()
                 if isinstance(t, torch.Tensor) and t.dim() >= 2]
        seen.append((len(floats), len(state), trainer.tracker.live))

    hook = module.register_forward_pre_hook(inspect)  # between steps, before each forward
    trainer.fit()
    hook.remove()
    assert len(seen) > 3 and all(s == (0, 0, 0) for s in seen)
    summary = trainer.summary()
    assert summary["fp32_weight_copies_bytes"] == 0
    # the transient copies were real (tracked) and no bigger than one tile of fp32 weights
    # and one of unpacked (int16) integers: both exist while a tile's fp32 copy is made
    tile = max(m.store.tiles.tile_rows * math.prod(m.store.shape[1:]) * 4 for m in module.modules()
               if isinstance(m, RctLayer))
    assert tile < summary["param_bytes_transient_peak"] <= 1.5 * tile
    assert not trainer.bit_trajectory().empty


def test_memory_is_measured_and_ordered(data_2k):
    rows = {}
    for method in ("fp32", "qat", "rct"):
        trainer = RctTrainer(path(method), method, data_2k, CFG, batch_size=128)
        trainer.fit()
        rows[method] = trainer.summary()
    assert rows["fp32"]["param_bytes"] == measure_param_bytes(path("fp32"))
    assert rows["qat"]["param_bytes"] > rows["fp32"]["param_bytes"]  # master + copies
    assert rows["rct"]["param_bytes"] < rows["fp32"]["param_bytes"]
    assert rows["rct"]["gemm_energy_j"] < rows["qat"]["gemm_energy_j"] < \
        rows["fp32"]["gemm_energy_j"]
    frame = pd.DataFrame(rows.values())
    assert (frame["accuracy"] > 0.3).all()  # all three learned something in one epoch
    # the whole training state: parameters + optimiser state + gradients' peak
    assert (frame["state_bytes"] == frame["param_bytes"] + frame["optimizer_bytes"]
            + frame["grad_bytes"]).all()
    assert (frame["optimizer_bytes"] > 0).all()  # momentum, torch's or RCT's own
    assert (frame["bytes_provenance"] == "accounted (tensor sizes)").all()
    assert frame["energy_provenance"].str.startswith("modelled").all()
    # measured beside it: the process grew by at least the fp32 weights while training
    assert frame["peak_rss_provenance"].str.startswith("measured").all()
    assert (frame["peak_rss_growth_bytes"] >= 0).all()


def test_per_epoch_curves_read_validation_and_the_test_split_once(data_2k, monkeypatch):
    from dyndnn.rct import trainer as trainer_module

    read = []
    real = trainer_module.batches
    monkeypatch.setattr(trainer_module, "batches",
                        lambda ds, split, *a, **k: read.append(split) or real(ds, split, *a, **k))
    trainer = RctTrainer(path("fp32"), "fp32", data_2k, replace(CFG, epochs_per_stage=2))
    history = trainer.fit()
    assert "val_accuracy" in history and "test_accuracy" not in history
    assert read == ["train", "val", "train", "val"]
    first = trainer.summary()["accuracy"]
    assert trainer.summary()["accuracy"] == first and read.count("test") == 1


def test_group_trained_under_rct_is_added_while_earlier_groups_keep_serving(data_2k):
    torch.manual_seed(0)
    model = GroupNet(2, 0.125, 1, 28).eval()
    x = data_2k.test_x[:20].float() / 255
    with torch.no_grad(), model.active_groups(1):
        served_before = model(x)
    trainer = train_group_rct(model, 2, data_2k, CFG, batch_size=128)
    with torch.no_grad(), model.active_groups(1):
        assert torch.equal(model(x), served_before)  # group 1 untouched
    with torch.no_grad(), model.active_groups(2):
        logits = model(x)
    assert not torch.allclose(logits, served_before)
    assert trainer.summary()["accuracy"] > 0.25  # chance is 0.1


def test_a_residual_group_trains_under_rct_and_is_written_back():
    """RCT converts every conv and linear of a ResNet group path, shortcuts included."""
    from dyndnn.rct.compare import reference_network
    from dyndnn.rct.layers import to_plain

    net = convert(reference_network(0.25, 1, 28, 10, 0, "resnet20"), "rct")
    convs = [m for m in reference_network(0.25, 1, 28, 10, 0, "resnet20").modules()
             if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    assert len([m for m in net.modules() if isinstance(m, RctLayer)]) == len(convs) == 22
    loss = torch.nn.functional.cross_entropy(net(torch.randn(4, 1, 28, 28)),
                                             torch.tensor([0, 1, 2, 3]))
    loss.backward()  # the integer weights update in the backward pass; nothing to step
    model = GroupNet(2, 0.5, 1, 28, architecture="resnet20").eval()
    trained = to_plain(convert(model.group_path(1), "rct"))
    model.load_group_path(1, trained)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(model.forward_groups(x, 1, 2), trained.eval()(x),
                                   rtol=1e-4, atol=1e-4)
