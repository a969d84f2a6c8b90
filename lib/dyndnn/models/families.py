"""The four families by name: ``GROUP_MODEL``, ``BASELINES``, ``FAMILIES``, ``build_model``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from dyndnn.models.base import DynamicModel
from dyndnn.models.group import GroupNet, ModelSpec
from dyndnn.models.independent import IndependentModels
from dyndnn.models.sizing import BaselineSpec
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
