import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dyndnn.models import GroupNet
from dyndnn.serve.export import check_onnx, check_torchscript, export_configuration


@pytest.fixture
def model():
    return GroupNet(groups=4, width=0.25, in_channels=1, image_size=28).eval()


def test_switching_is_a_view_not_a_copy(model):
    x = torch.randn(2, 1, 28, 28)
    ptrs = {p.data_ptr() for p in model.parameters()}
    for k in (1, 3, 2, 4):
        model.set_active_groups(k)
        assert model(x).shape == (2, 10)
    assert {p.data_ptr() for p in model.parameters()} == ptrs
    with model.active_groups(1):
        assert model.num_active_groups == 1
    assert model.num_active_groups == 4
    with pytest.raises(ValueError, match="between 1 and 4"):
        model.set_active_groups(5)


def allocated_bytes(fn):
    with torch.profiler.profile(profile_memory=True) as prof:
        fn()
    return sum(abs(e.cpu_memory_usage) for e in prof.key_averages())


def test_switching_allocates_nothing(model):
    def switch():
        for k in (1, 2, 3, 4) * 10:
            model.set_active_groups(k)

    assert allocated_bytes(lambda: torch.empty(1000)) > 0  # the accounting sees allocations
    assert allocated_bytes(switch) == 0


def test_pruned_configuration_ignores_later_groups(model):
    x = torch.randn(3, 1, 28, 28)
    with model.active_groups(2):
        before = model(x)
    with torch.no_grad():  # scramble groups 3 and 4 entirely
        for g in (2, 3):
            for p in model.group_parameters(g):
                p.normal_()
    with model.active_groups(2):
        assert torch.equal(model(x), before)


@pytest.mark.parametrize("k", [1, 2, 4])
def test_macs_match_a_flop_counter_and_scale_with_k(model, k):
    model.set_active_groups(k)
    with FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 1, 28, 28))
    assert counter.get_total_flops() // 2 == model.macs(k)
    assert model.macs(k) == k * model.macs(1)  # block-diagonal: every group costs the same


def test_bytes_for_all_configurations_equal_the_full_model(model):
    state = [t for t in model.state_dict().values()]
    total = sum(t.numel() * t.element_size() for t in state)
    assert model.param_bytes(4) == total
    assert model.param_bytes(1) * 4 == model.param_bytes(4)
    assert model.param_count(4) == sum(p.numel() for p in model.parameters())


def test_cifar_shape_and_32px():
    model = GroupNet(groups=2, width=0.25, in_channels=3, image_size=32).eval()
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_export_matches_library(model, tmp_path):
    static = model.export(3).eval()
    x = torch.randn(4, 1, 28, 28)
    with torch.no_grad(), model.active_groups(3):
        torch.testing.assert_close(static(x), model(x), rtol=1e-5, atol=1e-5)
    paths = export_configuration(model, 2, tmp_path)
    assert check_torchscript(paths["torchscript"], model, 2) < 1e-5
    assert check_onnx(paths["onnx"], model, 2) < 1e-4


def test_mean_rule_serves_the_average_and_exports_it():
    model = GroupNet(groups=3, width=0.125, in_channels=1, image_size=28,
                         combine="mean").eval()
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad(), model.active_groups(3):
        torch.testing.assert_close(model(x), model.forward_groups(x, 0, 3) / 3)
        torch.testing.assert_close(model.export(3).eval()(x), model(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="combine must be one of"):
        GroupNet(groups=2, combine="max")
