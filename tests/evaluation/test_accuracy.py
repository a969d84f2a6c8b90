import torch

from dyndnn.evaluation import EVAL_COLUMNS, evaluate_configurations
from dyndnn.models import GroupNet


def test_one_row_per_configuration_with_consistent_columns(mini_dataset):
    model = GroupNet(groups=3, width=0.125, in_channels=1, image_size=28)
    table = evaluate_configurations(model, mini_dataset)
    assert list(table.columns) == EVAL_COLUMNS
    assert list(table["groups"]) == [1, 2, 3]
    assert table["confidence_norm"].iloc[-1] == 1.0
    assert table["test_images"].eq(len(mini_dataset.test_y)).all()
    assert list(table["param_bytes"]) == [model.param_bytes(k) for k in (1, 2, 3)]
    # accuracy and confidence are recomputed by hand for k=2
    model.set_active_groups(2)
    with torch.no_grad():
        x = (mini_dataset.test_x.float() / 255 - 0.2860) / 0.3530
        probs = model(x).softmax(1)
    y = mini_dataset.test_y
    assert abs(table["accuracy"].iloc[1] - (probs.argmax(1) == y).float().mean().item()) < 1e-6
    expected = probs.gather(1, y[:, None]).sum().item()
    assert abs(table["confidence"].iloc[1] - expected) < 1e-3
    # the validation split's accuracy beside the test one, recomputed the same way
    assert table["val_images"].eq(len(mini_dataset.val_y)).all()
    with torch.no_grad():
        val = model((mini_dataset.val_x.float() / 255 - 0.2860) / 0.3530).argmax(1)
    expected_val = (val == mini_dataset.val_y).float().mean().item()
    assert abs(table["val_accuracy"].iloc[1] - expected_val) < 1e-6
