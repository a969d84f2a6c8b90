"""The shape walk of a network: every layer with the feature maps it reads and leaves.

``dyndnn.models.macs`` counts MACs along it and ``dyndnn.models.network`` builds modules along
it, so a network's shapes are worked out in one place.

>>> from dyndnn.models.architecture import architecture
>>> output_side(architecture("alexnet"), 28)   # the side of the last feature map
3
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from dyndnn.models.architecture import (
    Architecture,
    ArchitectureError,
    Conv,
    Flatten,
    GlobalAvgPool,
    Layer,
    Linear,
    MaxPool,
    Residual,
)


def _side(layer: Conv | MaxPool, side: int) -> int:
    if isinstance(layer, MaxPool):
        return side // layer.size
    return (side + 2 * (layer.kernel // 2) - layer.kernel) // layer.stride + 1


@dataclass(frozen=True)
class Step:
    """One layer as ``walk`` meets it; ``layer`` None is the classifier at the end."""

    layer: Layer | None
    source: int | None  # width-1 channels it reads (None: the image)
    side: int  # side of the feature map it reads
    out_side: int  # side of the feature map it leaves
    area: int  # features per channel a linear layer reads (side x side after a flatten)


def walk(arch: Architecture, image_size: int) -> Iterator[Step]:
    """The layers in order with the shapes they read and leave, then the classifier.

    The one walk of a network's shape: ``output_side``, ``dyndnn.models.macs.network_macs`` and
    ``dyndnn.models.network.build_network`` all follow it.

    >>> from dyndnn.models.architecture import architecture
    >>> [(type(s.layer).__name__, s.source, s.out_side) for s in walk(architecture("alexnet"),
    ...                                                               28)][:3]
    [('Conv', None, 28), ('MaxPool', 64, 14), ('Conv', 64, 14)]
    """
    source, side, area = None, image_size, 1
    for layer in arch.layers:
        out_side = side
        if isinstance(layer, Conv | MaxPool):
            out_side = _side(layer, side)
        elif isinstance(layer, Residual):
            out_side = _side(layer.body[0], side)
        elif isinstance(layer, GlobalAvgPool):
            out_side = 1
        if out_side < 1:
            raise ArchitectureError(f"{arch.name}: images of {image_size} px shrink below one "
                                    f"pixel at {layer}; use larger images or fewer strides")
        yield Step(layer, source, side, out_side, area)
        if isinstance(layer, Conv):
            source = layer.channels
        elif isinstance(layer, Residual):
            source = layer.body[-1].channels
        elif isinstance(layer, Linear):
            source, area = layer.features, 1
        elif isinstance(layer, Flatten):
            area = side * side
        elif isinstance(layer, GlobalAvgPool):
            area = 1
        side = out_side
    yield Step(None, source, side, side, area)


def residual_convs(block: Residual, source: int | None, side: int
                   ) -> Iterator[tuple[str, Conv, int | None, int]]:
    """("body" or "shortcut", conv, the width-1 channels it reads, the side it reads)."""
    x, x_side = source, side
    for conv in block.body:
        yield "body", conv, x, x_side
        x, x_side = conv.channels, _side(conv, x_side)
    for conv in block.shortcut:
        yield "shortcut", conv, source, side


def output_side(arch: Architecture, image_size: int) -> int:
    """Side of the last feature map (before any flatten); raises if it shrinks below 1."""
    return [step.side for step in walk(arch, image_size)][-1]


def conv_side(conv: Conv, side: int) -> int:
    """Output side of ``conv`` on a ``side`` x ``side`` input (padding ``kernel // 2``)."""
    return _side(conv, side)
