import pytest

from dyndnn.config import MODELS, Config, config_from_dict, config_from_flat, load_config
from dyndnn.errors import ConfigError
from dyndnn.models import FAMILIES


def test_quick_and_paper_configs_load():
    quick = load_config("configs/quick.yaml")
    assert quick.data.dataset == "fashion-mnist-mini" and quick.model.groups == 4
    paper = load_config("configs/paper.yaml")
    assert paper.data.dataset == "cifar10" and paper.data.fallback_dataset == "fashion-mnist"


def test_overrides_flat_and_dotted():
    cfg = load_config("configs/quick.yaml", ["groups=2", "train.lr=0.5", "notebooks=[01_train]"])
    assert cfg.model.groups == 2 and cfg.train.lr == 0.5
    assert cfg.run.notebooks == ("01_train",)


def test_int_accepted_where_float_expected():
    assert config_from_dict({"train": {"lr": 1}}).train.lr == 1.0


@pytest.mark.parametrize("raw, message", [
    ({"model": {"groupz": 3}}, "unknown key(s) ['groupz'] in section 'model'"),
    ({"modle": {}}, "unknown config section(s) ['modle']"),
    ({"model": {"groups": "four"}}, "model.groups must be of type int"),
    ({"model": {"groups": True}}, "model.groups must be of type int"),
    ({"model": {"groups": 0}}, "model.groups must be >= 1"),
    ({"model": {"groups": 2, "active_groups": 3}}, "model.active_groups must be between 1 and"),
    ({"train": {"epochs_per_stage": -1}}, "train.epochs_per_stage must be >= 0"),
    ({"model": {"models": ["group-alexnet", "resnet"]}},
     "model.models must name families among group-alexnet, independent, tann, slimmable"),
    ({"model": {"models": ["tann"]}}, "model.models must include group-alexnet"),
    ({"model": {"models": ["group-alexnet", "tann", "tann"]}}, "name each family once"),
    ({"model": {"baseline_budget": "flops"}}, "model.baseline_budget must be macs"),
    ({"data": {"dataset": "mnist"}}, "data.dataset must be one of"),
    ({"train": {"optimizer": "rmsprop"}}, "train.optimizer must be one of"),
    ({"run": {"notebooks": [1, 2]}}, "run.notebooks must be a list of str values"),
    ({"profile": {"profile_batches": [1, "x"]}},
     "profile.profile_batches must be a list of int values"),
    ({"profile": {"meter": "watt"}}, "profile.meter must be one of"),
    ({"rct": {"t_min": 2.0, "t_max": 1.0}}, "rct needs 0 < t_min < t_max"),
    ({"rct": {"bits_max": 20}}, "rct bits_max must be between 2 and 16"),
])
def test_bad_configs_are_clear_errors(raw, message):
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    assert message in str(info.value)


def test_bad_override_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown config key 'gropus'"):
        load_config(None, ["gropus=2"])
    with pytest.raises(ConfigError, match="must look like key=value"):
        load_config(None, ["groups"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_flat_round_trip_ignores_other_names():
    cfg = load_config("configs/quick.yaml")
    flat = {**cfg.flat(), "run_dir": "/x", "In": []}
    assert config_from_flat(flat) == cfg
    assert isinstance(Config().to_dict()["run"]["notebooks"], list)


def test_config_models_are_the_registrys_families():
    assert set(MODELS) == set(FAMILIES)
