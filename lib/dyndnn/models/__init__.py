"""The model families: the group model (Xun et al. 2019) and the three baselines.

- ``group``: ``GroupNet``, G block-diagonal groups pruned at run time (the workbook's model).
- ``independent``: ``IndependentModels``, one ordinary network per configuration.
- ``tann``: ``TannNet``, nested block lower-triangular blocks (Tann et al. 2016).
- ``slimmable``: ``SlimmableNet``, shared weights sliced by width, switchable BN (Yu et al.).

Every family is built from one architecture (``dyndnn.architecture``: ``alexnet``,
``resnet20``, ``resnet18``, ``mobilenet`` or a YAML file) out of composable dynamic layers
(``layers``, ``dyndnn.ops``, ``tann_layers``, ``slim_layers``; walked by ``network``). All are
``DynamicModel``s (``base``): configurations 1..G, ``set_active_groups``, ``macs``,
``param_bytes``, ``serving_bytes``, ``export``. Build one by name:

>>> model = build_model({"family": "tann", "groups": 4, "width": 0.25, "in_channels": 1,
...                      "image_size": 28, "architecture": "resnet20"})
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dyndnn.models.base import DynamicModel, tensor_bytes
from dyndnn.models.group import COMBINE_RULES, GroupNet, ModelSpec
from dyndnn.models.independent import IndependentModels
from dyndnn.models.sizing import BaselineSpec, matched_fractions
from dyndnn.models.slimmable import SlimmableNet
from dyndnn.models.tann import TannNet

GROUP_MODEL = GroupNet.family
BASELINES: dict[str, type[DynamicModel]] = {
    cls.family: cls for cls in (IndependentModels, TannNet, SlimmableNet)}
FAMILIES: dict[str, type[DynamicModel]] = {GROUP_MODEL: GroupNet, **BASELINES}


def build_model(spec: ModelSpec | BaselineSpec | dict[str, Any]) -> DynamicModel:
    """Rebuild a model from its spec (as stored in a checkpoint; no ``family``: the group model)."""
    fields = asdict(spec) if not isinstance(spec, dict) else dict(spec)
    family = fields.pop("family", GROUP_MODEL)
    if family == GROUP_MODEL:
        return GroupNet(**fields)
    if family not in BASELINES:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}")
    return BASELINES[family](BaselineSpec(family, **fields))


__all__ = [
    "BASELINES", "COMBINE_RULES", "FAMILIES", "GROUP_MODEL", "BaselineSpec", "DynamicModel",
    "GroupNet", "IndependentModels", "ModelSpec", "SlimmableNet", "TannNet", "build_model",
    "matched_fractions", "tensor_bytes",
]
