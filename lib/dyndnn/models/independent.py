"""Baseline 1: independent models, one ordinary network per configuration, each trained alone.

>>> model = IndependentModels(BaselineSpec("independent", groups=4, width=0.25))
>>> model.set_active_groups(2)        # serves network 2 (all G stay resident)
>>> model.serving_bytes() == sum(model.param_bytes(k) for k in range(1, 5))
True

Switching configuration means using another network: resident, that costs memory (the sum of
all G); not resident, a load (``dyndnn.evaluation.switch_cost`` measures it from a file).
Training (``dyndnn.training.trainer``): stage k trains network k from its own initialisation, alone.
Network k is the architecture at configuration k's width (``sizing.dense_sizing``), built
from the slimmable layers with a single width: ordinary layers.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from dyndnn.models.base import DynamicModel, module_bytes
from dyndnn.models.layers import Sequence, Window
from dyndnn.models.network import SlimLayers, build_network
from dyndnn.models.sizing import BaselineSpec, dense_sizing, prefix


class IndependentModels(DynamicModel):
    """G ordinary networks, network k at configuration k's width."""

    family = "independent"

    def __init__(self, spec: BaselineSpec) -> None:
        super().__init__(spec.groups)
        self.spec = spec
        self.channels, self.fractions = dense_sizing(spec)
        self.nets = nn.ModuleList(self.new_network(k) for k in range(1, spec.groups + 1))

    def new_network(self, k: int) -> Sequence:
        """A freshly initialised network of configuration k's shape (``fractions[k-1]``)."""
        spec, fraction = self.spec, self.fractions[k - 1]
        return build_network(self.architecture, SlimLayers(
            lambda c: [prefix(self.channels[c], fraction)], spec.in_channels,
            spec.num_classes), spec.image_size, spec.dropout)

    def _net(self, k: int | None) -> Sequence:
        return self.nets[self._k(k) - 1]

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the active network (in train mode: its training step)."""
        return self._net(None)(x.contiguous(memory_format=torch.channels_last),
                              Window(0, 1, self.training))

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """Network ``group + 1``'s Parameters: what training stage group+1 updates."""
        return list(self.nets[group].parameters())

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of network k."""
        return self._net(k).macs(1)

    def param_count(self, k: int | None = None) -> int:
        """Parameters of network k."""
        return sum(p.numel() for p in self._net(k).parameters())

    def param_bytes(self, k: int | None = None) -> int:
        """Bytes of network k (weights and BN statistics)."""
        return module_bytes(self._net(k))

    def serving_bytes(self) -> int:
        """All G networks: switching without a load needs every one resident."""
        return sum(module_bytes(net) for net in self.nets)

    def export(self, k: int | None = None) -> nn.Module:
        """Network k as plain torch layers (copied), in eval mode."""
        return self._net(k).to_static(1).eval()
