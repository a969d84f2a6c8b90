"""QAT, the baseline RCT is compared with: fp32 master weights, fake-quantised copies.

Weights and inputs are fake-quantised per tensor in the forward pass (what PyTorch's
``torch.fake_quantize_per_tensor_affine`` computes, straight-through gradient); the optimiser
updates the fp32 masters. Each layer reports its MACs of the last batch (``last_macs``) and the
transient quantised copy of its weights to a tracker, for the trainer's accounting.

>>> layer = QatEmbedding(100, 8)
>>> layer(torch.tensor([[1, 2, 3]])).shape, layer.last_macs
(torch.Size([1, 3, 8]), 0)
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.models.macs import conv_macs
from dyndnn.rct.quant import qmax


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantised values given; backward: the gradient as it is."""

    @staticmethod
    def forward(ctx, x: Tensor, quantised: Tensor) -> Tensor:  # noqa: D102
        return quantised

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # noqa: D102
        return grad, None


def fake_quant(x: Tensor, bits: int) -> Tensor:
    """Per-tensor symmetric fake quantisation (values stay fp32), straight-through gradient.

    The values of ``torch.fake_quantize_per_tensor_affine`` (round(x / scale), clamped, times
    scale; tests compare them), in three multithreaded in-place passes: that kernel took
    2-4x longer on this CPU (measured, a 600k-value activation). The scale is the tensor's
    largest magnitude over ``qmax``, so no value is clamped and the straight-through gradient
    is the identity everywhere, as that kernel's is inside its range.
    """
    limit = qmax(bits)
    scale = (x.detach().abs().max().clamp_min(1e-12) / limit).item()
    quantised = torch.mul(x.detach(), 1.0 / scale).round_().clamp_(-limit, limit).mul_(scale)
    return _StraightThrough.apply(x, quantised) if x.requires_grad else quantised


def conv_batch_macs(conv: Any, x: Tensor) -> int:
    """MACs of a 1-D or 2-D convolution ``conv`` on the batch ``x``."""
    positions = 1
    for size, k, pad, stride, dil in zip(x.shape[2:], conv.kernel_size, conv.padding,
                                         conv.stride, conv.dilation, strict=True):
        positions *= (size + 2 * pad - dil * (k - 1) - 1) // stride + 1
    return x.shape[0] * conv_macs(conv.out_channels, conv.in_channels // conv.groups) \
        * math.prod(conv.kernel_size) * positions


class Tracked:
    """Mixin: reports transient weight copies to a tracker (set by the trainer)."""

    tracker: Any = None
    last_macs = 0

    def _track(self, t: Tensor) -> Tensor:
        if self.tracker is not None:
            self.tracker.track(t)
        return t


class _FakeQuantConv(Tracked):
    """A QAT convolution's forward pass, any dimension: fake-quantised weights and inputs."""

    bits = 8

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        self.last_macs = conv_batch_macs(self, x)
        weight = self._track(fake_quant(self.weight, self.bits))
        return self._conv_forward(fake_quant(x, self.bits), weight, self.bias)


class QatConv2d(_FakeQuantConv, nn.Conv2d):
    """Conv2d with fake-quantised weights and inputs (fp32 master weights)."""


class QatConv1d(_FakeQuantConv, nn.Conv1d):
    """Conv1d with fake-quantised weights and inputs (fp32 master weights)."""


class QatLinear(nn.Linear, Tracked):
    """Linear with fake-quantised weights and inputs (fp32 master weights)."""

    bits = 8

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        self.last_macs = math.prod(x.shape[:-1]) * conv_macs(self.out_features,
                                                              self.in_features)
        weight = self._track(fake_quant(self.weight, self.bits))
        return F.linear(fake_quant(x, self.bits), weight, self.bias)


class QatEmbedding(nn.Embedding, Tracked):
    """Embedding that looks tokens up in a fake-quantised copy of its fp32 table (no MACs)."""

    bits = 8

    def forward(self, ids: Tensor) -> Tensor:  # noqa: D102
        weight = self._track(fake_quant(self.weight, self.bits))
        return F.embedding(ids, weight, self.padding_idx)


QAT_CLASSES = {nn.Conv2d: QatConv2d, nn.Conv1d: QatConv1d, nn.Linear: QatLinear,
               nn.Embedding: QatEmbedding}


def to_qat(layer: nn.Module) -> nn.Module:
    """The same module (same tensors), now fake-quantising: its class is swapped."""
    layer.__class__ = QAT_CLASSES[type(layer)]
    return layer
