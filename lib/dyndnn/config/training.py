"""Which training keys a config changes against a run's record."""

from __future__ import annotations

from typing import Any

from dyndnn.config.loading import load_config  # noqa: F401 (the doctest's)
from dyndnn.config.names import TRAINING_KEYS
from dyndnn.config.sections import Config


def training_differences(recorded: dict[str, Any], cfg: Config) -> dict[str, tuple]:
    """Training keys whose value in ``cfg`` differs from a run's ``recorded`` config.

    ``recorded`` is a run folder's ``config.yaml`` (nested) or its flat form; returns
    ``{key: (recorded value, new value)}``.

    >>> training_differences(Config().to_dict(), load_config(None, ["lr=0.01", "threads=2"]))
    {'lr': (0.05, 0.01)}
    """
    flat_recorded = {k: v for section in recorded.values() if isinstance(section, dict)
                     for k, v in section.items()} if any(
        isinstance(v, dict) for v in recorded.values()) else dict(recorded)
    new = cfg.flat()
    return {key: (flat_recorded.get(key), new[key]) for key in TRAINING_KEYS
            if _comparable(flat_recorded.get(key)) != _comparable(new[key])}


def _comparable(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def describe_differences(differences: dict[str, tuple]) -> str:
    """``lr 0.05 -> 0.01, seed 0 -> 7``."""
    return ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in differences.items())

