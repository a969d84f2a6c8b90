"""Stages that read a trained run take G, the families and every training key from the run."""

import pytest

from dyndnn.config import Config, load_config
from dyndnn.errors import RunFolderError
from dyndnn.models import BaselineSpec, GroupNet, build_model
from dyndnn.record.checkpoint import save_checkpoint
from dyndnn.record.layout import RunLayout
from dyndnn.record.runs import open_run
from dyndnn.stages.common import RECORDED_KEYS, checkpoint_record, trained_config


def test_the_runs_config_yaml_decides_the_training_keys_and_the_notebook_the_rest(tmp_path):
    layout = RunLayout(tmp_path / "run")
    with open_run("configs/quick.yaml", layout.root, ["groups=2", "models=[group, tann]",
                                                      "val_fraction=0.2"]):
        pass
    notebook = load_config(None, ["repeats=1", "test_limit=50"])  # what a notebook declares
    cfg = trained_config(layout, notebook)
    assert cfg.model.groups == 2 and cfg.model.models == ("group", "tann")
    assert cfg.train.lr == 0.1 and cfg.data.val_fraction == 0.2  # quick's, not the defaults
    assert cfg.profile.repeats == 1 and cfg.data.test_limit == 50  # the notebook's own keys
    recorded = load_config("configs/quick.yaml", ["groups=2", "models=[group, tann]",
                                                  "val_fraction=0.2"]).flat()
    assert all(cfg.flat()[k] == recorded[k] for k in RECORDED_KEYS)


def trained_by_notebooks(root, groups=3):
    """A folder as notebook 01 alone leaves it: checkpoints, a minimal manifest, no config."""
    layout = RunLayout(root)
    with layout.lock():
        training = {"lr": 0.02, "seed": 5, "batch_size": 32, "dataset": "fashion-mnist-mini",
                    "epochs_per_stage": 1, "train_images": 100}
        for k in range(1, groups + 1):
            save_checkpoint(layout.stage_checkpoint("group", k),
                            GroupNet(groups=groups, width=0.25, in_channels=1,
                                         image_size=28, combine="mean"),
                            stage=k, training=training)
        save_checkpoint(layout.stage_checkpoint("tann", groups),
                        build_model(BaselineSpec("tann", groups=groups)),
                        stage=groups, training=training)
    return layout


def test_without_config_yaml_the_checkpoints_record_is_used(tmp_path):
    layout = trained_by_notebooks(tmp_path / "run")
    assert not layout.config_file.exists()
    record = checkpoint_record(layout)
    assert record["models"] == ["group", "tann"]
    assert (record["groups"], record["combine"], record["lr"], record["seed"]) == (3, "mean",
                                                                                  0.02, 5)
    assert "train_images" not in record  # not a config key
    cfg = trained_config(layout, Config())
    assert cfg.model.groups == 3 and cfg.model.models == ("group", "tann")
    assert cfg.data.batch_size == 32 and cfg.train.epochs_per_stage == 1


def test_a_folder_with_neither_config_nor_checkpoint_is_refused_by_name(tmp_path):
    layout = RunLayout(tmp_path / "run")
    with layout.lock():
        pass
    with pytest.raises(RunFolderError, match=r"has no config.yaml and no checkpoint of the group "
                                             r"model .* train it first"):
        trained_config(layout, Config())
