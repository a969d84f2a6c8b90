"""Baseline 3: a slimmable network (Yu et al. 2018, arXiv 1812.08928).

One dense network; configuration k keeps the first channels of every layer (its width) and
has its own BatchNorm (*switchable BN*: a width's channel statistics differ from the full
network's, so each width keeps its own). All widths train together: each step runs every
width, largest first, and sums their losses (``dyndnn.training.trainer``'s joint strategy).

>>> model = SlimmableNet(BaselineSpec("slimmable", groups=4, width=0.25))
>>> model.set_active_groups(1)    # the narrowest width, with its own BN
>>> model.serving_bytes() > model.param_bytes(4)   # full weights + every width's BN
True

Serving slices the shared weights as the reference implementation does
(``weight[:out, :in]``), which is a strided view: each conv call packs it.
"""

from __future__ import annotations

from torch import nn

from dyndnn.models.base import DynamicModel, module_bytes
from dyndnn.models.network import SlimLayers, build_network
from dyndnn.models.sizing import BaselineSpec, cumulative_channels, dense_sizing


class SlimmableNet(DynamicModel):
    """Any architecture with G widths sharing weights, switchable BN per width."""

    family = "slimmable"
    joint_training = True

    def __init__(self, spec: BaselineSpec) -> None:
        super().__init__(spec.groups)
        self.spec = spec
        channels, self.fractions = dense_sizing(spec)
        self.body = build_network(self.architecture, SlimLayers(
            lambda c: list(cumulative_channels(channels[c], self.fractions)),
            spec.in_channels, spec.num_classes), spec.image_size, spec.dropout)

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """Joint training: every configuration shares the weights (see ``stage_parameters``)."""
        return list(self.parameters())

    def serving_bytes(self) -> int:
        """The full weights plus every width's BN (parameters and statistics)."""
        return module_bytes(self)
