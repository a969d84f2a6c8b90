"""Multiply-accumulates: one formula, and the two ways the workbook applies it.

``conv_macs`` is the formula (a linear layer is a 1x1 convolution on a 1x1 map). Every
dynamic layer's ``macs(k)`` calls it with its active sizes; ``network_macs`` walks an
architecture with it to size the baselines before any layer exists; ``static_macs`` counts a
plain torch module's convolutions and linear layers with it (RCT's energy accounting).

>>> conv_macs(out_channels=8, in_channels=4, kernel=3, out_side=5)   # 8 x 4 x 9 x 25
7200
>>> from dyndnn.models.architecture import architecture
>>> net = architecture("alexnet")
>>> dense = network_macs(net, 1, 28, 10, lambda c: [c])                  # width 1, one path
>>> two_groups = network_macs(net, 1, 28, 10, lambda c: [c // 2, c], diagonal=True)
>>> dense > two_groups
True
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from itertools import pairwise

from dyndnn.models.architecture import (
    Architecture,
    Conv,
    Linear,
    Residual,
)
from dyndnn.models.shapes import conv_side, residual_convs, walk


def conv_macs(out_channels: int, in_channels: int, kernel: int = 1, out_side: int = 1) -> int:
    """MACs per image: every output channel reads ``in_channels`` (per conv group) x k x k."""
    return out_channels * in_channels * kernel * kernel * out_side * out_side


def _blocks_macs(out_cum: Sequence[int], in_cum: Sequence[int] | None, reads_all: int,
                 kernel: int, side: int, depthwise: bool, diagonal: bool, area: int = 1
                 ) -> int:
    """MACs of one layer split in blocks (cumulative output channels ``out_cum``).

    Block g reads: the whole input (``in_cum`` None: the image), its own input block
    (``diagonal``: the group model), or input blocks 1..g (block lower-triangular: Tann; a
    dense layer is the one-block case). ``area``: input features per channel (after flatten).
    """
    total = 0
    for g, (lo, hi) in enumerate(pairwise([0, *out_cum])):
        if depthwise:
            reads = 1
        elif in_cum is None:
            reads = reads_all
        elif diagonal:
            reads = (in_cum[g] - (in_cum[g - 1] if g else 0)) * area
        else:
            reads = in_cum[g] * area
        total += conv_macs(hi - lo, reads, kernel, side)
    return total


def network_macs(arch: Architecture, in_channels: int, image_size: int, num_classes: int,
                 blocks: Callable[[int], Sequence[int]], diagonal: bool = False) -> int:
    """MACs per image of one configuration of ``arch`` with the classifier.

    ``blocks(channels)`` gives the cumulative channels of the active blocks of a layer of
    ``channels`` (width-1 count): ``[c]`` for a dense network, ``[c/G, 2c/G]`` for two groups.
    """
    def reads(source: int | None) -> list[int] | None:
        return None if source is None else list(blocks(source))

    def conv(layer: Conv, source: int | None, side: int) -> int:
        return _blocks_macs(list(blocks(layer.channels)), reads(source), in_channels,
                            layer.kernel, conv_side(layer, side), layer.depthwise, diagonal)

    total = 0
    for step in walk(arch, image_size):
        layer = step.layer
        if isinstance(layer, Conv):
            total += conv(layer, step.source, step.side)
        elif isinstance(layer, Residual):
            total += sum(conv(c, source, side)
                         for _, c, source, side in residual_convs(layer, step.source, step.side))
        elif isinstance(layer, Linear):
            total += _blocks_macs(list(blocks(layer.features)), reads(step.source), 0, 1, 1,
                                  False, diagonal, step.area)
        elif layer is None:  # the classifier: every block adds its logits
            cum = reads(step.source)
            assert cum is not None  # parse() guarantees a first conv
            heads = [num_classes * (g + 1) for g in range(len(cum))]
            total += _blocks_macs(heads, cum, 0, 1, 1, False, diagonal, step.area)
    return total


def static_macs(module, example) -> int:
    """MACs per image of a plain torch module on a batch like ``example`` (forward hooks).

    Counts ``nn.Conv1d``, ``nn.Conv2d``, ``nn.Linear`` and modules that say their own MACs per image
    (``image_macs()``: the group model's batched GEMMs) with ``conv_macs``; pooling, BN and
    additions are not MACs.
    """
    import torch
    from torch import nn

    counted: list[int] = []

    def hook(layer, inputs, output) -> None:
        if hasattr(layer, "image_macs"):
            counted.append(layer.image_macs())
        elif isinstance(layer, nn.Conv1d | nn.Conv2d):
            counted.append(conv_macs(layer.out_channels, layer.in_channels // layer.groups)
                           * math.prod(layer.kernel_size) * math.prod(output.shape[2:]))
        else:
            counted.append(conv_macs(layer.out_features, layer.in_features)
                           * (output.numel() // output.shape[-1] // output.shape[0]))

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, nn.Conv1d | nn.Conv2d | nn.Linear) or hasattr(m, "image_macs")]
    try:
        with torch.no_grad():
            module(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return sum(counted)
