"""How the baselines are sized against the group model, for any architecture.

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
>>> channels, fractions = dense_sizing(spec)
>>> channels[64], [round(f, 2) for f in fractions]   # AlexNet's first conv; the 4 widths
(8, [0.49, 0.69, 0.86, 1.0])

Every cost here is ``dyndnn.models.macs.network_macs`` on the architecture: the formula the layers'
``macs(k)`` use, applied before any layer exists.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dyndnn.models.architecture import Architecture, Linear, architecture
from dyndnn.models.base import NetworkSpec
from dyndnn.models.group import ModelSpec
from dyndnn.models.macs import network_macs

BUDGETS = ("macs", "width")
Channels = dict[int, int]  # a width-1 layer's channel count -> this network's


@dataclass(frozen=True)
class BaselineSpec(NetworkSpec):
    """Everything needed to rebuild a baseline model: its family, the network, its sizing."""

    family: str
    budget: str = "macs"  # full configuration: the group model's MACs, or its widths

    def __post_init__(self) -> None:
        if self.budget not in BUDGETS:
            raise ValueError(f"budget must be one of {BUDGETS}; got {self.budget!r}")

    def group_model(self) -> ModelSpec:
        """The spec of the group model this baseline is compared with."""
        return ModelSpec(groups=self.groups, width=self.width, in_channels=self.in_channels,
                         image_size=self.image_size, num_classes=self.num_classes,
                         architecture=self.architecture)

    def network(self) -> Architecture:
        """The architecture both are built from."""
        return architecture(self.architecture)


def macs_at(spec: BaselineSpec, blocks: Callable[[int], Sequence[int]],
            diagonal: bool = False) -> int:
    """``network_macs`` of the spec's architecture with these blocks per layer."""
    return network_macs(spec.network(), spec.in_channels, spec.image_size, spec.num_classes,
                        blocks, diagonal)


def group_full_macs(spec: BaselineSpec) -> int:
    """MACs per image of the group model's full configuration (``GroupNet.macs(G)``)."""
    per_group = spec.group_model().per_group
    return macs_at(spec, lambda c: [per_group(c) * (g + 1) for g in range(spec.groups)],
                   diagonal=True)


def layer_widths(spec: BaselineSpec) -> list[int]:
    """Every width-1 channel count of the architecture (convs and hidden layers)."""
    arch = spec.network()
    return sorted({c.channels for c in arch.convs()}
                  | {layer.features for layer in arch.layers if isinstance(layer, Linear)})


def sized(spec: BaselineSpec, full_macs: Callable[[Channels], float]) -> Channels:
    """The full configuration's channels (per width-1 layer size) under ``spec.budget``.

    ``full_macs(channels)`` is the family's full-configuration MACs with those channels:
    ``budget="width"`` takes the group model's widths, ``"macs"`` scales them by the one
    factor that brings the full MACs to the group model's.
    """
    per_group, G = spec.group_model().per_group, spec.groups
    widths = {c: per_group(c) * G for c in layer_widths(spec)}
    if spec.budget == "width":
        return widths

    def at(scale: float) -> Channels:
        return {c: max(G, round(w * scale)) for c, w in widths.items()}

    target, lo, hi = group_full_macs(spec), 0.0, 1.0
    for _ in range(24):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if full_macs(at(mid)) < target else (lo, mid)
    return min(at(lo), at(hi), key=lambda w: abs(full_macs(w) - target))


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


def dense_macs(spec: BaselineSpec, channels: Channels, fraction: float) -> int:
    """MACs of a dense network whose every layer keeps ``fraction`` of ``channels``."""
    return macs_at(spec, lambda c: [prefix(channels[c], fraction)])


@functools.lru_cache(maxsize=64)
def dense_sizing(spec: BaselineSpec) -> tuple[Channels, tuple[float, ...]]:
    """(full channels per width-1 layer size, width fractions of the G configurations)."""
    channels = sized(spec, lambda ch: dense_macs(spec, ch, 1.0))
    fractions = matched_fractions(lambda f: dense_macs(spec, channels, f[-1]), spec.groups)
    return channels, fractions


def tann_macs(spec: BaselineSpec, fractions: Sequence[float], channels: Channels) -> int:
    """MACs of the Tann configuration whose cumulative block fractions are ``fractions``."""
    return macs_at(spec, lambda c: [prefix(channels[c], f) for f in fractions])


@functools.lru_cache(maxsize=64)
def tann_sizing(spec: BaselineSpec) -> tuple[Channels, tuple[float, ...]]:
    """(full channels per width-1 layer size, cumulative block fractions)."""
    def split(channels: Channels) -> tuple[float, ...]:
        return matched_fractions(lambda f: tann_macs(spec, f, channels), spec.groups)

    channels = sized(spec, lambda ch: tann_macs(spec, split(ch), ch))
    return channels, split(channels)
