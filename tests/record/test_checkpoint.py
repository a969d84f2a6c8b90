import pytest
import torch

from dyndnn.errors import CheckpointError
from dyndnn.models import GroupNet
from dyndnn.models.group_layers import GroupConv2d
from dyndnn.record.checkpoint import load_checkpoint, save_checkpoint


def test_round_trip_keeps_weights_and_aliasing(tmp_path):
    model = GroupNet(groups=2, width=0.125, in_channels=1, image_size=28)
    path = save_checkpoint(tmp_path / "c.pt", model, stage=2)
    loaded, meta = load_checkpoint(path)
    assert meta["stage"] == 2 and not loaded.training
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    conv, original = (next(m for m in net.modules() if isinstance(m, GroupConv2d)
                           and not m.dense_input) for net in (loaded, model))
    assert torch.equal(conv.weight_full[: conv.out_per_group], original.group_parameters(0)[0])
    assert conv.group_parameters(0)[0].data_ptr() == conv.weight_full.data_ptr()  # aliased


def test_corrupt_missing_and_foreign_checkpoints(tmp_path):
    model = GroupNet(groups=2, width=0.125, in_channels=1, image_size=28)
    path = save_checkpoint(tmp_path / "c.pt", model)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a dyndnn checkpoint"):
        load_checkpoint(tmp_path / "other.pt")


def test_a_checkpoint_of_the_alexnet_only_format_says_to_retrain(tmp_path):
    torch.save({"format": "dyndnn-checkpoint-v1", "spec": {}, "model": {}}, tmp_path / "old.pt")
    with pytest.raises(CheckpointError, match="AlexNet-only.*retrain in a new run folder"):
        load_checkpoint(tmp_path / "old.pt")
