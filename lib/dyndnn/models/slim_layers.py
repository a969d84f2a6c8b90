"""The slimmable network's weighted layers: one set of weights, configuration k a width.

Width k keeps the first ``widths[k-1]`` channels of a layer and reads the first
``in_widths[k-1]`` of its input (``weight[:out, :in]``, a strided view as in the reference
implementation). With a single width these are ordinary layers: the independent baseline's
networks are built from them.

>>> conv = SlimConv2d([2, 4], [3, 6], 3, out_side=5)
>>> conv(torch.randn(1, 2, 5, 5), Window(0, 1)).shape, conv.macs(1), conv.macs(2)
(torch.Size([1, 3, 5, 5]), 1350, 5400)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.models.layers import DynamicLayer, Window
from dyndnn.models.macs import conv_macs
from dyndnn.models.sync_batchnorm import batch_norm


class SlimConv2d(DynamicLayer):
    """Shared conv weights sliced by width; ``in_widths`` None: the image (all channels)."""

    def __init__(self, in_widths: list[int] | None, widths: list[int], kernel_size: int,
                 stride: int = 1, depthwise: bool = False, out_side: int = 1,
                 in_channels: int = 0) -> None:
        super().__init__()
        self.widths, self.kernel_size, self.out_side = list(widths), kernel_size, out_side
        self.in_widths = [in_channels] * len(widths) if in_widths is None else list(in_widths)
        self.stride, self.depthwise = stride, depthwise
        full = nn.Conv2d(1 if depthwise else self.in_widths[-1], self.widths[-1], kernel_size,
                         bias=False)  # for its default initialisation only
        self.weight = nn.Parameter(full.weight.detach().contiguous(
            memory_format=torch.channels_last))

    def _slice(self, k: int) -> Tensor:
        out = self.widths[k - 1]
        return self.weight[:out] if self.depthwise else self.weight[:out, :self.in_widths[k - 1]]

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        k = window.stop
        weight = self._slice(k)
        if window.trainable:  # a contiguous copy: see tann_layers.TannConv2d._conv
            weight = weight.contiguous()
        return F.conv2d(x, weight, None, self.stride, self.kernel_size // 2, 1,
                        self.widths[k - 1] if self.depthwise else 1)

    def macs(self, k: int) -> int:  # noqa: D102
        reads = 1 if self.depthwise else self.in_widths[k - 1]
        return conv_macs(self.widths[k - 1], reads, self.kernel_size, self.out_side)

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return [self._slice(k)]

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        weight, out = self._slice(k), self.widths[k - 1]
        static = nn.Conv2d(out if self.depthwise else weight.shape[1], out, self.kernel_size,
                           self.stride, self.kernel_size // 2, groups=out if self.depthwise
                           else 1, bias=False)
        static.weight.copy_(weight)
        static.weight.data = static.weight.data.contiguous(memory_format=torch.channels_last)
        return static


class SwitchableBatchNorm2d(DynamicLayer):
    """One BatchNorm per width (*switchable BN*).

    A width's statistics differ from the full network's, so each width keeps its own.
    """

    def __init__(self, widths: list[int]) -> None:
        super().__init__()
        self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in widths)

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        bn = self.norms[window.stop - 1]
        if bn.training:  # as nn.BatchNorm2d does; ``batch_norm`` may synchronise its statistics
            bn.num_batches_tracked.add_(1)
        return batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.training,
                          bn.momentum, bn.eps)

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        bn = self.norms[k - 1]
        return [bn.weight, bn.bias] + ([bn.running_mean, bn.running_var] if statistics else [])

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        bn = self.norms[k - 1]
        static = nn.BatchNorm2d(bn.num_features, bn.eps, bn.momentum)
        static.load_state_dict(bn.state_dict())
        return static


class SlimLinear(DynamicLayer):
    """Shared linear weights sliced by width; ``widths`` None: a classifier (all outputs)."""

    def __init__(self, in_widths: list[int], widths: list[int] | None, out_features: int = 0
                 ) -> None:
        super().__init__()
        self.in_widths = list(in_widths)
        self.widths = [out_features] * len(in_widths) if widths is None else list(widths)
        full = nn.Linear(self.in_widths[-1], self.widths[-1])
        self.weight, self.bias = full.weight, full.bias

    def _slices(self, k: int) -> list[Tensor]:
        out = self.widths[k - 1]
        return [self.weight[:out, :self.in_widths[k - 1]], self.bias[:out]]

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        return F.linear(x, *self._slices(window.stop))

    def macs(self, k: int) -> int:  # noqa: D102
        return conv_macs(self.widths[k - 1], self.in_widths[k - 1])

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return self._slices(k)

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        weight, bias = self._slices(k)
        static = nn.Linear(weight.shape[1], weight.shape[0])
        static.weight.copy_(weight)
        static.bias.copy_(bias)
        return static
