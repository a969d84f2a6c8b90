"""The dynamic network: ``GroupAlexNet``, G independent group paths that can be pruned at run time.

>>> model = GroupAlexNet(groups=4, width=0.25, in_channels=1, image_size=28)
>>> model.set_active_groups(2)          # O(1): later groups are skipped, nothing is copied
>>> logits = model(torch.randn(8, 1, 28, 28))
>>> with model.active_groups(4):        # temporarily all groups
...     logits = model(torch.randn(8, 1, 28, 28))
>>> model.macs(1) * 4 == model.macs(4)
True

Connectivity, by design: the first conv reads the whole image; every later layer is
block-diagonal, so group g is an independent path. How the active groups' logits combine is
``combine``: ``sum`` (group g learns a correction on top of groups 1..g-1: it trains on the
residual) or ``mean`` (group g trains on its own; the configuration averages its groups, an
ensemble). Either way pruning to k groups gives exactly the model after training stage k.

Mode: in ``eval()`` the model serves its active groups. In ``train()`` it runs one training
*stage*: the last active group trains (autograd, batch statistics, dropout) while the groups
before it run frozen, without autograd and with their BN in eval mode.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.models.base import DynamicModel, tensor_bytes
from dyndnn.ops import GroupBatchNorm2d, GroupConv2d, GroupedModule, GroupLinear

# AlexNet modified for CIFAR-10: 5 conv + 3 FC; about 0.23 GMAC per 32x32 image at width 1.
ALEXNET_CHANNELS = (64, 192, 384, 256, 256)
ALEXNET_KERNELS = (5, 5, 3, 3, 3)
ALEXNET_POOL_AFTER = (True, True, False, False, True)  # 2x2 max-pool after conv 1, 2 and 5
ALEXNET_HIDDEN = (1024, 512)
COMBINE_RULES = ("sum", "mean")


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild a ``GroupAlexNet``; stored in every checkpoint."""

    groups: int = 4
    width: float = 0.25
    in_channels: int = 1
    image_size: int = 28
    num_classes: int = 10
    dropout: float = 0.0
    combine: str = "sum"  # how active groups' logits combine: sum | mean

    def channels_per_group(self) -> tuple[int, ...]:
        """Conv channels of one group, layer by layer (at least 1 each)."""
        return tuple(max(1, round(c * self.width / self.groups)) for c in ALEXNET_CHANNELS)

    def hidden_per_group(self) -> tuple[int, ...]:
        """FC hidden units of one group, layer by layer (at least 1 each)."""
        return tuple(max(1, round(h * self.width / self.groups)) for h in ALEXNET_HIDDEN)


