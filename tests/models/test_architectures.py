"""Each family's invariants, for every built-in architecture and a user's YAML one."""

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from dyndnn.models import FAMILIES, build_model
from dyndnn.models.architecture import BUILTIN
from dyndnn.models.macs import network_macs, static_macs
from dyndnn.models.sizing import cumulative_channels, dense_sizing, tann_sizing
from dyndnn.serve import Server

G = 3
WIDTHS = {"alexnet": 0.125, "resnet20": 0.5, "resnet18": 0.125, "mobilenet": 0.25}
YAML_NET = """
name: tiny-residual
layers:
  - conv: {channels: 24, kernel: 5}
  - residual: {channels: 24, repeat: 1}
  - maxpool: 2
  - residual: {channels: 48, stride: 2}
  - depthwise_separable: 48
  - avgpool: global
  - linear: 32
"""


@pytest.fixture(scope="module")
def yaml_net(tmp_path_factory):
    path = tmp_path_factory.mktemp("nets") / "tiny.yaml"
    path.write_text(YAML_NET)
    return str(path)


def new(family, arch, **changes):
    torch.manual_seed(0)
    spec = {"groups": G, "width": WIDTHS.get(arch, 1.0), "in_channels": 1, "image_size": 28,
            "architecture": arch, "dropout": 0.1, **changes}
    if family != "group":
        spec["family"] = family
    return build_model(spec)


def scramble_bn(model):
    """BN statistics and affine parameters away from the identity, so a wrong export shows."""
    with torch.no_grad():
        for m in model.modules():
            if hasattr(m, "running_mean"):
                m.running_mean.uniform_(-0.3, 0.3)
                m.running_var.uniform_(0.5, 1.5)


ARCHS = [*BUILTIN, "yaml"]


def arch_name(arch, yaml_net):
    return yaml_net if arch == "yaml" else arch


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_export_equals_the_dynamic_model_and_macs_agree(family, arch, yaml_net):
    model = new(family, arch_name(arch, yaml_net)).eval()
    scramble_bn(model)
    x = torch.randn(2, 1, 28, 28)
    macs = [model.macs(k) for k in range(1, G + 1)]
    assert macs == sorted(macs) and len(set(macs)) == G
    for k in range(1, G + 1):
        model.set_active_groups(k)
        static = model.export(k)
        with torch.no_grad():
            torch.testing.assert_close(static(x), model(x), rtol=1e-4, atol=1e-5)
            with FlopCounterMode(display=False) as counter:
                static(x[:1])
        # the layers' macs(k), torch's FLOP counter and the one formula on the static module
        assert model.macs(k) == counter.get_total_flops() // 2 == static_macs(static, x), k


@pytest.mark.parametrize("arch", ARCHS)
def test_group_model_macs_are_k_over_g_and_pruning_is_exact(arch, yaml_net):
    model = new("group", arch_name(arch, yaml_net))
    assert [model.macs(k) * G for k in range(1, G + 1)] == [model.macs(G) * k
                                                            for k in range(1, G + 1)]
    assert model.param_bytes(1) * G == model.param_bytes(G)
    x = torch.randn(3, 1, 28, 28)
    # before sizing a single layer: the network walk gives the same full MACs
    spec = model.spec
    assert model.macs(G) == network_macs(
        model.architecture, 1, 28, 10,
        lambda c: [spec.per_group(c) * (g + 1) for g in range(G)], diagonal=True)
    model.eval()
    with model.active_groups(1), torch.no_grad():
        before = model(x)
        for g in range(1, G):  # scramble every later group entirely
            for t in model.group_state(g):
                t.normal_()
        assert torch.equal(model(x), before)


def train_stage(model, stage, steps=3):
    """A few SGD steps of training stage ``stage`` (``dyndnn.training.trainer``'s per batch)."""
    model.train()
    model.set_active_groups(stage)
    params = model.stage_parameters(stage)
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9)
    generator = torch.Generator().manual_seed(stage)
    for _ in range(steps):
        x = torch.randn(8, 1, 28, 28, generator=generator)
        y = torch.randint(0, 10, (8,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", ["group", "tann"])
def test_pruned_outputs_are_bit_identical_after_later_stages(family, arch, yaml_net):
    model = new(family, arch_name(arch, yaml_net))
    x = torch.randn(4, 1, 28, 28)
    seen = {}
    for stage in range(1, G + 1):
        train_stage(model, stage)
        for k in range(1, stage + 1):
            with torch.no_grad(), model.active_groups(k):
                out = model(x)
            if k in seen:
                assert torch.equal(out, seen[k]), f"configuration {k} moved in stage {stage}"
            seen[k] = out
    assert not torch.equal(seen[G], seen[G - 1])


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_switching_is_o1_without_allocation(family, arch, yaml_net):
    model = new(family, arch_name(arch, yaml_net)).eval()
    pointers = {p.data_ptr() for p in model.parameters()}

    def switch():
        for k in (1, 2, 3) * 20:
            model.set_active_groups(k)

    with torch.profiler.profile(profile_memory=True) as prof:
        switch()
    assert sum(abs(e.cpu_memory_usage) for e in prof.key_averages()) == 0
    assert {p.data_ptr() for p in model.parameters()} == pointers


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("family", ["independent", "tann", "slimmable"])
def test_baselines_match_the_group_models_mac_fractions(family, arch, yaml_net):
    name = arch_name(arch, yaml_net)
    group, model = new("group", name), new(family, name)
    for k in range(1, G):
        mine, theirs = model.macs(k) / model.macs(G), group.macs(k) / group.macs(G)
        assert mine == pytest.approx(theirs, abs=0.03), k  # whole channels: within 3 points
    assert model.macs(G) == pytest.approx(group.macs(G), rel=0.05)  # the same MAC budget
    # the sizing's network walk agrees with the built layers' own count
    channels, fractions = (tann_sizing if family == "tann" else dense_sizing)(model.spec)
    def blocks(c):
        return list(cumulative_channels(channels[c], fractions))

    if family != "tann":
        full = network_macs(model.architecture, 1, 28, 10, lambda c: [channels[c]])
    else:
        full = network_macs(model.architecture, 1, 28, 10, blocks)
    assert full == model.macs(G)


@pytest.mark.parametrize("arch", ["resnet20", "mobilenet", "yaml"])
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_onnx_serving_matches_eager_for_residual_and_depthwise_networks(family, arch,
                                                                        yaml_net):
    model = new(family, arch_name(arch, yaml_net)).eval()
    scramble_bn(model)
    server = Server(model)
    x = torch.randn(2, 1, 28, 28)
    for k in range(1, G + 1):
        server.set_active_groups(k)
        with torch.no_grad(), model.active_groups(k):
            expected = model(x).numpy()
        assert abs(server(x.numpy()) - expected).max() < 1e-4, k
    if family == "group":  # every configuration reads the one set of folded weights
        assert server.weight_bytes() == server.configuration_weight_bytes(G)
