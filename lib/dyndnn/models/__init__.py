"""The model families: the group model (Xun et al. 2019) and the three baselines.

- ``group``: ``GroupNet``, G block-diagonal groups pruned at run time (the workbook's model).
- ``independent``: ``IndependentModels``, one ordinary network per configuration.
- ``tann``: ``TannNet``, nested block lower-triangular blocks (Tann et al. 2016).
- ``slimmable``: ``SlimmableNet``, shared weights sliced by width, switchable BN (Yu et al.).

Every family is built from one architecture (``dyndnn.models.architecture``: ``alexnet``,
``resnet20``, ``resnet18``, ``mobilenet`` or a YAML file) out of composable dynamic layers
(``layers``, ``group_layers``, ``tann_layers``, ``slim_layers``; walked by ``network``;
``macs`` counts their work, ``sync_batchnorm`` is the BN all three call). All are
``DynamicModel``s (``base``): configurations 1..G, ``set_active_groups``, ``macs``,
``param_bytes``, ``serving_bytes``, ``export``. Build one by name
(``families``):

>>> model = build_model({"family": "tann", "groups": 4, "width": 0.25, "in_channels": 1,
...                      "image_size": 28, "architecture": "resnet20"})

Torch-free parts (``architecture``, ``switching``, ``macs``' counting) import without torch:
the names below load their module on first use, so the serving side
(``dyndnn.serve.Server``: numpy and onnxruntime) and the config can use them on a board.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dyndnn.models.base import DynamicModel, NetworkSpec, tensor_bytes
    from dyndnn.models.families import BASELINES, FAMILIES, GROUP_MODEL, build_model
    from dyndnn.models.group import COMBINE_RULES, GroupNet, ModelSpec
    from dyndnn.models.independent import IndependentModels
    from dyndnn.models.sizing import BaselineSpec, matched_fractions
    from dyndnn.models.slimmable import SlimmableNet
    from dyndnn.models.tann import TannNet

# name -> the module that defines it; by hand (PEP 562): a lazy-loading package is not worth it
_HOMES = {"DynamicModel": "base", "tensor_bytes": "base", "BASELINES": "families",
          "FAMILIES": "families", "GROUP_MODEL": "families", "build_model": "families",
          "COMBINE_RULES": "group", "GroupNet": "group", "ModelSpec": "group",
          "IndependentModels": "independent", "NetworkSpec": "base", "BaselineSpec": "sizing",
          "matched_fractions": "sizing", "SlimmableNet": "slimmable", "TannNet": "tann"}
__all__ = ["BASELINES", "COMBINE_RULES", "FAMILIES", "GROUP_MODEL", "BaselineSpec", "DynamicModel",
           "GroupNet", "IndependentModels", "ModelSpec", "NetworkSpec", "SlimmableNet", "TannNet",
           "build_model", "matched_fractions", "tensor_bytes"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'dyndnn.models' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"dyndnn.models.{_HOMES[name]}"), name)
    globals()[name] = value  # the next lookup is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOMES])
