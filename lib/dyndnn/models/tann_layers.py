"""Tann et al.'s weighted layers: G nested blocks, block g reading blocks 1..g of its input.

A layer's channels are split into blocks of cumulative sizes ``out_cum``; block g is its own
``nn.Conv2d`` / ``nn.Linear`` over the prefix ``in_cum[g]`` of the input, so the upper
triangle is neither stored nor computed. The first conv's blocks read the whole image; a
depthwise conv's block reads its own channels only.

>>> conv = TannConv2d([2, 4], [3, 6], 3, out_side=5)
>>> conv(torch.randn(1, 4, 5, 5), Window(0, 2)).shape, conv.macs(1), conv.macs(2)
(torch.Size([1, 6, 5, 5]), 1350, 4050)
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.models.layers import DynamicLayer, Window
from dyndnn.models.macs import conv_macs
from dyndnn.models.sync_batchnorm import batch_norm


def _sizes(cum: list[int]) -> list[int]:
    return [b - a for a, b in pairwise([0, *cum])]


class StaticBlocks(nn.Module):
    """Block g applied to the first ``reads[g]`` channels (features) of the input.

    The outputs concatenated (``sum_blocks``: added, a classifier's logits). Plain torch.
    """

    def __init__(self, blocks: list[nn.Module], reads: list[int], sum_blocks: bool) -> None:
        super().__init__()
        self.blocks, self.reads, self.sum_blocks = nn.ModuleList(blocks), reads, sum_blocks

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        outs = [block(x[:, :n]) for block, n in zip(self.blocks, self.reads, strict=True)]
        if self.sum_blocks:
            return torch.stack(outs).sum(0)
        return torch.cat(outs, 1)


def _channels(x: Tensor, lo: int, hi: int) -> Tensor:
    """Channels (features) ``lo..hi-1`` of ``x``; ``x`` itself when that is all of them.

    The training block reads every earlier block's channels, the whole input: a slice would
    cost its backward a zero-filled gradient of the input's size and a copy (measured: 12 %
    of a Tann stage-4 epoch, alexnet width 0.25, G=4).

    >>> x = torch.randn(2, 6, 3, 3)
    >>> _channels(x, 0, 6) is x, _channels(x, 0, 4).shape[1], _channels(x, 4, 6).shape[1]
    (True, 4, 2)
    """
    return x if lo == 0 and hi == x.shape[1] else x[:, lo:hi]


def _run_blocks(blocks: nn.ModuleList, x: Tensor, window: Window, read, apply=None
                ) -> list[Tensor]:
    """Blocks 0..stop-1 on their inputs (``read(g, x)``); in a stage the last one trains.

    ``apply(block, inputs, trainable)`` runs a block (default: calls it).
    """
    if window.start:
        raise ValueError("Tann's blocks read every earlier block: a window starts at 0")
    outs = []
    for g in range(window.stop):
        trainable = window.trainable and g == window.stop - 1
        with torch.set_grad_enabled(trainable and torch.is_grad_enabled()):
            inputs = read(g, x)
            outs.append(apply(blocks[g], inputs, trainable) if apply else blocks[g](inputs))
    return outs


class TannConv2d(DynamicLayer):
    """Block lower-triangular conv; ``in_cum`` None: every block reads the whole image."""

    def __init__(self, in_cum: list[int] | None, out_cum: list[int], kernel_size: int,
                 stride: int = 1, depthwise: bool = False, out_side: int = 1,
                 in_channels: int = 0) -> None:
        super().__init__()
        self.out_cum, self.kernel_size, self.out_side = list(out_cum), kernel_size, out_side
        self.depthwise, self.dense_input = depthwise, in_cum is None
        sizes = _sizes(self.out_cum)
        if depthwise:
            self.reads = [(a, b) for a, b in pairwise([0, *self.out_cum])]
        else:
            self.reads = [(0, in_channels if in_cum is None else in_cum[g])
                          for g in range(len(sizes))]
        self.blocks = nn.ModuleList(
            nn.Conv2d(n if depthwise else hi - lo, n, kernel_size, stride, kernel_size // 2,
                      groups=n if depthwise else 1, bias=False)
            for n, (lo, hi) in zip(sizes, self.reads, strict=True))
        for block in self.blocks:  # channels-last: oneDNN's layout, as the group model keeps it
            block.weight.data = block.weight.data.contiguous(memory_format=torch.channels_last)

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        outs = _run_blocks(self.blocks, x, window,
                           lambda g, x: _channels(x, *self.reads[g]), self._conv)
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)

    def _conv(self, block: nn.Conv2d, x: Tensor, trainable: bool) -> Tensor:
        # the training block reads a contiguous copy of its weights: conv backward on
        # channels-last weights corrupted the heap in residual networks (torch 2.13, CPU)
        weight = block.weight.contiguous() if trainable else block.weight
        return F.conv2d(x, weight, None, block.stride, block.padding, 1, block.groups)

    def macs(self, k: int) -> int:  # noqa: D102
        return sum(conv_macs(b.out_channels, b.in_channels // b.groups, self.kernel_size,
                             self.out_side) for b in self.blocks[:k])

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return [b.weight for b in self.blocks[:k]]

    def group_parameters(self, group: int) -> list[nn.Parameter]:  # noqa: D102
        return [self.blocks[group].weight]

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        first = self.blocks[0]
        if self.dense_input or self.depthwise:  # blocks read disjoint or equal inputs: one conv
            weight = torch.cat([b.weight for b in self.blocks[:k]])
            n = self.out_cum[k - 1]
            static = nn.Conv2d(n if self.depthwise else first.in_channels, n, self.kernel_size,
                               first.stride, first.padding, groups=n if self.depthwise else 1,
                               bias=False)
            static.weight.copy_(weight)
            return static
        blocks = [nn.Conv2d(b.in_channels, b.out_channels, self.kernel_size, b.stride,
                            b.padding, bias=False) for b in self.blocks[:k]]
        for mine, static_block in zip(self.blocks, blocks, strict=False):
            static_block.weight.copy_(mine.weight)
        return StaticBlocks(blocks, [hi for _, hi in self.reads[:k]], sum_blocks=False)


class TannBatchNorm2d(DynamicLayer):
    """BatchNorm per block: a block's statistics are its own; the trainable block's update."""

    def __init__(self, out_cum: list[int]) -> None:
        super().__init__()
        self.out_cum = list(out_cum)
        self.blocks = nn.ModuleList(nn.BatchNorm2d(n) for n in _sizes(self.out_cum))

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        outs = []
        for g, (lo, hi) in enumerate(pairwise([0, *self.out_cum[:window.stop]])):
            bn, train = self.blocks[g], window.trainable and g == window.stop - 1
            outs.append(batch_norm(x[:, lo:hi], bn.running_mean, bn.running_var, bn.weight,
                                   bn.bias, train, bn.momentum, bn.eps))
        return outs[0] if len(outs) == 1 else torch.cat(outs, 1)

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return [t for g in range(k) for t in (self.group_state(g) if statistics
                                              else self.group_parameters(g))]

    def group_parameters(self, group: int) -> list[nn.Parameter]:  # noqa: D102
        return [self.blocks[group].weight, self.blocks[group].bias]

    def group_state(self, group: int) -> list[Tensor]:  # noqa: D102
        bn = self.blocks[group]
        return [bn.weight, bn.bias, bn.running_mean, bn.running_var]

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        static = nn.BatchNorm2d(self.out_cum[k - 1], self.blocks[0].eps)
        for i, t in enumerate((static.weight, static.bias, static.running_mean,
                               static.running_var)):
            t.copy_(torch.cat([self.group_state(g)[i] for g in range(k)]))
        return static


class TannLinear(DynamicLayer):
    """Block lower-triangular linear layer; ``heads``: a classifier summing blocks' logits."""

    def __init__(self, in_cum: list[int], out_cum: list[int] | int, heads: bool = False) -> None:
        super().__init__()
        self.heads, self.in_cum = heads, list(in_cum)
        sizes = [out_cum] * len(in_cum) if heads else _sizes(list(out_cum))
        self.blocks = nn.ModuleList(nn.Linear(i, n) for i, n in zip(in_cum, sizes, strict=True))

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        outs = _run_blocks(self.blocks, x, window, lambda g, x: _channels(x, 0, self.in_cum[g]))
        if len(outs) == 1:
            return outs[0]
        return torch.stack(outs).sum(0) if self.heads else torch.cat(outs, 1)

    def macs(self, k: int) -> int:  # noqa: D102
        return sum(conv_macs(b.out_features, b.in_features) for b in self.blocks[:k])

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return [t for g in range(k) for t in self.group_parameters(g)]

    def group_parameters(self, group: int) -> list[nn.Parameter]:  # noqa: D102
        return [self.blocks[group].weight, self.blocks[group].bias]

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        blocks = []
        for mine in self.blocks[:k]:
            block = nn.Linear(mine.in_features, mine.out_features)
            block.load_state_dict(mine.state_dict())
            blocks.append(block)
        return StaticBlocks(blocks, self.in_cum[:k], sum_blocks=self.heads)
