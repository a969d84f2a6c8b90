"""Dense AlexNet pieces the baselines share, and how their configurations are sized.

Sizing (ours: the families are compared "at the same compression rate"), in two steps:

1. The full configuration (``sized``). ``budget="macs"`` (the default): every layer's width
   is the group model's scaled by one factor, chosen so the baseline's full configuration costs
   the group model's full MACs -- the same compute budget. ``budget="width"``: the group
   model's layer widths as they are (a dense baseline then costs about G times more).
2. The configurations (``matched_fractions``): configuration k keeps a prefix of every layer's
   channels such that macs(k) / macs(G) matches the group model's k / G as closely as whole
   channels allow. The compression rates (smallest / full MACs) are then the same for all
   families, and what differs is what the paper compares: the time and energy each
   configuration really takes, and the bytes held to serve them all.

>>> spec = BaselineSpec("slimmable", groups=4, width=0.25, in_channels=1, image_size=28)
>>> net = PlainAlexNet((8, 24, 48, 32, 32), (128, 64), in_channels=1, image_size=28)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.models.base import module_bytes
from dyndnn.models.group import ALEXNET_KERNELS, ALEXNET_POOL_AFTER, ModelSpec


@dataclass(frozen=True)
class BaselineSpec:
    """Everything needed to rebuild a baseline model; stored in every checkpoint."""

    family: str
    groups: int = 4
    width: float = 0.25
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    dropout: float = 0.0
    budget: str = "macs"  # full configuration: the group model's MACs, or its widths

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"budget must be one of {BUDGETS}; got {self.budget!r}")

    def group_model(self) -> ModelSpec:
        """The spec of the group model this baseline is compared with."""
        return ModelSpec(self.groups, self.width, self.in_channels, self.image_size,
                         self.num_classes)

    def group_channels(self) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(conv channels, FC hidden units) of the group model's full configuration."""
        group = self.group_model()
        return (tuple(c * self.groups for c in group.channels_per_group()),
                tuple(h * self.groups for h in group.hidden_per_group()))


BUDGETS = ("macs", "width")
Widths = tuple[tuple[int, ...], tuple[int, ...]]


def alexnet_macs(channels: Sequence[int], hidden: Sequence[int], in_channels: int,
                 image_size: int, num_classes: int) -> int:
    """MACs per image of a dense AlexNet with these conv channels and FC hidden units."""
    sides, side = conv_output_sizes(image_size)
    inputs = [in_channels, *channels[:-1]]
    conv = sum(o * i * k * k * s * s
               for o, i, k, s in zip(channels, inputs, ALEXNET_KERNELS, sides, strict=True))
    fcs = [channels[-1] * side * side, *hidden, num_classes]
    return conv + sum(a * b for a, b in pairwise(fcs))


def group_full_macs(spec: BaselineSpec) -> int:
    """MACs per image of the group model's full configuration (``GroupAlexNet.macs(G)``).

    Each of its G groups is an independent path: a dense AlexNet at the per-group widths.
    """
    group = spec.group_model()
    return spec.groups * alexnet_macs(group.channels_per_group(), group.hidden_per_group(),
                                      spec.in_channels, spec.image_size, spec.num_classes)


def sized(spec: BaselineSpec, full_macs: Callable[[tuple[int, ...], tuple[int, ...]], float]
          ) -> Widths:
    """The full configuration's (conv channels, hidden units) under ``spec.budget``.

    ``full_macs(channels, hidden)`` is the family's full-configuration MACs at those widths.
    """
    channels, hidden = spec.group_channels()
    if spec.budget == "width":
        return channels, hidden

    def at(scale: float) -> Widths:
        return (tuple(max(spec.groups, round(c * scale)) for c in channels),
                tuple(max(spec.groups, round(h * scale)) for h in hidden))

    target, lo, hi = group_full_macs(spec), 0.0, 1.0
    for _ in range(24):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if full_macs(*at(mid)) < target else (lo, mid)
    return min(at(lo), at(hi), key=lambda w: abs(full_macs(*w) - target))


def conv_output_sizes(image_size: int) -> tuple[tuple[int, ...], int]:
    """(output side of every conv, side of the last feature map): padding keeps the size."""
    sides, side = [], image_size
    for pool in ALEXNET_POOL_AFTER:
        sides.append(side)
        side = side // 2 if pool else side
    if side < 1:
        raise ValueError(f"image_size {image_size} is too small for 3 poolings")
    return tuple(sides), side


def prefix(total: int, fraction: float) -> int:
    """Channels a configuration keeps of a layer of ``total``: at least 1."""
    return max(1, min(total, round(fraction * total)))


