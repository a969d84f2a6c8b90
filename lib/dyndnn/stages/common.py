"""What every stage does first: check the run's record, or take the training keys from it.

A stage that trains (train, rct) checks the folder's record agrees with the config it got; a
stage that reads a trained run takes ``RECORDED_KEYS`` from the run (``trained_config``).

>>> RECORDED_KEYS[-1], "groups" in RECORDED_KEYS, "test_limit" in RECORDED_KEYS
('models', True, False)
"""

from __future__ import annotations

from typing import Any

from dyndnn.config import MODELS, TRAINING_KEYS, Config, config_from_flat, describe_differences
from dyndnn.errors import RunFolderError
from dyndnn.record.layout import GROUP_MODEL, RunLayout
from dyndnn.record.runs import recorded_config, recorded_differences

# what a stage reading a trained run takes from the run, never from its notebook: the keys
# that decided the weights (G, the data set, ...) and the families that were trained
RECORDED_KEYS: tuple[str, ...] = (*TRAINING_KEYS, "models")
# what a stage checkpoint records of those (its spec, and the trainer's ``training`` record)
_SPEC_KEYS = ("groups", "architecture", "width", "dropout", "combine")


def check_record(layout: RunLayout, cfg: Config, keys: tuple[str, ...]) -> None:
    """Refuse a config whose training keys among ``keys`` differ from the folder's record.

    A notebook declares only the keys its stage reads; those that also decide the trained
    weights (``groups``, ``dataset``, ...) must be what the run trained with. A folder that
    notebooks alone wrote has no ``config.yaml``: its checkpoints are checked instead.
    """
    differences = recorded_differences(layout, cfg, keys)
    if differences:
        raise RunFolderError(
            f"run folder {layout.root} was trained with {describe_differences(differences)} "
            "(recorded value -> the one given here); its checkpoints hold the recorded one. "
            "Give the recorded value, or train a new run folder with the new one.")


def trained_config(layout: RunLayout, cfg: Config) -> Config:
    """``cfg`` with ``RECORDED_KEYS`` taken from the run: what its checkpoints were trained with.

    The run's ``config.yaml`` when it has one (the pipeline and the command line write it);
    a folder that notebooks alone wrote has none, and its checkpoints' own record is used
    (``checkpoint_record``). The stages that read a trained run call this, so their notebooks
    declare no ``groups`` or ``models`` that could disagree with the run.
    """
    recorded = recorded_config(layout)
    if recorded is None:
        recorded = checkpoint_record(layout)
    taken = {k: recorded[k] for k in RECORDED_KEYS if k in recorded}
    return config_from_flat({**cfg.flat(), **taken})


def checkpoint_record(layout: RunLayout) -> dict[str, Any]:
    """The training keys a run's checkpoints record, and the families that have one.

    G, architecture, width, dropout and combine come from the group model's last stage
    checkpoint's spec, the data set and the trainer's settings from its ``training`` record;
    ``models`` lists every family with a stage checkpoint. Keys a checkpoint does not record
    (``train_limit``, ``baseline_budget``) are left out. A folder without a group model
    checkpoint raises ``RunFolderError``.
    """
    from dyndnn.record.checkpoint import read_checkpoint  # torch: only for a folder without config

    def stages(family: str) -> list[int]:
        folder = layout.checkpoint_folder(family)
        return sorted(int(p.stem.removeprefix("stage")) for p in folder.glob("stage*.pt")
                      if p.stem.removeprefix("stage").isdigit())

    trained = [family for family in MODELS if stages(family)]
    if GROUP_MODEL not in trained:
        raise RunFolderError(
            f"run folder {layout.root} has no config.yaml and no checkpoint of the group model "
            f"({layout.checkpoints_dir}/stage<k>.pt), so what it was trained with is unknown: "
            "train it first (notebook 01_train, or python -m dyndnn train --out "
            f"{layout.root}), or set run_dir to a trained run folder")
    blob = read_checkpoint(layout.stage_checkpoint(GROUP_MODEL, stages(GROUP_MODEL)[-1]))
    spec, training = blob.get("spec", {}), blob.get("training", {})
    record = {k: spec[k] for k in _SPEC_KEYS if k in spec}
    record.update({k: training[k] for k in TRAINING_KEYS if k in training})
    return {**record, "models": trained}
