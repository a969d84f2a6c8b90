"""The group model's weighted layers: the active groups chosen per call by slicing weight views.

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

from dyndnn.models.layers import DynamicLayer, Window
from dyndnn.models.macs import conv_macs
from dyndnn.models.sync_batchnorm import batch_norm


class GroupedModule(DynamicLayer):
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

    def pick(self, name: str, window: Window) -> Tensor:
        """Group ``start``'s Parameter when training it, else a view of the window's groups."""
        if window.trainable:
            # a contiguous copy of the one training group's weights: conv backward on the
            # channels-last Parameter view itself corrupted the heap in residual networks
            # (torch 2.13 on CPU: an identity block before a strided projection block)
            return getattr(self, f"{name}_groups")[window.start].contiguous()
        return self.rows(name, window.start, window.stop)

    def rows(self, name: str, start: int, stop: int) -> Tensor:
        """Groups ``start..stop-1`` of block ``name``: a view (a prefix when start is 0)."""
        full = getattr(self, f"{name}_full")
        per_group = full.shape[0] // self.groups
        return full[start * per_group: stop * per_group]

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return [self.rows(name, 0, k) for name in self._grouped_names]

    def load_static(self, static: nn.Module, group: int) -> None:  # noqa: D102
        with torch.no_grad():
            for mine, theirs in zip(self.group_state(group), _static_state(static),
                                    strict=True):
                mine.copy_(theirs.reshape(mine.shape))


def _static_state(static: nn.Module) -> list[Tensor]:
    """A static layer's tensors in ``group_state`` order: weight, bias, running statistics."""
    names = ("weight", "bias", "running_mean", "running_var")
    return [t for t in (getattr(static, n, None) for n in names) if t is not None]


class GroupConv2d(GroupedModule):
    """Conv2d with G block-diagonal groups; ``dense_input`` groups all read the whole input.

    The first layer of a network reads the whole image (``dense_input=True``); later layers
    read only their own group's channels; ``depthwise``: one filter per channel.

    >>> conv = GroupConv2d(16, 32, 3, groups=4, out_side=5)
    >>> conv(torch.randn(2, 8, 5, 5), Window(0, 2)).shape   # groups 0 and 1: 2 x 4 inputs
    torch.Size([2, 16, 5, 5])
    >>> conv.macs(2) == 2 * conv.macs(1), conv.to_static(2)
    (True, Conv2d(8, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), groups=2, bias=False))
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, groups: int,
                 stride: int = 1, dense_input: bool = False, depthwise: bool = False,
                 out_side: int = 1) -> None:
        super().__init__(groups)
        if out_channels % groups or (not dense_input and in_channels % groups):
            raise ValueError(f"channels {in_channels}->{out_channels} do not split into "
                             f"{groups} groups")
        if depthwise and in_channels != out_channels:
            raise ValueError("a depthwise conv keeps its channels")
        self.in_per_group = (1 if depthwise else in_channels if dense_input
                             else in_channels // groups)
        self.out_per_group = out_channels // groups
        self.kernel_size, self.stride, self.padding = kernel_size, stride, kernel_size // 2
        self.dense_input, self.depthwise, self.out_side = dense_input, depthwise, out_side
        weight = torch.empty(out_channels, self.in_per_group, kernel_size, kernel_size)
        # He init per group: each group's fan-in is its own input slice
        nn.init.kaiming_normal_(weight, mode="fan_in", nonlinearity="relu")
        # channels-last: oneDNN then uses the weights as they are instead of reordering them on
        # every call (measured by make bench); slicing groups along dim 0 stays a view
        self._register_grouped("weight", weight.contiguous(memory_format=torch.channels_last))

    def _conv_groups(self, n: int) -> int:
        return 1 if self.dense_input else n * self.out_per_group if self.depthwise else n

    def forward(self, x: Tensor, window: Window) -> Tensor:
        """Run the window's groups on ``x`` (which holds those groups' channels)."""
        n = 1 if window.trainable else window.stop - window.start
        return F.conv2d(x, self.pick("weight", window), None, self.stride, self.padding, 1,
                        self._conv_groups(n))

    def macs(self, k: int) -> int:  # noqa: D102
        return conv_macs(k * self.out_per_group, self.in_per_group, self.kernel_size,
                         self.out_side)

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        n, weight = k - start, self.rows("weight", start, k)
        conv_groups = self._conv_groups(n)
        static = nn.Conv2d(weight.shape[1] * conv_groups, weight.shape[0], self.kernel_size,
                           self.stride, self.padding, groups=conv_groups, bias=False)
        static.weight.copy_(weight)
        static.weight.data = static.weight.data.contiguous(memory_format=torch.channels_last)
        return static


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

    def _stats(self, start: int, stop: int) -> list[Tensor]:
        span = slice(start * self.per_group, stop * self.per_group)
        return [self.running_mean[span], self.running_var[span]]

    def forward(self, x: Tensor, window: Window) -> Tensor:
        """Normalise the window's groups; batch statistics only for a trainable group."""
        stop = window.start + 1 if window.trainable else window.stop
        mean, var = self._stats(window.start, stop)
        return batch_norm(x, mean, var, self.pick("weight", window), self.pick("bias", window),
                          window.trainable, self.momentum, self.eps)

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return super().tensors(k) + (self._stats(0, k) if statistics else [])

    def group_state(self, group: int) -> list[Tensor]:  # noqa: D102
        return self.group_parameters(group) + self._stats(group, group + 1)

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        static = nn.BatchNorm2d((k - start) * self.per_group, self.eps, self.momentum)
        for mine, theirs in zip(_static_state(static), [self.rows("weight", start, k),
                                                        self.rows("bias", start, k),
                                                        *self._stats(start, k)], strict=True):
            mine.copy_(theirs)
        return static


