"""Baseline 2: the runtime-configurable incremental DNN of Tann et al. 2016 (arXiv 1607.05418).

Every layer's channels are split into G nested blocks. Block g of a layer reads blocks 1..g of
the layer before (block lower-triangular weights: the group model's block-diagonal plus every
connection from earlier blocks), so configuration k runs blocks 1..k and adding block k+1
leaves blocks 1..k's outputs unchanged. Trained incrementally like the group model: stage g
trains block g of every layer with blocks 1..g-1 frozen (no autograd, BN in eval mode). The
classifier sums the blocks' logits, block g reading hidden blocks 1..g, so each new block
learns a correction. In a residual network the shortcut adds each block to itself, which
keeps the triangle.

>>> model = TannNet(BaselineSpec("tann", groups=4, width=0.25))
>>> model.set_active_groups(2)
>>> model.macs(2) < model.macs(4)
True

Block sizes come from ``sizing.tann_sizing`` (``matched_fractions``); the layers are
``tann_layers``'.
"""

from __future__ import annotations

from dyndnn.models.base import DynamicModel
from dyndnn.models.network import TannLayers, build_network
from dyndnn.models.sizing import BaselineSpec, cumulative_channels, tann_sizing


class TannNet(DynamicModel):
    """Any architecture with G nested, block lower-triangular channel blocks."""

    family = "tann"

    def __init__(self, spec: BaselineSpec) -> None:
        super().__init__(spec.groups)
        self.spec = spec
        channels, self.fractions = tann_sizing(spec)
        self.body = build_network(self.architecture, TannLayers(
            lambda c: list(cumulative_channels(channels[c], self.fractions)),
            spec.in_channels, spec.num_classes), spec.image_size, spec.dropout)
