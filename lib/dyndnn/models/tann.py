"""Baseline 2: the runtime-configurable incremental DNN of Tann et al. 2016 (arXiv 1607.05418).

Every layer's channels are split into G nested blocks. Block g of a layer reads blocks 1..g of
the layer before (block lower-triangular weights: the group model's block-diagonal plus every
connection from earlier blocks), so configuration k runs blocks 1..k and adding block k+1
leaves blocks 1..k's outputs unchanged. Trained incrementally like the group model: stage g
trains block g of every layer with blocks 1..g-1 frozen (no autograd, BN in eval mode). The
classifier sums the blocks' logits, block g reading hidden blocks 1..g, so each new block
learns a correction.

>>> model = TannAlexNet(BaselineSpec("tann", groups=4, width=0.25))
>>> model.set_active_groups(2)
>>> model.macs(2) < model.macs(4)
True

Each block is its own ``nn.Conv2d`` / ``nn.Linear`` over the prefix of the input it reads, so
the upper triangle is neither stored nor computed; block sizes come from ``matched_fractions``.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.models.base import DynamicModel, tensor_bytes
from dyndnn.models.dense import (
    BaselineSpec,
    channels_last,
    conv_output_sizes,
    cumulative_channels,
    matched_fractions,
    prefix,
    sized,
)
from dyndnn.models.group import ALEXNET_KERNELS, ALEXNET_POOL_AFTER


def tann_macs(spec: BaselineSpec, fractions: Sequence[float], channels: Sequence[int],
              hidden: Sequence[int]) -> int:
    """MACs of the configuration whose cumulative block fractions are ``fractions``."""
    sides, side = conv_output_sizes(spec.image_size)
    total, previous = 0, [spec.in_channels] * len(fractions)
    for c, kernel, s in zip(channels, ALEXNET_KERNELS, sides, strict=True):
        cum = [prefix(c, f) for f in fractions]
        sizes = [b - a for a, b in pairwise([0, *cum])]
        total += sum(n * p for n, p in zip(sizes, previous, strict=True)) * kernel * kernel * s * s
        previous = cum
    previous = [p * side * side for p in previous]
    for h in hidden:
        cum = [prefix(h, f) for f in fractions]
        total += sum((b - a) * p for (a, b), p in zip(pairwise([0, *cum]), previous,
                                                      strict=True))
        previous = cum
    return total + sum(p * spec.num_classes for p in previous)


@functools.lru_cache(maxsize=64)
def tann_sizing(spec: BaselineSpec) -> tuple[tuple[int, ...], tuple[int, ...],
                                             tuple[float, ...]]:
    """(full conv channels, full hidden units, cumulative block fractions)."""
    def split(channels: tuple[int, ...], hidden: tuple[int, ...]) -> tuple[float, ...]:
        return matched_fractions(lambda f: tann_macs(spec, f, channels, hidden), spec.groups)

    channels, hidden = sized(spec, lambda c, h: tann_macs(spec, split(c, h), c, h))
    return channels, hidden, split(channels, hidden)


class TannAlexNet(DynamicModel):
    """AlexNet with G nested, block lower-triangular channel blocks (Tann et al. 2016)."""

    family = "tann"

    def __init__(self, spec: BaselineSpec) -> None:
        super().__init__(spec.groups)
        self.spec = spec
        channels, hidden, self.fractions = tann_sizing(spec)
        self.conv_sides, side = conv_output_sizes(spec.image_size)
        area = side * side
        self.convs = nn.ModuleList()  # convs[layer][g]: block g, reading input blocks 0..g
        self.norms = nn.ModuleList()
        previous = [spec.in_channels] * spec.groups  # input channels block g reads
        for c, kernel in zip(channels, ALEXNET_KERNELS, strict=True):
            cum = cumulative_channels(c, self.fractions)
            sizes = [b - a for a, b in pairwise([0, *cum])]
            self.convs.append(nn.ModuleList(
                channels_last(nn.Conv2d(p, n, kernel, padding=kernel // 2, bias=False))
                for n, p in zip(sizes, previous, strict=True)))
            self.norms.append(nn.ModuleList(nn.BatchNorm2d(n) for n in sizes))
            previous = list(cum)
        previous = [p * area for p in previous]
        self.fcs = nn.ModuleList()
        for h in hidden:
            cum = cumulative_channels(h, self.fractions)
            sizes = [b - a for a, b in pairwise([0, *cum])]
            self.fcs.append(nn.ModuleList(nn.Linear(p, n) for n, p in zip(sizes, previous,
                                                                          strict=True)))
            previous = list(cum)
        self.heads = nn.ModuleList(nn.Linear(p, spec.num_classes) for p in previous)

    # --- forward ------------------------------------------------------------------------------
    def _blocks(self, x: Tensor, layers: nn.ModuleList, k: int, apply) -> Tensor:
        """Blocks 0..k-1 of one layer on ``x``; in train mode block k-1 trains, others frozen.

        ``apply(g, inputs, trainable)`` runs block g on the input prefix it reads.
        """
        outs = []
        train = self.training
        for g in range(k):
            trainable = train and g == k - 1
            with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
                width = layers[g].in_channels if isinstance(layers[g], nn.Conv2d) \
                    else layers[g].in_features
                outs.append(apply(g, x[:, :width], trainable))
        return torch.cat(outs, 1) if len(outs) > 1 else outs[0]

    def forward(self, x: Tensor) -> Tensor:
        """Logits of configuration k: the sum of blocks 1..k's logits."""
        k = self._active
        x = x.contiguous(memory_format=torch.channels_last)
        for convs, norms, pool in zip(self.convs, self.norms, ALEXNET_POOL_AFTER, strict=True):
            def conv_block(g, inputs, trainable, convs=convs, norms=norms):
                bn = norms[g]
                return F.relu(F.batch_norm(convs[g](inputs), bn.running_mean, bn.running_var,
                                           bn.weight, bn.bias, trainable, bn.momentum, bn.eps))
            x = self._blocks(x, convs, k, conv_block)
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        for fcs in self.fcs:
            def fc_block(g, inputs, trainable, fcs=fcs):
                out = F.relu(fcs[g](inputs))
                return F.dropout(out, self.spec.dropout, trainable)
            x = self._blocks(x, fcs, k, fc_block)
        logits = None
        for g in range(k):
            with torch.set_grad_enabled(self.training and g == k - 1 and torch.is_grad_enabled()):
                part = self.heads[g](x[:, :self.heads[g].in_features])
            logits = part if logits is None else logits + part
        return logits

    # --- accounting -------------------------------------------------------------------------
    def _block_modules(self, group: int) -> list[nn.Module]:
        return [*(layer[group] for layer in self.convs), *(layer[group] for layer in self.norms),
                *(layer[group] for layer in self.fcs), self.heads[group]]

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """Block ``group``'s Parameters in every layer: what stage group+1 updates."""
        return [p for m in self._block_modules(group) for p in m.parameters()]

    def param_count(self, k: int | None = None) -> int:
        """Parameters of blocks 1..k."""
        return sum(p.numel() for g in range(self._k(k)) for p in self.group_parameters(g))

    def param_bytes(self, k: int | None = None) -> int:
        """Bytes of blocks 1..k: weights, biases, BN parameters and statistics."""
        k = self._k(k)
        tensors = []
        for g in range(k):
            tensors += self.group_parameters(g)
            tensors += [t for layer in self.norms for t in (layer[g].running_mean,
                                                             layer[g].running_var)]
        return tensor_bytes(tensors)

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of configuration k (lower triangle only)."""
        k = self._k(k)
        conv = sum(layer[g].weight.numel() * side * side
                   for layer, side in zip(self.convs, self.conv_sides, strict=True)
                   for g in range(k))
        fc = sum(layer[g].weight.numel() for layer in (*self.fcs, self.heads) for g in range(k))
        return conv + fc

    def export(self, k: int | None = None) -> nn.Module:
        """Configuration k alone: a copy holding blocks 1..k only, in eval mode."""
        k = self._k(k)
        small = copy.deepcopy(self)
        for layers in (*small.convs, *small.norms, *small.fcs):
            del layers[k:]
        del small.heads[k:]
        small.groups = small._active = k
        return small.eval()
