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
    # upper bounds: what the libraries accept (config.bounds), not only a sign
    ({"data": {"batch_size": 10**12}}, "data.batch_size must be a finite number of at most "
                                       "65,536"),
    ({"run": {"seed": 2**70}}, "run.seed must be a finite number of at most 4,294,967,295"),
    ({"train": {"lr": float("nan")}}, "train.lr must be a finite number"),
    ({"train": {"joint_stage_factor": 10**9}}, "train.joint_stage_factor must be a finite number"),
    ({"train": {"joint_stage_factor": 0}}, "train.joint_stage_factor must be >= 1"),
    ({"profile": {"profile_batches": [1, 10**9]}}, "profile.profile_batches must be a finite"),
    ({"profile": {"window_s": float("inf")}}, "profile.window_s must be a finite"),
    ({"model": {"width": 1e6}}, "model.width must be a finite number of at most 64"),
    ({"model": {"models": ["group", "resnet"]}},
     "model.models must name families among group, independent, tann, slimmable"),
    ({"model": {"models": ["tann"]}}, "model.models must include group"),
    ({"model": {"models": ["group", "tann", "tann"]}}, "name each family once"),
    ({"model": {"baseline_budget": "flops"}}, "model.baseline_budget must be macs"),
    ({"data": {"dataset": "mnist"}}, "data.dataset must be one of"),
    ({"train": {"optimizer": "rmsprop"}}, "train.optimizer must be one of"),
    ({"run": {"notebooks": [1, 2]}}, "run.notebooks must be a list of str values"),
    ({"profile": {"profile_batches": [1, "x"]}},
     "profile.profile_batches must be a list of int values"),
    ({"profile": {"meter": "watt"}}, "profile.meter must be one of"),
    ({"rct": {"t_min": 2.0, "t_max": 1.0}}, "rct needs 0 < t_min < t_max"),
    ({"rct": {"bits_max": 20}}, "rct.bits_max must be between 2 and 16"),
    ({"rct": {"momentum_bits": 1}}, "rct.momentum_bits must be 0 (an fp32 buffer) or between"),
    ({"rct": {"text_dataset": "imdb"}}, "rct.text_dataset must be '' (images only) or one of"),
    ({"rct": {"text_model": "lstm"}}, "rct.text_model must be one of conv, transformer"),
    ({"rct": {"text_lr": 0}}, "rct.text_lr must be > 0"),
    ({"data": {"dataset": "wordnet-supersense-mini"}}, "set rct.text_dataset instead"),
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


# --- the gaps a careless config fell through -------------------------------------------------
def write(tmp_path, text):
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_top_level_list_names_what_a_config_must_hold(tmp_path):
    with pytest.raises(ConfigError, match="must hold a mapping of sections.*holds a list"):
        load_config(write(tmp_path, "- model\n- train\n"))


@pytest.mark.parametrize("override", ["width=.inf", "lr=.nan", "window_s=-.inf"])
def test_non_finite_numbers_are_refused(override):
    with pytest.raises(ConfigError, match="must be a finite number"):
        load_config(None, [override])


def test_yaml_1_1_floats_are_read_as_numbers(tmp_path):
    cfg = load_config(write(tmp_path, "train:\n  lr: 1e-3\n  weight_decay: 5E-5\n"))
    assert cfg.train.lr == 0.001 and cfg.train.weight_decay == 5e-5
    assert load_config(None, ["lr=2e-2"]).train.lr == 0.02


def test_groups_bounded_so_no_group_is_narrower_than_a_channel():
    with pytest.raises(ConfigError, match="model.groups must be at most 16 at width 0.25"):
        load_config(None, ["groups=1000"])
    assert load_config(None, ["groups=16"]).model.groups == 16
    assert load_config(None, ["groups=64", "width=1.0"]).model.groups == 64


def test_duplicate_keys_are_refused_with_their_lines(tmp_path):
    path = write(tmp_path, "train:\n  lr: 0.1\n  momentum: 0.9\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"'lr' is given twice \(lines 2 and 4\)"):
        load_config(path)


def test_names_validated_here_agree_with_the_modules_that_implement_them():
    from dyndnn import config
    from dyndnn.board.auto import METERS
    from dyndnn.models.architecture import BUILTIN, architecture
    from dyndnn.rct import quant

    assert config.METERS == METERS
    assert config.ROUNDINGS == quant.ROUNDINGS
    assert config.RCT_BITS == (quant.MIN_BITS, quant.MAX_BITS)
    assert config.MODELS == tuple(FAMILIES)
    assert config.JOINTLY_TRAINED == tuple(n for n, f in FAMILIES.items() if f.joint_training)
    assert config.ARCHITECTURES == tuple(BUILTIN)
    assert architecture("alexnet").narrowest_channels() == 64
    from dyndnn.data.text import TEXT_SPECS
    from dyndnn.models.text import TEXT_MODELS

    assert config.TEXT_MODELS == TEXT_MODELS
    assert config.TEXT_DATASETS == tuple(TEXT_SPECS)


def test_reading_a_config_imports_neither_torch_nor_board_nor_rct():
    import subprocess
    import sys

    code = ("import sys, dyndnn.config; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
            "or m.startswith(('dyndnn.board', 'dyndnn.rct'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_training_differences_name_only_keys_that_change_weights():
    from dyndnn.config import training_differences

    base = load_config("configs/quick.yaml")
    changed = load_config("configs/quick.yaml", ["seed=7", "lr=0.01", "repeats=9", "threads=1"])
    assert training_differences(base.to_dict(), changed) == {"seed": (0, 7), "lr": (0.1, 0.01)}


def test_a_config_that_is_not_text_is_a_config_error(tmp_path):
    png = tmp_path / "figure.yaml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    with pytest.raises(ConfigError, match=r"figure.yaml is not text \(byte 0 is not UTF-8\)"):
        load_config(png)
