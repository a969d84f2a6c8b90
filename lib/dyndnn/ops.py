"""Grouped layers whose number of active groups is chosen per call, by slicing weight views.

Each layer holds G groups. Group g of a layer reads only group g of the layer before
(block-diagonal), so every group is an independent path and running groups [start, stop)
costs (stop - start) / G of the layer's work: pruned groups cost nothing.

Storage: every tensor of a layer is one contiguous block, group-major, kept as a buffer
(``weight_full`` ...). Each group's slice of it is also registered as its own
``nn.Parameter`` that *aliases* the block (same memory). Serving slices the block (a view: no
copy, no allocation); training hands one group's Parameters to the optimiser, so weight decay
and momentum never touch the other groups, and the optimiser's in-place updates land straight
in the block. ``_realias`` restores the aliasing after anything that copies tensors one by one
(``.to()``, ``deepcopy``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class GroupedModule(nn.Module):
    """Base: registers group-major blocks as buffers with one aliasing Parameter per group."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups
        self._grouped_names: list[str] = []

    def _register_grouped(self, name: str, full: Tensor) -> None:
        """Register ``full`` (first dim = groups x per-group size) and its per-group views."""
        self.register_buffer(f"{name}_full", full, persistent=False)
        setattr(self, f"{name}_groups",
                nn.ParameterList(nn.Parameter(view) for view in full.chunk(self.groups)))
        self._grouped_names.append(name)

    def _realias(self) -> None:
        for name in self._grouped_names:
            full = getattr(self, f"{name}_full")
            for param, view in zip(getattr(self, f"{name}_groups"), full.chunk(self.groups),
                                   strict=True):
                param.data = view

    def _apply(self, fn, recurse=True):  # noqa: D102 (nn.Module's)
        super()._apply(fn, recurse)
        self._realias()
        return self

    def __setstate__(self, state) -> None:  # deepcopy and pickle copy tensors one by one
        super().__setstate__(state)
        self._realias()

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """The Parameters of one group (aliases of its slices of this layer's blocks)."""
        return [getattr(self, f"{name}_groups")[group] for name in self._grouped_names]

    def _pick(self, name: str, start: int, stop: int, trainable: bool) -> Tensor:
        """Group ``start``'s Parameter when training it, else a view of groups start..stop."""
        if trainable:
            return getattr(self, f"{name}_groups")[start]
        full = getattr(self, f"{name}_full")
        per_group = full.shape[0] // self.groups
        return full[start * per_group: stop * per_group]


class GroupConv2d(GroupedModule):
    """Conv2d with G block-diagonal groups; ``dense_input`` groups all read the whole input.

    The first layer of a network reads the whole image (``dense_input=True``); later layers
    read only their own group's channels.

    >>> conv = GroupConv2d(16, 32, 3, groups=4, padding=1)
    >>> conv(torch.randn(2, 8, 5, 5), 0, 2).shape   # groups 0 and 1 active: 2 x 4 inputs
    torch.Size([2, 16, 5, 5])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int,
                 padding: int = 0, dense_input: bool = False) -> None:
        super().__init__(groups)
        if out_channels % groups or (not dense_input and in_channels % groups):
            raise ValueError(f"channels {in_channels}->{out_channels} do not split into "
                             f"{groups} groups")
        self.in_per_group = in_channels if dense_input else in_channels // groups
        self.out_per_group = out_channels // groups
        self.kernel_size, self.padding, self.dense_input = kernel_size, padding, dense_input
        weight = torch.empty(out_channels, self.in_per_group, kernel_size, kernel_size)
        # He init per group: each group's fan-in is its own input slice
        nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
        # channels-last: oneDNN then uses the weights as they are instead of reordering them on
        # every call (measured by make bench); slicing groups along dim 0 stays a view
        self._register_grouped("weight", weight.contiguous(memory_format=torch.channels_last))

    def forward(self, x: Tensor, start: int, stop: int, trainable: bool = False) -> Tensor:
        """Run groups ``start..stop-1`` on ``x`` (which holds those groups' channels)."""
        weight = self._pick("weight", start, stop, trainable)
        conv_groups = 1 if self.dense_input else stop - start
        return F.conv2d(x, weight, None, 1, self.padding, 1, conv_groups)

    def macs(self, groups: int, out_hw: tuple[int, int]) -> int:
        """Multiply-accumulates of ``groups`` groups at output size ``out_hw``."""
        return (groups * self.out_per_group * self.in_per_group * self.kernel_size ** 2
                * out_hw[0] * out_hw[1])


class GroupBatchNorm2d(GroupedModule):
    """BatchNorm with statistics per channel, hence per group: groups never share statistics.

    Running statistics are buffers sliced per call; training one group updates only its slice.
    """

    def __init__(self, channels: int, groups: int, momentum: float = 0.1,
                 eps: float = 1e-5) -> None:
        super().__init__(groups)
        self.per_group, self.momentum, self.eps = channels // groups, momentum, eps
        self._register_grouped("weight", torch.ones(channels))
        self._register_grouped("bias", torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: Tensor, start: int, stop: int, trainable: bool = False) -> Tensor:
        """Normalise groups ``start..stop-1``; batch statistics only for a trainable group."""
        span = slice(start * self.per_group, stop * self.per_group)
        return F.batch_norm(
            x, self.running_mean[span], self.running_var[span],
            self._pick("weight", start, stop, trainable), self._pick("bias", start, stop,
                                                                     trainable),
            trainable, self.momentum, self.eps)


class GroupLinear(GroupedModule):
    """Block-diagonal linear layer: group g maps its ``in_per_group`` inputs to its outputs.

    ``sum_groups=True`` makes it a classifier whose output is the sum of the active groups'
    logits, so each added group learns a correction on top of the earlier ones.
    """

    def __init__(self, in_features: int, out_features: int, groups: int,
                 sum_groups: bool = False) -> None:
        super().__init__(groups)
        if in_features % groups:
            raise ValueError(f"{in_features} inputs do not split into {groups} groups")
        self.in_per_group = in_features // groups
        self.out_per_group = out_features if sum_groups else out_features // groups
        self.sum_groups = sum_groups
        weight = torch.empty(groups * self.out_per_group, self.in_per_group)
        bound = self.in_per_group ** -0.5  # nn.Linear's default, per group
        nn.init.uniform_(weight, -bound, bound)
        self._register_grouped("weight", weight)
        self._register_grouped("bias", torch.empty(groups * self.out_per_group).uniform_(
            -bound, bound))

    def forward(self, x: Tensor, start: int, stop: int, trainable: bool = False) -> Tensor:
        """Map (N, n x in_per_group) to (N, n x out_per_group), or to summed (N, out)."""
        n = stop - start
        weight = self._pick("weight", start, stop, trainable)
        bias = self._pick("bias", start, stop, trainable)
        if n == 1:
            return F.linear(x, weight, bias)
        # (n, N, in) @ (n, in, out) -> (n, N, out): one batched GEMM over the active groups
        xs = x.view(x.shape[0], n, self.in_per_group).transpose(0, 1)
        ws = weight.view(n, self.out_per_group, self.in_per_group)
        out = torch.baddbmm(bias.view(n, 1, self.out_per_group), xs, ws.transpose(1, 2))
        if self.sum_groups:
            return out.sum(0)
        return out.transpose(0, 1).reshape(x.shape[0], n * self.out_per_group)

    def macs(self, groups: int) -> int:
        """Multiply-accumulates of ``groups`` groups for one input."""
        return groups * self.in_per_group * self.out_per_group
