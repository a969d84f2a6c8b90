"""Baseline 3: a slimmable network (Yu et al. 2018, arXiv 1812.08928).

One dense AlexNet; configuration k keeps the first channels of every layer (its width) and has
its own BatchNorm (*switchable BN*: a width's channel statistics differ from the full
network's, so each width keeps its own). All widths train together: each step runs every
width, largest first, and sums their losses (``dyndnn.train``'s joint strategy).

>>> model = SlimmableAlexNet(BaselineSpec("slimmable", groups=4, width=0.25))
>>> model.set_active_groups(1)    # the narrowest width, with its own BN
>>> model.serving_bytes() > model.param_bytes(4)   # full weights + every width's BN
True

Serving slices the shared weights as the reference implementation does
(``weight[:out, :in]``), which is a strided view: each conv call packs it.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.models.base import DynamicModel, module_bytes, tensor_bytes
from dyndnn.models.dense import (
    BaselineSpec,
    PlainAlexNet,
    conv_output_sizes,
    cumulative_channels,
)
from dyndnn.models.group import ALEXNET_KERNELS, ALEXNET_POOL_AFTER
from dyndnn.models.independent import dense_sizing


class SlimmableAlexNet(DynamicModel):
    """AlexNet with G widths sharing weights, switchable BN per width."""

    family = "slimmable"
    joint_training = True

    def __init__(self, spec: BaselineSpec) -> None:
        super().__init__(spec.groups)
        self.spec = spec
        channels, hidden, self.fractions = dense_sizing(spec)
        self.conv_sides, side = conv_output_sizes(spec.image_size)
        self.widths = [cumulative_channels(c, self.fractions) for c in channels]  # per layer
        self.hidden_widths = [cumulative_channels(h, self.fractions) for h in hidden]
        self.feature_side = side
        self.convs = nn.ParameterList()
        self.norms = nn.ModuleList()  # norms[layer][k-1]: BN of width k
        previous = spec.in_channels
        for c, kernel in zip(channels, ALEXNET_KERNELS, strict=True):
            conv = nn.Conv2d(previous, c, kernel, bias=False)  # for its default init only
            self.convs.append(nn.Parameter(conv.weight.detach()))
            previous = c
        for widths in self.widths:
            self.norms.append(nn.ModuleList(nn.BatchNorm2d(w) for w in widths))
        sizes = [channels[-1] * side * side, *hidden, spec.num_classes]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))

    def _fc_slices(self, k: int) -> list[tuple[int, int]]:
        """(out, in) units of every FC layer at width k."""
        area = self.feature_side ** 2
        ins = [self.widths[-1][k - 1] * area, *(h[k - 1] for h in self.hidden_widths)]
        outs = [*(h[k - 1] for h in self.hidden_widths), self.spec.num_classes]
        return list(zip(outs, ins, strict=True))

    def forward(self, x: Tensor) -> Tensor:
        """Logits at the active width (train mode: that width's training step)."""
        k = self._active
        x = x.contiguous(memory_format=torch.channels_last)
        previous = self.spec.in_channels
        for weight, widths, norms, pool in zip(self.convs, self.widths, self.norms,
                                               ALEXNET_POOL_AFTER, strict=True):
            out = widths[k - 1]
            x = F.conv2d(x, weight[:out, :previous], padding=weight.shape[-1] // 2)
            x = F.relu(norms[k - 1](x), inplace=True)
            if pool:
                x = F.max_pool2d(x, 2)
            previous = out
        x = x.flatten(1)
        for i, (fc, (out, inp)) in enumerate(zip(self.fcs, self._fc_slices(k), strict=True)):
            x = F.linear(x, fc.weight[:out, :inp], fc.bias[:out])
            if i < len(self.fcs) - 1:
                x = F.dropout(F.relu(x), self.spec.dropout, self.training)
        return x

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """Joint training: every configuration shares the weights (see ``stage_parameters``)."""
        return list(self.parameters())

    def _slices(self, k: int, statistics: bool = True) -> list[Tensor]:
        """The weight slices, BN parameters (and statistics) width k reads."""
        tensors: list[Tensor] = []
        previous = self.spec.in_channels
        for weight, widths, norms in zip(self.convs, self.widths, self.norms, strict=True):
            tensors.append(weight[:widths[k - 1], :previous])
            bn = norms[k - 1]
            tensors += [bn.weight, bn.bias]
            tensors += [bn.running_mean, bn.running_var] if statistics else []
            previous = widths[k - 1]
        for fc, (out, inp) in zip(self.fcs, self._fc_slices(k), strict=True):
            tensors += [fc.weight[:out, :inp], fc.bias[:out]]
        return tensors

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image at width k."""
        k = self._k(k)
        tensors = self._slices(k)
        convs = [t for t in tensors if t.dim() == 4]
        conv = sum(t.numel() * side * side for t, side in zip(convs, self.conv_sides,
                                                              strict=True))
        return conv + sum(out * inp for out, inp in self._fc_slices(k))

    def param_count(self, k: int | None = None) -> int:
        """Parameters width k uses (its weight slices and its own BN)."""
        return sum(t.numel() for t in self._slices(self._k(k), statistics=False))

    def param_bytes(self, k: int | None = None) -> int:
        """Bytes width k reads: its weight slices and its own BN."""
        return tensor_bytes(self._slices(self._k(k)))

    def serving_bytes(self) -> int:
        """The full weights plus every width's BN (parameters and statistics)."""
        return module_bytes(self)

    @torch.no_grad()
    def export(self, k: int | None = None) -> nn.Module:
        """Width k as a ``PlainAlexNet`` (copied slices and width k's BN)."""
        k = self._k(k)
        spec = self.spec
        plain = PlainAlexNet([w[k - 1] for w in self.widths],
                             [h[k - 1] for h in self.hidden_widths], spec.in_channels,
                             spec.image_size, spec.num_classes, spec.dropout)
        convs = [m for m in plain.features if isinstance(m, nn.Conv2d)]
        norms = [m for m in plain.features if isinstance(m, nn.BatchNorm2d)]
        previous = spec.in_channels
        for conv, bn, weight, widths, switchable in zip(convs, norms, self.convs, self.widths,
                                                        self.norms, strict=True):
            conv.weight.copy_(weight[:widths[k - 1], :previous])
            bn.load_state_dict(switchable[k - 1].state_dict())
            previous = widths[k - 1]
        for fc, mine, (out, inp) in zip(plain.fcs, self.fcs, self._fc_slices(k), strict=True):
            fc.weight.copy_(mine.weight[:out, :inp])
            fc.bias.copy_(mine.bias[:out])
        return plain.eval()