class StaticGroupLinear(nn.Module):
    """n block-diagonal linear maps as one batched GEMM; ``sum_groups``: logits summed.

    Plain torch (scriptable); the weight is (n x out, in), group-major like ``nn.Linear``'s.
    """

    def __init__(self, groups: int, in_per_group: int, out_per_group: int,
                 sum_groups: bool) -> None:
        super().__init__()
        self.groups, self.in_per_group, self.out_per_group = groups, in_per_group, out_per_group
        self.sum_groups, self.divisor = sum_groups, 1.0
        self.weight = nn.Parameter(torch.empty(groups * out_per_group, in_per_group))
        self.bias = nn.Parameter(torch.empty(groups * out_per_group))

    def image_macs(self) -> int:
        """Multiply-accumulates per image (``dyndnn.models.macs.static_macs`` asks)."""
        return conv_macs(self.groups * self.out_per_group, self.in_per_group)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        n = self.groups
        if n == 1:
            out = F.linear(x, self.weight, self.bias)
            return out / self.divisor if self.sum_groups else out
        # (n, N, in) @ (n, in, out) -> (n, N, out): one batched GEMM over the groups
        xs = x.view(x.shape[0], n, self.in_per_group).transpose(0, 1)
        ws = self.weight.view(n, self.out_per_group, self.in_per_group)
        out = torch.baddbmm(self.bias.view(n, 1, self.out_per_group), xs, ws.transpose(1, 2))
        if self.sum_groups:
            return out.sum(0) / self.divisor
        return out.transpose(0, 1).reshape(x.shape[0], n * self.out_per_group)


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

    def forward(self, x: Tensor, window: Window) -> Tensor:
        """Map (N, n x in_per_group) to (N, n x out_per_group), or to summed (N, out)."""
        n = 1 if window.trainable else window.stop - window.start
        weight, bias = self.pick("weight", window), self.pick("bias", window)
        if n == 1:
            return F.linear(x, weight, bias)
        # (n, N, in) @ (n, in, out) -> (n, N, out): one batched GEMM over the active groups
        xs = x.view(x.shape[0], n, self.in_per_group).transpose(0, 1)
        ws = weight.view(n, self.out_per_group, self.in_per_group)
        out = torch.baddbmm(bias.view(n, 1, self.out_per_group), xs, ws.transpose(1, 2))
        if self.sum_groups:
            return out.sum(0)
        return out.transpose(0, 1).reshape(x.shape[0], n * self.out_per_group)

    def macs(self, k: int) -> int:  # noqa: D102
        return conv_macs(k * self.out_per_group, self.in_per_group)

    @torch.no_grad()
    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        static = StaticGroupLinear(k - start, self.in_per_group, self.out_per_group,
                                   self.sum_groups)
        static.weight.copy_(self.rows("weight", start, k))
        static.bias.copy_(self.rows("bias", start, k))
        return static
