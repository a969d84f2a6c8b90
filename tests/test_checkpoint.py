import pytest
import torch

from dyndnn.checkpoint import load_checkpoint, save_checkpoint
from dyndnn.errors import CheckpointError
from dyndnn.models import GroupAlexNet


def test_round_trip_keeps_weights_and_aliasing(tmp_path):
    model = GroupAlexNet(groups=2, width=0.125, in_channels=1, image_size=28)
    path = save_checkpoint(tmp_path / "c.pt", model, stage=2)
    loaded, meta = load_checkpoint(path)
    assert meta["stage"] == 2 and not loaded.training
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(loaded.convs[1].weight_full[: loaded.convs[1].out_per_group],
                       model.convs[1].group_parameters(0)[0])


def test_corrupt_missing_and_foreign_checkpoints(tmp_path):
    model = GroupAlexNet(groups=2, width=0.125, in_channels=1, image_size=28)
    path = save_checkpoint(tmp_path / "c.pt", model)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a dyndnn checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
