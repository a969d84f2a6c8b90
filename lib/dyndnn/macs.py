"""Multiply-accumulates: one formula, and the two ways the workbook applies it.

``conv_macs`` is the formula (a linear layer is a 1x1 convolution on a 1x1 map). Every
dynamic layer's ``macs(k)`` calls it with its active sizes; ``network_macs`` walks an
architecture with it to size the baselines before any layer exists; ``static_macs`` counts a
plain torch module's convolutions and linear layers with it (RCT's energy accounting).

>>> conv_macs(out_channels=8, in_channels=4, kernel=3, out_side=5)   # 8 x 4 x 9 x 25
7200
>>> from dyndnn.architecture import architecture
>>> net = architecture("alexnet")
>>> dense = network_macs(net, 1, 28, 10, lambda c: [c])                  # width 1, one path
>>> two_groups = network_macs(net, 1, 28, 10, lambda c: [c // 2, c], diagonal=True)
>>> dense > two_groups
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import pairwise

from dyndnn.architecture import (
    Architecture,
    Conv,
    Flatten,
    GlobalAvgPool,
    Linear,
    MaxPool,
    Residual,
    conv_side,
)


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
    total, side, cum, area = 0, image_size, None, 1

    def conv(layer: Conv, source: list[int] | None, at: int) -> tuple[int, list[int]]:
        out = list(source) if layer.depthwise and source else list(blocks(layer.channels))
        out_side = conv_side(layer, at)
        return _blocks_macs(out, source, in_channels, layer.kernel, out_side,
                            layer.depthwise, diagonal), out

    for layer in arch.layers:
        if isinstance(layer, Conv):
            macs, cum = conv(layer, cum, side)
            total, side = total + macs, conv_side(layer, side)
        elif isinstance(layer, Residual):
            x, x_side = cum, side
            for c in layer.body:
                macs, x = conv(c, x, x_side)
                total, x_side = total + macs, conv_side(c, x_side)
            for c in layer.shortcut:
                total += conv(c, cum, side)[0]
            cum, side = x, x_side
        elif isinstance(layer, MaxPool):
            side //= layer.size
        elif isinstance(layer, Flatten):
            area = side * side
        elif isinstance(layer, Linear):
            out = list(blocks(layer.features))
            total += _blocks_macs(out, cum, 0, 1, 1, False, diagonal, area)
            cum, area = out, 1
        elif isinstance(layer, GlobalAvgPool):
            area = 1
    assert cum is not None  # parse() guarantees a first conv
    heads = [num_classes * (g + 1) for g in range(len(cum))]  # every block adds logits
    return total + _blocks_macs(heads, cum, 0, 1, 1, False, diagonal, area)


def static_macs(module, example) -> int:
    """MACs per image of a plain torch module on a batch like ``example`` (forward hooks).

    Counts ``nn.Conv2d``, ``nn.Linear`` and modules that say their own MACs per image
    (``image_macs()``: the group model's batched GEMMs) with ``conv_macs``; pooling, BN and
    additions are not MACs.
    """
    import torch
    from torch import nn

    counted: list[int] = []

    def hook(layer, inputs, output) -> None:
        if hasattr(layer, "image_macs"):
            counted.append(layer.image_macs())
        elif isinstance(layer, nn.Conv2d):
            counted.append(conv_macs(layer.out_channels, layer.in_channels // layer.groups,
                                     layer.kernel_size[0], 1) * output.shape[-1]
                           * output.shape[-2])
        else:
            counted.append(conv_macs(layer.out_features, layer.in_features)
                           * (output.numel() // output.shape[-1] // output.shape[0]))

    handles = [m.register_forward_hook(hook) for m in module.modules()
               if isinstance(m, nn.Conv2d | nn.Linear) or hasattr(m, "image_macs")]
    try:
        with torch.no_grad():
            module(example[:1])
    finally:
        for handle in handles:
            handle.remove()
    return sum(counted)
