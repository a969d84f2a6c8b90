import copy

import torch

from dyndnn.models.group_layers import GroupBatchNorm2d, GroupConv2d, GroupLinear
from dyndnn.models.layers import Window


def test_group_conv_is_block_diagonal():
    conv = GroupConv2d(8, 12, 3, groups=4)
    x = torch.randn(2, 8, 5, 5)
    full = conv(x, Window(0, 4))
    # group 2 alone, fed only its own input channels, gives the same outputs as in the full run
    alone = conv(x[:, 4:6], Window(2, 3))
    torch.testing.assert_close(alone, full[:, 6:9])


def test_group_parameters_alias_the_block_and_survive_copies():
    conv = GroupConv2d(1, 8, 3, groups=4, dense_input=True)
    param = conv.group_parameters(1)[0]
    with torch.no_grad():
        param.fill_(7.0)
    assert torch.all(conv.weight_full[2:4] == 7.0)
    for clone in (copy.deepcopy(conv), conv.to(torch.float64)):
        with torch.no_grad():
            clone.group_parameters(0)[0].fill_(3.0)
        assert torch.all(clone.weight_full[0:2] == 3.0)
        assert clone.group_parameters(0)[0].data_ptr() == clone.weight_full.data_ptr()


def test_training_one_group_updates_only_its_bn_statistics():
    bn = GroupBatchNorm2d(6, groups=3)
    before = bn.running_mean.clone()
    bn(torch.randn(4, 2, 3, 3) + 5, Window(1, 2, trainable=True))
    changed = (bn.running_mean != before).nonzero().flatten().tolist()
    assert changed == [2, 3]


def test_group_linear_matches_per_group_linear_and_sum():
    fc = GroupLinear(6, 4, groups=2)
    x = torch.randn(3, 6)
    out = fc(x, Window(0, 2))
    w, b = fc.weight_full, fc.bias_full
    torch.testing.assert_close(out[:, :2], x[:, :3] @ w[:2].T + b[:2])
    torch.testing.assert_close(out[:, 2:], x[:, 3:] @ w[2:].T + b[2:])
    head = GroupLinear(6, 5, groups=2, sum_groups=True)
    summed = head(x, Window(0, 2))
    torch.testing.assert_close(summed, head(x[:, :3], Window(0, 1)) + head(x[:, 3:], Window(1, 2)))
