"""What every stage does first: hold the folder and check its record agrees with the config."""

from __future__ import annotations

import yaml

from dyndnn.config import TRAINING_KEYS, Config, describe_differences, training_differences
from dyndnn.errors import RunFolderError
from dyndnn.layout import RunLayout


def check_record(layout: RunLayout, cfg: Config, keys: tuple[str, ...]) -> None:
    """Refuse a config whose training keys among ``keys`` differ from the folder's record.

    A notebook declares only the keys its stage reads; those that also decide the trained
    weights (``groups``, ``dataset``, ...) must be what the run trained with.
    """
    if not layout.config_file.is_file():
        return  # a folder written by notebooks alone: the checkpoints are checked instead
    try:
        recorded = yaml.safe_load(layout.config_file.read_text()) or {}
    except yaml.YAMLError as exc:
        raise RunFolderError(f"{layout.config_file} is not valid YAML ({exc}): the folder's "
                             "record is damaged") from exc
    differences = {k: v for k, v in training_differences(recorded, cfg).items()
                   if k in keys and k in TRAINING_KEYS}
    if differences:
        raise RunFolderError(
            f"run folder {layout.root} was trained with {describe_differences(differences)} "
            "(recorded value -> the one given here); its checkpoints hold the recorded one. "
            "Give the recorded value, or train a new run folder with the new one.")
