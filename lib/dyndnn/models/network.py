"""An architecture built from a family's layers: the one place a network's shape is walked.

``build_network`` walks a ``dyndnn.models.architecture.Architecture`` (spatial sizes, residual
blocks, the flatten, the classifier) and asks a *family* for each weighted layer: the group
model's block-diagonal layers (``GroupLayers``), Tann's block lower-triangular ones
(``TannLayers``) or the slimmable network's width-sliced ones (``SlimLayers``; with one width,
an ordinary network: the independent baseline's).

>>> from dyndnn.models.architecture import architecture
>>> net = build_network(architecture("resnet20"), GroupLayers(2, lambda c: c // 8, 1, 10),
...                     image_size=28)
>>> net.macs(2) == 2 * net.macs(1), type(net.to_static(1)[3]).__name__
(True, 'StaticResidual')
"""

from __future__ import annotations

from collections.abc import Callable

from dyndnn.models import layers as L
from dyndnn.models.architecture import (
    Architecture,
    Conv,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool,
    Residual,
)
from dyndnn.models.group_layers import GroupBatchNorm2d, GroupConv2d, GroupLinear
from dyndnn.models.shapes import conv_side, residual_convs, walk
from dyndnn.models.slim_layers import SlimConv2d, SlimLinear, SwitchableBatchNorm2d
from dyndnn.models.tann_layers import TannBatchNorm2d, TannConv2d, TannLinear


class GroupLayers:
    """G block-diagonal groups of ``per_group(c)`` channels for a width-1 layer of c."""

    def __init__(self, groups: int, per_group: Callable[[int], int], in_channels: int,
                 num_classes: int) -> None:
        self.G, self.per_group = groups, per_group
        self.in_channels, self.num_classes = in_channels, num_classes

    def conv(self, source: int | None, conv: Conv, out_side: int) -> L.DynamicLayer:
        """The conv of width-1 ``conv.channels`` reading ``source`` (None: the image)."""
        inputs = self.in_channels if source is None else self.per_group(source) * self.G
        return GroupConv2d(inputs, self.per_group(conv.channels) * self.G, conv.kernel, self.G,
                           conv.stride, source is None, conv.depthwise, out_side)

    def norm(self, channels: int) -> L.DynamicLayer:
        """The BatchNorm after a conv of width-1 ``channels``."""
        return GroupBatchNorm2d(self.per_group(channels) * self.G, self.G)

    def linear(self, source: int, area: int, features: int | None) -> L.DynamicLayer:
        """A linear layer reading ``source`` channels x ``area``; None: the classifier."""
        inputs = self.per_group(source) * area * self.G
        if features is None:
            return GroupLinear(inputs, self.num_classes, self.G, sum_groups=True)
        return GroupLinear(inputs, self.per_group(features) * self.G, self.G)


class _NestedLayers:
    """Families whose configurations are nested prefixes: ``cum(c)`` per layer."""

    def __init__(self, cum: Callable[[int], list[int]], in_channels: int,
                 num_classes: int) -> None:
        self.cum, self.in_channels, self.num_classes = cum, in_channels, num_classes

    def _source(self, source: int | None) -> list[int] | None:
        return None if source is None else self.cum(source)


class TannLayers(_NestedLayers):
    """Block lower-triangular layers; block g of a layer of c has ``cum(c)[g]`` channels."""

    def conv(self, source: int | None, conv: Conv, out_side: int) -> L.DynamicLayer:  # noqa: D102
        return TannConv2d(self._source(source), self.cum(conv.channels), conv.kernel,
                          conv.stride, conv.depthwise, out_side, self.in_channels)

    def norm(self, channels: int) -> L.DynamicLayer:  # noqa: D102
        return TannBatchNorm2d(self.cum(channels))

    def linear(self, source: int, area: int, features: int | None) -> L.DynamicLayer:  # noqa: D102
        inputs = [c * area for c in self.cum(source)]
        if features is None:
            return TannLinear(inputs, self.num_classes, heads=True)
        return TannLinear(inputs, self.cum(features))


class SlimLayers(_NestedLayers):
    """Width-sliced layers; width k of a layer of c has ``cum(c)[k-1]`` channels."""

    def conv(self, source: int | None, conv: Conv, out_side: int) -> L.DynamicLayer:  # noqa: D102
        return SlimConv2d(self._source(source), self.cum(conv.channels), conv.kernel,
                          conv.stride, conv.depthwise, out_side, self.in_channels)

    def norm(self, channels: int) -> L.DynamicLayer:  # noqa: D102
        return SwitchableBatchNorm2d(self.cum(channels))

    def linear(self, source: int, area: int, features: int | None) -> L.DynamicLayer:  # noqa: D102
        inputs = [c * area for c in self.cum(source)]
        if features is None:
            return SlimLinear(inputs, None, self.num_classes)
        return SlimLinear(inputs, self.cum(features))


Family = GroupLayers | TannLayers | SlimLayers


def _conv(family: Family, conv: Conv, source: int | None, side: int) -> list[L.DynamicLayer]:
    layers = [family.conv(source, conv, conv_side(conv, side)), family.norm(conv.channels)]
    return layers + ([L.Act()] if conv.relu else [])


def build_network(arch: Architecture, family: Family, image_size: int,
                  dropout: float = 0.0) -> L.Sequence:
    """``arch`` with ``family``'s layers and a classifier: one ``Sequence`` of dynamic layers."""
    layers: list[L.DynamicLayer] = []
    for step in walk(arch, image_size):
        layer = step.layer
        if isinstance(layer, Conv):
            layers += _conv(family, layer, step.source, step.side)
        elif isinstance(layer, Residual):
            parts: dict[str, list[L.DynamicLayer]] = {"body": [], "shortcut": []}
            for part, conv, source, side in residual_convs(layer, step.source, step.side):
                parts[part] += _conv(family, conv, source, side)
            layers.append(L.Residual(parts["body"], parts["shortcut"]))
        elif isinstance(layer, MaxPool):
            layers.append(L.MaxPool(layer.size))
        elif isinstance(layer, GlobalAvgPool):
            layers.append(L.GlobalAvgPool())
        elif isinstance(layer, Flatten):
            layers.append(L.Flatten())
        elif isinstance(layer, Linear):
            layers += [family.linear(step.source, step.area, layer.features), L.Act()]
            layers += [L.Dropout(dropout)] if dropout else []
        elif layer is None:
            layers.append(family.linear(step.source, step.area, None))
    return L.Sequence(layers)