class GroupAlexNet(DynamicModel):
    """AlexNet for CIFAR-10 / Fashion-MNIST with G prunable groups (Xun et al. 2019)."""

    family = "group-alexnet"

    def __init__(self, groups: int = 4, width: float = 0.25, in_channels: int = 3,
                 image_size: int = 32, num_classes: int = 10, dropout: float = 0.0,
                 combine: str = "sum") -> None:
        super().__init__(groups)
        self.spec = ModelSpec(groups, width, in_channels, image_size, num_classes, dropout,
                              combine)
        if combine not in COMBINE_RULES:
            raise ValueError(f"combine must be one of {COMBINE_RULES}; got {combine!r}")
        channels = self.spec.channels_per_group()
        hidden = self.spec.hidden_per_group()
        convs, norms, sizes = [], [], []
        size, previous = image_size, in_channels
        for i, (c, k, pool) in enumerate(zip(channels, ALEXNET_KERNELS, ALEXNET_POOL_AFTER,
                                             strict=True)):
            convs.append(GroupConv2d(previous if i == 0 else previous * groups, c * groups, k,
                                     groups, padding=k // 2, dense_input=i == 0))
            norms.append(GroupBatchNorm2d(c * groups, groups))
            sizes.append((size, size))  # conv output size (padding keeps it)
            size = size // 2 if pool else size
            previous = c
            if size < 1:
                raise ValueError(f"image_size {image_size} is too small for 3 poolings")
        self.convs, self.norms = nn.ModuleList(convs), nn.ModuleList(norms)
        self._conv_out_hw = tuple(sizes)
        features = channels[-1] * size * size
        self.fcs = nn.ModuleList([
            GroupLinear(features * groups, hidden[0] * groups, groups),
            GroupLinear(hidden[0] * groups, hidden[1] * groups, groups),
            GroupLinear(hidden[1] * groups, num_classes, groups, sum_groups=True),
        ])

    # --- forward --------------------------------------------------------------------------
    def forward_groups(self, x: Tensor, start: int, stop: int, trainable: bool = False) -> Tensor:
        """Summed logits of groups ``start..stop-1``.

        ``trainable`` runs a single group with autograd, batch statistics and dropout.
        """
        if trainable and stop - start != 1:
            raise ValueError("only one group trains at a time")
        # channels-last activations: oneDNN's fast layout for conv, BN and pooling on CPU
        x = x.contiguous(memory_format=torch.channels_last)
        for conv, norm, pool in zip(self.convs, self.norms, ALEXNET_POOL_AFTER, strict=True):
            x = F.relu(norm(conv(x, start, stop, trainable), start, stop, trainable),
                       inplace=True)
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        for fc in self.fcs[:-1]:
            x = F.relu(fc(x, start, stop, trainable))
            if trainable and self.spec.dropout:
                x = F.dropout(x, self.spec.dropout, training=True)
        return self.fcs[-1](x, start, stop, trainable)

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
    def grouped_modules(self) -> list[GroupedModule]:
        """Every grouped layer, in forward order."""
        return [m for m in self.modules() if isinstance(m, GroupedModule)]

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """All Parameters of group ``group`` (0-based): what training stage group+1 updates."""
        return [p for m in self.grouped_modules() for p in m.group_parameters(group)]

    def group_state(self, group: int) -> list[Tensor]:
        """Every tensor group ``group`` owns: its Parameters and its BN running statistics."""
        stats = []
        for norm in self.norms:
            span = slice(group * norm.per_group, (group + 1) * norm.per_group)
            stats += [norm.running_mean[span], norm.running_var[span]]
        return self.group_parameters(group) + stats

    def param_count(self, k: int | None = None) -> int:
        """Parameters configuration k uses (default: the active one)."""
        k = self._k(k)
        return sum(p.numel() for g in range(k) for p in self.group_parameters(g))

    def param_bytes(self, k: int | None = None) -> int:
        """Bytes configuration k needs to serve: Parameters and BN running statistics."""
        k = self._k(k)
        return tensor_bytes(t for g in range(k) for t in self.group_state(g))

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of configuration k (convs and FCs)."""
        k = self._k(k)
        conv = sum(c.macs(k, hw) for c, hw in zip(self.convs, self._conv_out_hw, strict=True))
        return conv + sum(fc.macs(k) for fc in self.fcs)

    def group_path(self, group: int) -> GroupPath:
        """Group ``group`` (0-based) alone as plain layers, initialised from its weights.

        Training code that works on ordinary ``nn.Conv2d`` / ``nn.Linear`` modules (RCT) trains
        this path, then ``load_group_path`` writes it back into the grouped blocks.
        """
        return GroupPath(self, group)

    @torch.no_grad()
    def load_group_path(self, group: int, path: GroupPath) -> None:
        """Copy a trained ``GroupPath`` into group ``group``'s slices (weights, BN statistics)."""
        for mine, theirs in zip(self.group_state(group), path.state_tensors(), strict=True):
            mine.copy_(theirs.reshape(mine.shape))

    def export(self, k: int | None = None) -> nn.Module:
        """A standalone static module of configuration k (plain torch layers, copied weights).

        Ready for ``torch.jit.script`` or ``torch.onnx.export``; see ``dyndnn.export``.
        """
        return StaticGroupAlexNet(self, self._k(k)).eval()


class StaticGroupAlexNet(nn.Module):
    """Configuration k of a ``GroupAlexNet`` as plain torch layers.

    Conv2d(groups=k), BatchNorm2d, and the grouped FCs as 1x1 Conv1d(groups=k), so TorchScript
    and ONNX need nothing of dyndnn.
    """

    def __init__(self, model: GroupAlexNet, k: int) -> None:
        super().__init__()
        if not 1 <= k <= model.groups:
            raise ValueError(f"k must be between 1 and {model.groups}; got {k}")
        self.k, self.num_classes = k, model.spec.num_classes
        self.divisor = float(k) if model.spec.combine == "mean" else 1.0
        layers: list[nn.Module] = []
        with torch.no_grad():
            for conv, norm, pool in zip(model.convs, model.norms, ALEXNET_POOL_AFTER,
                                        strict=True):
                weight = conv._pick("weight", 0, k, False)
                static = nn.Conv2d(weight.shape[1] * (1 if conv.dense_input else k),
                                   weight.shape[0], conv.kernel_size, padding=conv.padding,
                                   groups=1 if conv.dense_input else k, bias=False)
                static.weight.copy_(weight)
                bn = nn.BatchNorm2d(weight.shape[0], eps=norm.eps)
                span = slice(0, k * norm.per_group)
                bn.weight.copy_(norm._pick("weight", 0, k, False))
                bn.bias.copy_(norm._pick("bias", 0, k, False))
                bn.running_mean.copy_(norm.running_mean[span])
                bn.running_var.copy_(norm.running_var[span])
                layers += [static, bn, nn.ReLU()]
                if pool:
                    layers.append(nn.MaxPool2d(2))
            self.features = nn.Sequential(*layers)
            fcs: list[nn.Module] = []
            for i, fc in enumerate(model.fcs):
                weight, bias = fc._pick("weight", 0, k, False), fc._pick("bias", 0, k, False)
                static = nn.Conv1d(k * fc.in_per_group, weight.shape[0], 1, groups=k)
                static.weight.copy_(weight.unsqueeze(-1))
                static.bias.copy_(bias)
                fcs.append(static)
                if i < len(model.fcs) - 1:
                    fcs.append(nn.ReLU())
            self.classifier = nn.Sequential(*fcs)

    def forward(self, x: Tensor) -> Tensor:
        """Logits (N, classes): the sum (or mean) of the k groups' logits."""
        x = self.features(x).flatten(1).unsqueeze(-1)
        per_group = self.classifier(x).view(x.shape[0], self.k, self.num_classes)
        return per_group.sum(1) / self.divisor


class GroupPath(nn.Module):
    """One group of a ``GroupAlexNet`` as a plain network (Conv2d, BatchNorm2d, Linear).

    Its logits equal the group's contribution to the summed logits of the grouped model.
    """

    def __init__(self, model: GroupAlexNet, group: int) -> None:
        super().__init__()
        if not 0 <= group < model.groups:
            raise ValueError(f"group must be between 0 and {model.groups - 1}; got {group}")
        self.dropout = model.spec.dropout
        convs, norms = [], []
        with torch.no_grad():
            for conv, norm in zip(model.convs, model.norms, strict=True):
                weight = conv.group_parameters(group)[0]
                plain = nn.Conv2d(weight.shape[1], weight.shape[0], conv.kernel_size,
                                  padding=conv.padding, bias=False)
                plain.weight.copy_(weight)
                bn = nn.BatchNorm2d(weight.shape[0], eps=norm.eps, momentum=norm.momentum)
                span = slice(group * norm.per_group, (group + 1) * norm.per_group)
                bn.weight.copy_(norm.group_parameters(group)[0])
                bn.bias.copy_(norm.group_parameters(group)[1])
                bn.running_mean.copy_(norm.running_mean[span])
                bn.running_var.copy_(norm.running_var[span])
                convs.append(plain)
                norms.append(bn)
            fcs = []
            for fc in model.fcs:
                weight, bias = fc.group_parameters(group)
                plain_fc = nn.Linear(weight.shape[1], weight.shape[0])
                plain_fc.weight.copy_(weight)
                plain_fc.bias.copy_(bias)
                fcs.append(plain_fc)
        self.convs, self.norms, self.fcs = (nn.ModuleList(convs), nn.ModuleList(norms),
                                            nn.ModuleList(fcs))

    def forward(self, x: Tensor) -> Tensor:
        """The logits of this group alone."""
        for conv, norm, pool in zip(self.convs, self.norms, ALEXNET_POOL_AFTER, strict=True):
            x = F.relu(norm(conv(x)))
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        for fc in self.fcs[:-1]:
            x = F.dropout(F.relu(fc(x)), self.dropout, self.training)
        return self.fcs[-1](x)

    def state_tensors(self) -> list[Tensor]:
        """Tensors in the order of ``GroupAlexNet.group_state``: Parameters, then BN stats."""
        params = []
        for module in (*self.convs, *self.norms, *self.fcs):
            params += [module.weight] + ([module.bias] if module.bias is not None else [])
        stats = [t for bn in self.norms for t in (bn.running_mean, bn.running_var)]
        return params + stats
