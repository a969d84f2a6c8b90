"""What every stage does first: check the folder's record agrees with the config it got."""

from __future__ import annotations

from dyndnn.config import Config, describe_differences
from dyndnn.errors import RunFolderError
from dyndnn.layout import RunLayout
from dyndnn.runs import recorded_differences


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
