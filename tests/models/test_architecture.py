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
    parse,
)
from dyndnn.models.shapes import output_side


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
    # bounds: checked before anything is built or expanded
    ({"layers": [{"conv": 10**9}]}, "channels 1,000,000,000 is over the 65,536"),
    ({"layers": [{"conv": 8}, {"residual": {"channels": 8, "repeat": 1000000}}]},
     "repeat 1,000,000 is over the 100"),
    ({"layers": [{"conv": 8}] * 1001}, "1,001 layers, over the 1,000"),
    ({"layers": [{"conv": 8192}, {"conv": 8192}, {"conv": 8192}]}, "over the 1,073,741,824"),
    ({"layers": [{"conv": {"channels": 8, "relu": "yes"}}]}, "relu must be true or false"),
    ({"layers": [{"conv": 8}], "evil": 1}, r"unknown keys \['evil'\] in the architecture"),
    # the canonical block form, malformed
    ({"layers": [{"conv": 8}, {"block": {"body": [{"channels": 8, "evil": 1}]}}]},
     r"layer block: unknown keys \['evil'\]"),
    ({"layers": [{"conv": 8}, {"block": 16}]}, "a mapping of body: and shortcut:"),
    ({"layers": [{"conv": 8}, {"block": {"body": []}}]}, "body must be a list of convs"),
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


def test_a_json_spec_that_is_not_json_is_a_config_error():
    from dyndnn.models.architecture import architecture as by_name

    with pytest.raises(ConfigError, match="must be valid JSON"):
        by_name('{"layers": [')


def test_a_huge_repeat_in_a_file_is_refused_before_it_is_expanded(tmp_path, monkeypatch):
    """A million-block file was expanded block by block (9 s) before anything said no."""
    from dyndnn.models import architecture as module

    spec = tmp_path / "huge.yaml"
    spec.write_text("layers:\n  - conv: 8\n  - residual: {channels: 8, repeat: 1000000}\n")
    built = []
    real = module.Residual
    monkeypatch.setattr(module, "Residual", lambda *a, **k: built.append(1) or real(*a, **k))
    with pytest.raises(ConfigError, match="repeat 1,000,000"):
        ModelSection(architecture=str(spec))
    assert built == []  # refused from the setting, not after building blocks
