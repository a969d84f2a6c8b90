"""Dynamic layers that compose: each knows ``macs(k)``, ``tensors(k)`` and ``to_static(k)``.

A dynamic layer runs a *window* of a model's configuration: groups (or blocks, or widths)
``start..stop-1``, one of them ``trainable`` during a training stage. The families differ in
their weighted layers (``dyndnn.models.group_layers``: block-diagonal groups; ``tann_layers``: block
lower-triangular; ``slim_layers``: shared weights sliced by width); the layers here carry no
weights and serve every family, so a network is declared once (``dyndnn.models.architecture``) and
built from any family's weighted layers (``dyndnn.models.network``).

>>> import torch
>>> relu = Act()
>>> relu(torch.tensor([-1.0, 2.0]), Window(0, 1)).tolist(), relu.macs(1)
([0.0, 2.0], 0)
>>> relu.to_static(1)
ReLU()

``to_static(k)`` returns plain torch layers with copied tensors: configuration k alone,
ready for TorchScript, ONNX (``dyndnn.serve.graphs`` walks them) or RCT's conversion.
Nothing is hidden: a layer's configuration is the window its caller passes.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Window(NamedTuple):
    """Groups ``start..stop-1`` run; ``trainable``: the last one trains (a training stage)."""

    start: int
    stop: int
    trainable: bool = False


def tensor_bytes(tensors) -> int:
    """Bytes of ``tensors`` (each counted as its own storage)."""
    return sum(t.numel() * t.element_size() for t in tensors)


class DynamicLayer(nn.Module):
    """The interface every layer of a dynamic network has (weightless defaults)."""

    def forward(self, x: Tensor, window: Window) -> Tensor:  # pragma: no cover
        """Run the layer on the window's groups."""
        raise NotImplementedError

    def macs(self, k: int) -> int:
        """Multiply-accumulates per image of configuration k (``dyndnn.models.macs.conv_macs``)."""
        return 0

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:
        """Tensors configuration k reads: Parameters (and BN running statistics)."""
        return []

    def param_bytes(self, k: int) -> int:
        """Bytes configuration k reads (``tensors(k)``)."""
        return tensor_bytes(self.tensors(k))

    def group_parameters(self, group: int) -> list[nn.Parameter]:
        """Parameters group ``group`` (0-based) adds: what training stage group+1 updates."""
        return []

    def group_state(self, group: int) -> list[Tensor]:
        """Every tensor group ``group`` owns (Parameters and BN statistics)."""
        return list(self.group_parameters(group))

    def to_static(self, k: int, start: int = 0) -> nn.Module:  # pragma: no cover
        """Groups ``start..k-1`` as plain torch layers (copied tensors, eval semantics)."""
        raise NotImplementedError

    def load_static(self, static: nn.Module, group: int) -> None:
        """Copy group ``group``'s tensors back from ``to_static(group + 1, group)``."""


class Sequence(DynamicLayer):
    """Layers in order; every question is answered by asking each layer."""

    def __init__(self, layers: list[DynamicLayer]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        for layer in self.layers:
            x = layer(x, window)
        return x

    def macs(self, k: int) -> int:  # noqa: D102
        return sum(layer.macs(k) for layer in self.layers)

    def tensors(self, k: int, statistics: bool = True) -> list[Tensor]:  # noqa: D102
        return [t for layer in self.layers for t in layer.tensors(k, statistics)]

    def group_parameters(self, group: int) -> list[nn.Parameter]:  # noqa: D102
        return [p for layer in self.layers for p in layer.group_parameters(group)]

    def group_state(self, group: int) -> list[Tensor]:  # noqa: D102
        return [t for layer in self.layers for t in layer.group_state(group)]

    def to_static(self, k: int, start: int = 0) -> nn.Sequential:  # noqa: D102
        return nn.Sequential(*(layer.to_static(k, start) for layer in self.layers))

    def load_static(self, static: nn.Module, group: int) -> None:  # noqa: D102
        for layer, plain in zip(self.layers, static, strict=True):
            layer.load_static(plain, group)


class StaticResidual(nn.Module):
    """relu(body(x) + shortcut(x)): a residual block as plain torch layers."""

    def __init__(self, body: nn.Module, shortcut: nn.Module) -> None:
        super().__init__()
        self.body, self.shortcut = body, shortcut

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        return torch.relu(self.body(x) + self.shortcut(x))


class Residual(Sequence):
    """A basic block: relu(body(x) + shortcut(x)); no shortcut layers means identity.

    Every family keeps its structure through the addition (a group adds its own channels, a
    block or width its own prefix), so each family's invariants hold across the block.
    """

    def __init__(self, body: list[DynamicLayer], shortcut: list[DynamicLayer]) -> None:
        super().__init__([Sequence(body), Sequence(shortcut)])

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        body, shortcut = self.layers
        identity = shortcut(x, window) if len(shortcut.layers) else x
        return F.relu(body(x, window) + identity)

    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        body, shortcut = self.layers
        return StaticResidual(body.to_static(k, start),
                              shortcut.to_static(k, start) if len(shortcut.layers)
                              else nn.Identity())

    def load_static(self, static: nn.Module, group: int) -> None:  # noqa: D102
        body, shortcut = self.layers
        body.load_static(static.body, group)
        if len(shortcut.layers):
            shortcut.load_static(static.shortcut, group)


class Act(DynamicLayer):
    """ReLU."""

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        return F.relu(x, inplace=True)

    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        return nn.ReLU()


class MaxPool(DynamicLayer):
    """Max pooling, ``size`` x ``size`` windows, stride ``size``."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        return F.max_pool2d(x, self.size)

    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        return nn.MaxPool2d(self.size)


class GlobalAvgPool(DynamicLayer):
    """Average each channel over the feature map: (N, C, H, W) -> (N, C)."""

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        return x.mean((2, 3))

    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())


class Flatten(DynamicLayer):
    """(N, C, H, W) -> (N, C*H*W), channel-major.

    A group's (or block's) channels stay together, so a window's features are a contiguous
    range.
    """

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        return x.flatten(1)

    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        return nn.Flatten()


class Dropout(DynamicLayer):
    """Dropout on the trainable computation only: frozen groups and serving never drop."""

    def __init__(self, p: float) -> None:
        super().__init__()
        self.p = p

    def forward(self, x: Tensor, window: Window) -> Tensor:  # noqa: D102
        return F.dropout(x, self.p, training=True) if window.trainable and self.p else x

    def to_static(self, k: int, start: int = 0) -> nn.Module:  # noqa: D102
        return nn.Dropout(self.p)
