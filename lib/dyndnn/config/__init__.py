"""Run configuration: one frozen dataclass per section, validated once, before any work starts.

A config file is YAML with the sections below; every key is optional and defaults as shown.
Keys are unique across sections, so the flat form (``groups=2``) names one value, which is
also how the notebooks receive them as papermill parameters.

>>> from dyndnn.resources import find_config
>>> find_config("quick").name                  # configs/quick.yaml, wherever it is installed
'quick.yaml'
>>> cfg = load_config(find_config("quick"), overrides=["groups=2", "train.epochs_per_stage=1"])
>>> cfg.model.groups, cfg.train.epochs_per_stage
(2, 1)
"""

from dyndnn.config.loading import (
    apply_overrides,
    config_from_dict,
    config_from_flat,
    load_config,
    parse_yaml,
)
from dyndnn.config.names import (
    ARCHITECTURES,
    BACKENDS,
    DATASETS,
    JOINTLY_TRAINED,
    METERS,
    MODELS,
    OPTIMIZERS,
    RCT_BITS,
    ROUNDINGS,
    SCHEDULES,
    TEXT_DATASETS,
    TEXT_MODELS,
    TRAINING_KEYS,
)
from dyndnn.config.runtime_section import RuntimeSection
from dyndnn.config.sections import (
    Config,
    DataSection,
    EvalSection,
    ExploreSection,
    ModelSection,
    ProfileSection,
    RctSection,
    RunSection,
    TrainSection,
    max_groups,
)
from dyndnn.config.training import describe_differences, training_differences

__all__ = [
    "BACKENDS", "DATASETS", "JOINTLY_TRAINED", "METERS", "MODELS", "ARCHITECTURES",
    "OPTIMIZERS", "RCT_BITS", "ROUNDINGS", "SCHEDULES", "TEXT_DATASETS", "TEXT_MODELS",
    "TRAINING_KEYS",
    "Config", "DataSection", "EvalSection", "ExploreSection", "ModelSection", "ProfileSection",
    "RctSection", "RunSection", "RuntimeSection", "TrainSection", "apply_overrides",
    "config_from_dict", "config_from_flat", "describe_differences", "load_config", "max_groups",
    "parse_yaml", "training_differences",
]
