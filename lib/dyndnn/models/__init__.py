"""The model families: the group model (Xun et al. 2019) and the three baselines.

- ``group``: ``GroupAlexNet``, G block-diagonal groups pruned at run time (the workbook's model).
- ``independent``: ``IndependentModels``, one ordinary network per configuration.
- ``tann``: ``TannAlexNet``, nested block lower-triangular blocks (Tann et al. 2016).
- ``slimmable``: ``SlimmableAlexNet``, shared weights sliced by width, switchable BN (Yu et al.).

All are ``DynamicModel``s (``base``): configurations 1..G, ``set_active_groups``, ``macs``,
``param_bytes``, ``serving_bytes``, ``export``. Build one by name:

>>> model = build_model({"family": "tann", "groups": 4, "width": 0.25, "in_channels": 1,
...                      "image_size": 28})
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dyndnn.models.base import DynamicModel, tensor_bytes
from dyndnn.models.dense import BaselineSpec, PlainAlexNet, matched_fractions
from dyndnn.models.group import (
    ALEXNET_CHANNELS,
    ALEXNET_HIDDEN,
    ALEXNET_KERNELS,
    ALEXNET_POOL_AFTER,
    COMBINE_RULES,
    GroupAlexNet,
    GroupPath,
    ModelSpec,
    StaticGroupAlexNet,
)
from dyndnn.models.independent import IndependentModels
from dyndnn.models.slimmable import SlimmableAlexNet
from dyndnn.models.tann import TannAlexNet

GROUP_MODEL = GroupAlexNet.family
BASELINES: dict[str, type[DynamicModel]] = {
    cls.family: cls for cls in (IndependentModels, TannAlexNet, SlimmableAlexNet)}
FAMILIES: dict[str, type[DynamicModel]] = {GROUP_MODEL: GroupAlexNet, **BASELINES}


def build_model(spec: ModelSpec | BaselineSpec | dict[str, Any]) -> DynamicModel:
    """Rebuild a model from its spec (as stored in a checkpoint; no ``family``: the group model)."""
    fields = asdict(spec) if not isinstance(spec, dict) else dict(spec)
    family = fields.pop("family", GROUP_MODEL)
    if family == GROUP_MODEL:
        return GroupAlexNet(**fields)
    if family not in BASELINES:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    return BASELINES[family](BaselineSpec(family, **fields))


__all__ = [
    "ALEXNET_CHANNELS", "ALEXNET_HIDDEN", "ALEXNET_KERNELS", "ALEXNET_POOL_AFTER", "BASELINES",
    "COMBINE_RULES", "FAMILIES", "GROUP_MODEL", "BaselineSpec", "DynamicModel", "GroupAlexNet",
    "GroupPath", "IndependentModels", "ModelSpec", "PlainAlexNet", "SlimmableAlexNet",
    "StaticGroupAlexNet", "TannAlexNet", "build_model", "matched_fractions", "tensor_bytes",
]
