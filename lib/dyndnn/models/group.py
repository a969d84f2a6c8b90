"""The dynamic network: ``GroupNet``, G independent group paths that can be pruned at run time.

>>> model = GroupNet(groups=4, width=0.25, in_channels=1, image_size=28)   # AlexNet
>>> model.set_active_groups(2)          # O(1): later groups are skipped, nothing is copied
>>> logits = model(torch.randn(8, 1, 28, 28))
>>> with model.active_groups(4):        # temporarily all groups
...     logits = model(torch.randn(8, 1, 28, 28))
>>> model.macs(1) * 4 == model.macs(4)
True
>>> GroupNet(groups=2, width=0.5, in_channels=1, image_size=28, architecture="resnet20")
GroupNet(resnet20, G=2, 0.03 M parameters)

Connectivity, by design: the first conv reads the whole image; every later layer is
block-diagonal, so group g is an independent path (in a residual network each group keeps
its own shortcut). How the active groups' logits combine is ``combine``: ``sum`` (group g
learns a correction on top of groups 1..g-1: it trains on the residual) or ``mean`` (group g
trains on its own; the configuration averages its groups, an ensemble). Either way pruning to
k groups gives exactly the model after training stage k.

Mode: in ``eval()`` the model serves its active groups. In ``train()`` it runs one training
*stage*: the last active group trains (autograd, batch statistics, dropout) while the groups
before it run frozen, without autograd and with their BN in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from dyndnn.models.base import DynamicModel, NetworkSpec
from dyndnn.models.group_layers import StaticGroupLinear
from dyndnn.models.layers import Window
from dyndnn.models.network import GroupLayers, build_network

COMBINE_RULES = ("sum", "mean")


@dataclass(frozen=True, kw_only=True)
class ModelSpec(NetworkSpec):
    """Everything needed to rebuild a ``GroupNet``: the network and how its groups combine."""

    combine: str = "sum"  # how active groups' logits combine: sum | mean

    def per_group(self, channels: int) -> int:
        """Channels one group has of a layer of ``channels`` at width 1 (at least 1)."""
        return max(1, round(channels * self.width / self.groups))


class GroupNet(DynamicModel):
    """Any architecture with G prunable groups (Xun et al. 2019)."""

    family = "group"

    def __init__(self, groups: int = 4, width: float = 0.25, in_channels: int = 3,
                 image_size: int = 32, num_classes: int = 10, dropout: float = 0.0,
                 combine: str = "sum", architecture: str = "alexnet") -> None:
        super().__init__(groups)
        self.spec = ModelSpec(groups=groups, width=width, in_channels=in_channels,
                              image_size=image_size, num_classes=num_classes, dropout=dropout,
                              combine=combine, architecture=architecture)
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {COMBINE_RULES}; got {combine!r}")
        self.body = build_network(self.architecture, GroupLayers(
            groups, self.spec.per_group, in_channels, num_classes), image_size, dropout)

    def extra_repr(self) -> str:  # noqa: D102
        return ""

    def __repr__(self) -> str:
        return (f"GroupNet({self.architecture.name}, G={self.groups}, "
                f"{self.param_count(self.groups) / 1e6:.2f} M parameters)")

    # --- forward --------------------------------------------------------------------------
    def forward_groups(self, x: Tensor, start: int, stop: int, trainable: bool = False) -> Tensor:
        """Summed logits of groups ``start..stop-1``.

        ``trainable`` runs a single group with autograd, batch statistics and dropout.
        """
        if trainable and stop - start != 1:
            raise ValueError("only one group trains at a time")
        return self.body(x.contiguous(memory_format=torch.channels_last),
                         Window(start, stop, trainable))

    def forward(self, x: Tensor) -> Tensor:
        """Logits of the active configuration; in train mode, one training stage (see module)."""
        k = self._active
        mean = self.spec.combine == "mean"
        if not self.training:
            logits = self.forward_groups(x, 0, k)
            return logits / k if mean else logits
        logits = self.forward_groups(x, k - 1, k, trainable=True)
        if k == 1 or mean:  # mean: each group learns on its own
            return logits
        with torch.no_grad():  # frozen groups: no graph, no weight gradients
            frozen = self.forward_groups(x, 0, k - 1)
        return frozen + logits

    # --- per-configuration accounting -----------------------------------------------------
    def group_state(self, group: int) -> list[Tensor]:
        """Every tensor group ``group`` owns: its Parameters and its BN running statistics."""
        return self.body.group_state(group)

    def group_path(self, group: int) -> nn.Module:
        """Group ``group`` (0-based) alone as plain layers (Conv2d, BatchNorm2d, Linear).

        Training code that works on ordinary torch layers (RCT) trains this path, then
        ``load_group_path`` writes it back into the grouped blocks. Its logits are the group's
        contribution to the summed logits.
        """
        if not 0 <= group < self.groups:
            raise ValueError(f"group must be between 0 and {self.groups - 1}; got {group}")
        return _plain_linears(self.body.to_static(group + 1, group))

    def load_group_path(self, group: int, path: nn.Module) -> None:
        """Copy a trained ``group_path`` into group ``group``'s slices (weights, BN statistics)."""
        self.body.load_static(path, group)

    def export(self, k: int | None = None) -> nn.Module:
        """Configuration k as plain torch layers, ready for TorchScript and ONNX.

        Conv2d(groups=k), BatchNorm2d and batched GEMMs over the groups (``StaticGroupLinear``).
        """
        k = self._k(k)
        static = self.body.to_static(k)
        if self.spec.combine == "mean":
            static[-1].divisor = float(k)
        return static.eval()


def _plain_linears(module: nn.Module) -> nn.Module:
    """One group's ``StaticGroupLinear`` layers swapped (in place) for ``nn.Linear``."""
    for name, child in list(module.named_children()):
        if isinstance(child, StaticGroupLinear) and child.groups == 1:
            plain = nn.Linear(child.in_per_group, child.out_per_group)
            plain.load_state_dict(child.state_dict())
            setattr(module, name, plain)
        else:
            _plain_linears(child)
    return module
