"""Architecture specs: the built-in networks, a user's YAML file, and what a bad spec says."""

import pytest

from dyndnn.config import ModelSection
from dyndnn.errors import ConfigError
from dyndnn.models import GroupNet
from dyndnn.models.architecture import (
    BUILTIN,
    ArchitectureError,
    Conv,
    Residual,
    architecture,
    load,
    output_side,
    parse,
)


@pytest.mark.parametrize(("name", "params"), [("resnet20", 272_474), ("resnet18", 11_173_962)])
def test_resnets_have_the_papers_sizes_at_full_width(name, params):
    # He et al.: ResNet-20 for CIFAR has 0.27 M parameters (ours: 1x1 projections + BN);
    # the CIFAR ResNet-18 has 11.2 M
    model = GroupNet(groups=1, width=1.0, in_channels=3, image_size=32, architecture=name)
    assert model.param_count(1) == params


def test_residual_blocks_project_only_where_shapes_change():
    blocks = [layer for layer in architecture("resnet20").layers if isinstance(layer, Residual)]
    assert len(blocks) == 9
    projected = [i for i, block in enumerate(blocks) if block.shortcut]
    assert projected == [3, 6]  # the first block of stages 2 and 3 (stride 2, more channels)
    assert blocks[3].shortcut == (Conv(32, 1, 2, relu=False),)


def test_json_round_trip_rebuilds_the_same_network():
    for name in BUILTIN:
        arch = architecture(name)
        assert architecture(arch.to_json()) == arch


def test_a_yaml_file_is_read_and_named_after_its_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("layers:\n  - conv: 16\n  - maxpool: 2\n  - conv: {channels: 32, "
                    "stride: 2}\n  - avgpool: global\n")
    arch = load(path)
    assert arch.name == "mine" and output_side(arch, 28) == 1
    assert architecture(str(path)) == arch
    assert ModelSection(architecture=str(path), width=0.5, groups=4).architecture == str(path)


@pytest.mark.parametrize(("spec", "message"), [
    ({"layers": []}, "non-empty layers"),
    ({"layers": [{"pool": 2}]}, "unknown layer kind 'pool'"),
    ({"layers": [{"conv": {"channels": 8, "size": 3}}]}, r"unknown keys \['size'\]"),
    ({"layers": [{"conv": -4}]}, "channels must be a positive integer"),
    ({"layers": [{"conv": {"kernel": 3}}]}, "channels is required"),
    ({"layers": [{"residual": 16}]}, "residual cannot be the first layer"),
    ({"layers": [{"maxpool": 2}, {"conv": 8}]}, "first layer must be a conv"),
    ({"layers": [{"conv": 8}, {"linear": 10}, {"conv": 8}]}, "after the feature map was "
                                                             "flattened"),
    ({"layers": [{"conv": 8}, {"avgpool": 2}]}, "only global average pooling"),
])
def test_a_bad_spec_names_the_layer_and_the_fix(spec, message):
    with pytest.raises(ArchitectureError, match=message):
        parse(spec)


def test_bad_architecture_names_and_files_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown architecture 'resnet50'.*alexnet"):
        ModelSection(architecture="resnet50")
    with pytest.raises(ConfigError, match="does not exist"):
        ModelSection(architecture=str(tmp_path / "missing.yaml"))
    broken = tmp_path / "broken.yaml"
    broken.write_text("layers: [conv: 8\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        ModelSection(architecture=str(broken))
    # resnet20's narrowest layer has 16 channels: at width 0.25, at most 4 groups
    with pytest.raises(ConfigError, match="at most 4 at width 0.25.*resnet20 has 16"):
        ModelSection(architecture="resnet20", width=0.25, groups=8)


def test_images_too_small_for_the_strides_are_named():
    with pytest.raises(ArchitectureError, match="shrink below one pixel"):
        output_side(architecture("alexnet"), 4)
