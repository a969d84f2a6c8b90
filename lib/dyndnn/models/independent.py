"""Baseline 1: independent models, one ordinary network per configuration, each trained alone.

>>> model = IndependentModels(BaselineSpec("independent", groups=4, width=0.25))
>>> model.set_active_groups(2)        # serves network 2 (all G stay resident)
>>> model.serving_bytes() == sum(model.param_bytes(k) for k in range(1, 5))
True

Switching configuration means using another network: resident, that costs memory (the sum of
all G); not resident, a load (``dyndnn.evaluate.switch_cost`` measures it from a file).
Training (``dyndnn.train``): stage k trains network k from its own initialisation, alone.
"""

from __future__ import annotations

import copy
import functools

from torch import Tensor, nn

from dyndnn.models.base import DynamicModel
from dyndnn.models.dense import (
    BaselineSpec,
    PlainAlexNet,
    alexnet_macs,
    matched_fractions,
    prefix,
    sized,
)


def dense_macs(channels: tuple[int, ...], hidden: tuple[int, ...], spec: BaselineSpec,
               fraction: float) -> int:
    """MACs of a dense AlexNet whose every layer keeps ``fraction`` of its channels."""
    return alexnet_macs([prefix(c, fraction) for c in channels],
                        [prefix(h, fraction) for h in hidden], spec.in_channels,
                        spec.image_size, spec.num_classes)


@functools.lru_cache(maxsize=64)
def dense_sizing(spec: BaselineSpec) -> tuple[tuple[int, ...], tuple[int, ...],
                                              tuple[float, ...]]:
    """(full conv channels, full hidden units, width fractions of the G configurations)."""
    channels, hidden = sized(spec, lambda c, h: dense_macs(c, h, spec, 1.0))
    fractions = matched_fractions(lambda f: dense_macs(channels, hidden, spec, f[-1]),
                                  spec.groups)
    return channels, hidden, fractions


class IndependentModels(DynamicModel):
    """G ordinary AlexNets, network k at configuration k's width (``dense_sizing``)."""

    family = "independent"

    def __init__(self, spec: BaselineSpec) -> None:
        super().__init__(spec.groups)
        self.spec = spec
        channels, hidden, self.fractions = dense_sizing(spec)
        self.nets = nn.ModuleList(
            PlainAlexNet([prefix(c, f) for c in channels], [prefix(h, f) for h in hidden],
                         spec.in_channels, spec.image_size, spec.num_classes, spec.dropout)
            for f in self.fractions)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the active network (in train mode: its training step)."""
        return self.nets[self._active - 1](x)

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """Network ``group + 1``'s Parameters: what training stage group+1 updates."""
        return list(self.nets[group].parameters())

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of network k."""
        return self.nets[self._k(k) - 1].macs()

    def param_count(self, k: int | None = None) -> int:
        """Parameters of network k."""
        return sum(p.numel() for p in self.nets[self._k(k) - 1].parameters())

    def param_bytes(self, k: int | None = None) -> int:
        """Bytes of network k (weights and BN statistics)."""
        return self.nets[self._k(k) - 1].param_bytes()

    def serving_bytes(self) -> int:
        """All G networks: switching without a load needs every one resident."""
        return sum(net.param_bytes() for net in self.nets)

    def export(self, k: int | None = None) -> nn.Module:
        """Network k itself (a copy), in eval mode."""
        return copy.deepcopy(self.nets[self._k(k) - 1]).eval()