def cumulative_channels(total: int, fractions: Sequence[float]) -> tuple[int, ...]:
    """Nested channel prefixes, strictly growing, the last = ``total``.

    >>> cumulative_channels(16, (0.5, 0.7, 0.87, 1.0))
    (8, 11, 14, 16)
    """
    if total < len(fractions):
        raise ValueError(f"a layer of {total} channels cannot hold {len(fractions)} nested "
                         "configurations; raise model.width")
    out: list[int] = []
    for i, f in enumerate(fractions):
        lowest = out[-1] + 1 if out else 1
        highest = total - (len(fractions) - 1 - i)  # leave one channel per later block
        out.append(min(highest, max(lowest, prefix(total, f))))
    out[-1] = total
    return tuple(out)


def matched_fractions(cost: Callable[[Sequence[float]], float], groups: int,
                      targets: Sequence[float] | None = None, iterations: int = 30
                      ) -> tuple[float, ...]:
    """Nested width fractions f_1 < ... < f_G = 1 with cost(f_1..f_k) / cost(all) = targets[k].

    ``cost(fractions)`` is the MACs of the configuration with those (cumulative) fractions;
    ``targets`` default to k / G, the group model's MAC fractions. Each f_k is found by
    bisection; the full cost depends on the split itself (block lower-triangular layers), so
    the split is solved again against the full cost it gives until it stops changing.

    >>> fr = matched_fractions(lambda f: f[-1] ** 2, 4)   # a dense net: MACs ~ width^2
    >>> [round(f, 3) for f in fr]
    [0.5, 0.707, 0.866, 1.0]
    """
    targets = [k / groups for k in range(1, groups + 1)] if targets is None else list(targets)
    fractions = [k / groups for k in range(1, groups + 1)]
    for _ in range(iterations):
        full = cost(fractions)
        solved: list[float] = []
        for k in range(1, groups):
            lo, hi = solved[-1] if solved else 0.0, 1.0
            for _ in range(40):
                mid = (lo + hi) / 2
                if cost([*solved, mid]) < targets[k - 1] * full:
                    lo = mid
                else:
                    hi = mid
            # whole channels make the cost a step function: take the closer side of the step
            goal = targets[k - 1] * full
            solved.append(min((lo, hi), key=lambda f: abs(cost([*solved, f]) - goal)))
        solved.append(1.0)
        if max(abs(a - b) for a, b in zip(solved, fractions, strict=True)) < 1e-6:
            break
        fractions = solved
    return tuple(solved)


def channels_last(conv: nn.Conv2d) -> nn.Conv2d:
    """``conv`` with channels-last weights: oneDNN's layout, as the group model keeps them."""
    conv.weight.data = conv.weight.data.contiguous(memory_format=torch.channels_last)
    return conv


class PlainAlexNet(nn.Module):
    """A dense AlexNet (5 conv + BN + 3 FC) with the given widths: an ordinary network.

    The independent baseline trains one per configuration; slimmable and Tann export their
    configurations to layers like these.
    """

    def __init__(self, channels: Sequence[int], hidden: Sequence[int], in_channels: int,
                 image_size: int, num_classes: int = 10, dropout: float = 0.0) -> None:
        super().__init__()
        self.widths = (tuple(channels), tuple(hidden))  # what rebuilds it (a load, an export)
        self.conv_sides, side = conv_output_sizes(image_size)
        self.dropout = dropout
        layers: list[nn.Module] = []
        previous = in_channels
        for c, k, pool in zip(channels, ALEXNET_KERNELS, ALEXNET_POOL_AFTER, strict=True):
            layers += [channels_last(nn.Conv2d(previous, c, k, padding=k // 2, bias=False)),
                       nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
            previous = c
        self.features = nn.Sequential(*layers)
        sizes = [channels[-1] * side * side, *hidden, num_classes]
        self.fcs = nn.ModuleList(nn.Linear(a, b) for a, b in pairwise(sizes))

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, classes)."""
        x = self.features(x.contiguous(memory_format=torch.channels_last)).flatten(1)
        for fc in self.fcs[:-1]:
            x = F.dropout(F.relu(fc(x)), self.dropout, self.training)
        return self.fcs[-1](x)

    def macs(self) -> int:
        """Multiply-accumulates per image."""
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        conv = sum(m.weight.numel() * side * side
                   for m, side in zip(convs, self.conv_sides, strict=True))
        return conv + sum(fc.weight.numel() for fc in self.fcs)

    def param_bytes(self) -> int:
        """Bytes of the Parameters and the BN running statistics."""
        return module_bytes(self)
