"""Conv and linear layers for the three training methods, and ``convert`` that swaps them in.

- ``fp32``: the module as it is.
- ``qat``: fp32 master weights, fake-quantised weights and activations in the forward pass
  (PyTorch's ``torch.fake_quantize_per_tensor_affine``, straight-through gradient).
- ``rct``: only a ``QuantisedWeight`` per layer. A custom autograd function dequantises the
  weights for the forward GEMM and again for the backward GEMMs, quantises activations and
  errors per tensor, and applies the SGD update to the integers inside the backward pass, so
  neither an fp32 weight copy nor an fp32 weight gradient outlives one layer's computation.

>>> import torch
>>> from torch import nn
>>> from dyndnn.rct.controller import RctSettings
>>> from dyndnn.rct.trainer import measure_param_bytes
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
>>> fp32_bytes = measure_param_bytes(net)
>>> net = convert(net, "rct", RctSettings())          # in place: Conv2d / Linear swapped
>>> [type(layer).__name__ for layer in net]
['RctConv2d', 'ReLU', 'Flatten', 'RctLinear']
>>> [name for name, _ in net.named_parameters()]      # the weights are integers, not Parameters
['0.bias', '3.bias']
>>> net[0].store.q.dtype, fp32_bytes, measure_param_bytes(net)
(torch.int8, 108360, 27132)
>>> net(torch.randn(2, 1, 28, 28)).sum().backward()   # the update lands in the integers
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from dyndnn.macs import conv_macs
from dyndnn.rct.controller import RctSettings
from dyndnn.rct.quant import QuantisedWeight, qmax

METHODS = ("fp32", "qat", "rct")


def fake_quant(x: Tensor, bits: int) -> Tensor:
    """Per-tensor symmetric fake quantisation (values stay fp32), straight-through gradient."""
    scale = x.detach().abs().max().clamp_min(1e-12) / qmax(bits)
    return torch.fake_quantize_per_tensor_affine(x, scale.item(), 0, -qmax(bits), qmax(bits))


class _Tracked:
    """Mixin: reports transient weight copies to a tracker (set by the trainer)."""

    tracker: Any = None

    def _track(self, t: Tensor) -> Tensor:
        if self.tracker is not None:
            self.tracker.track(t)
        return t


class QatConv2d(nn.Conv2d, _Tracked):
    """Conv2d with fake-quantised weights and inputs (fp32 master weights)."""

    bits = 8

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        self.last_macs = _conv_macs(self, x)
        weight = self._track(fake_quant(self.weight, self.bits))
        return self._conv_forward(fake_quant(x, self.bits), weight, self.bias)


class QatLinear(nn.Linear, _Tracked):
    """Linear with fake-quantised weights and inputs (fp32 master weights)."""

    bits = 8

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        self.last_macs = x.shape[0] * conv_macs(self.out_features, self.in_features)
        weight = self._track(fake_quant(self.weight, self.bits))
        return F.linear(fake_quant(x, self.bits), weight, self.bias)


def _conv_macs(conv: nn.Conv2d, x: Tensor) -> int:
    """MACs of ``conv`` on the batch ``x`` (``dyndnn.macs.conv_macs`` per image)."""
    n, _, h, w = x.shape
    kernel = conv.kernel_size[0]
    out_h = (h + 2 * conv.padding[0] - kernel) // conv.stride[0] + 1
    out_w = (w + 2 * conv.padding[1] - kernel) // conv.stride[1] + 1
    return n * conv_macs(conv.out_channels, conv.in_channels // conv.groups, kernel) \
        * out_h * out_w


class _RctFunction(torch.autograd.Function):
    """y = op(quant(x), dequant(q)), computed tile by tile.

    The backward updates q instead of returning dW, also tile by tile, so at most one tile of
    fp32 weights and of weight gradient exists at a time.
    """

    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor | None, layer: RctLayer) -> Tensor:  # noqa: D102
        xq = fake_quant(x, layer.settings.act_bits)
        ctx.save_for_backward(xq)  # activations are saved, weights are not
        ctx.layer = layer
        return layer._tiled_forward(xq, bias)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # noqa: D102
        (xq,) = ctx.saved_tensors
        layer: RctLayer = ctx.layer
        gq = fake_quant(grad_out, layer.settings.err_bits)
        grad_x, grad_b = layer._tiled_backward(gq, xq, ctx.needs_input_grad[0])
        return grad_x, grad_b if ctx.needs_input_grad[1] else None, None


class RctLayer(nn.Module, _Tracked):
    """Base of the RCT layers: an integer weight store, an fp32 bias, and a fused update.

    ``out_dim`` is the dimension of the output that indexes the weight's rows.
    """

    out_dim = 1
    grad_tracker: Any = None

    def __init__(self, weight: Tensor, bias: Tensor | None, settings: RctSettings) -> None:
        super().__init__()
        self.settings = settings
        self.store = QuantisedWeight(weight, settings.bits_init)
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.momentum_buffer: Tensor | None = None  # optimiser state (shown apart)
        self.hyper = {"lr": 0.0, "momentum": 0.0, "weight_decay": 0.0}
        self.generator: torch.Generator | None = None
        self._gavg_sum, self._gavg_n = 0.0, 0
        self.last_macs = 0

    def tiles(self) -> list[slice]:
        """Row ranges dequantised one at a time."""
        rows = self.store.q.shape[0]
        size = self.settings.tile_rows or rows
        return [slice(i, min(i + size, rows)) for i in range(0, rows, size)]

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        self.last_macs = self._macs(x)
        if not torch.is_grad_enabled():  # inference: no autograd function needed
            return self._tiled_forward(fake_quant(x, self.settings.act_bits), self.bias)
        return _RctFunction.apply(x, self.bias, self)

    def _tiled_forward(self, xq: Tensor, bias: Tensor | None) -> Tensor:
        outs = []
        for rows in self.tiles():
            weight = self._track(self.store.dequantise(rows))
            outs.append(self._op(xq, weight, None if bias is None else bias[rows]))
            del weight
        return torch.cat(outs, self.out_dim) if len(outs) > 1 else outs[0]

    def _tiled_backward(self, gq: Tensor, xq: Tensor, need_x: bool):
        grad_x = None
        grad_b = torch.zeros_like(self.bias) if self.bias is not None else None
        for rows in self.tiles():
            weight = self._track(self.store.dequantise(rows))
            g_rows = gq.narrow(self.out_dim, rows.start, rows.stop - rows.start)
            gx, gw, gb = self._grads(g_rows, xq, weight, need_x)
            if self.grad_tracker is not None:
                self.grad_tracker.track(gw)
            grad_x = gx if grad_x is None else grad_x.add_(gx)
            if grad_b is not None:
                grad_b[rows] = gb
            self._update(gw, weight, rows)
            del weight, gw
        return grad_x, grad_b

    def _update(self, grad_w: Tensor, weight: Tensor, rows: slice) -> None:
        """SGD (Nesterov momentum, L2 weight decay, as the fp32 baseline) on the integers."""
        h = self.hyper
        d = grad_w + h["weight_decay"] * weight if h["weight_decay"] else grad_w
        if h["momentum"]:
            if self.momentum_buffer is None:  # zeros: the first step then sets it to d, as SGD
                self.momentum_buffer = torch.zeros(self.store.q.shape)
            buf = self.momentum_buffer[rows]
            buf.mul_(h["momentum"]).add_(d)
            d = d + h["momentum"] * buf
        delta = -h["lr"] * d
        self._gavg_sum += (delta.abs().sum() / self.store.scale).item()
        self._gavg_n += delta.numel()
        self.store.apply_update(delta, self.settings.rounding, self.generator, rows)

    def take_gavg(self) -> float:
        """Mean Gavg since the last call (and reset)."""
        gavg = self._gavg_sum / max(1, self._gavg_n)
        self._gavg_sum, self._gavg_n = 0.0, 0
        return gavg

    @property
    def bits(self) -> int:
        """The layer's current weight bitwidth."""
        return self.store.bits


class RctConv2d(RctLayer):
    """Conv2d under RCT."""

    def __init__(self, conv: nn.Conv2d, settings: RctSettings) -> None:
        # integers in the standard (contiguous) layout, whatever the source's: oneDNN's conv
        # backward on channels-last weights hangs or corrupts the heap with 2 threads in
        # strided 1x1 projections (torch 2.13 CPU; as in tann_layers.TannConv2d._conv)
        super().__init__(conv.weight.detach().contiguous(), conv.bias, settings)
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.kernel_size, self.in_channels = conv.kernel_size, conv.in_channels
        self.out_channels = conv.out_channels

    def _op(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return F.conv2d(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def _macs(self, x: Tensor) -> int:
        return _conv_macs(self, x)  # type: ignore[arg-type]

    def _grads(self, g: Tensor, x: Tensor, w: Tensor, need_x: bool):
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            g.contiguous(), x, w, [w.shape[0]] if self.bias is not None else None, self.stride,
            self.padding, self.dilation, False, [0, 0], self.groups,
            [need_x, True, self.bias is not None])
        return grad_x, grad_w, grad_b


class RctLinear(RctLayer):
    """Linear under RCT."""

    out_dim = -1

    def __init__(self, fc: nn.Linear, settings: RctSettings) -> None:
        super().__init__(fc.weight, fc.bias, settings)
        self.in_features, self.out_features = fc.in_features, fc.out_features

    def _op(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return F.linear(x, w, b)

    def _macs(self, x: Tensor) -> int:
        return math.prod(x.shape[:-1]) * conv_macs(self.out_features, self.in_features)

    def _grads(self, g: Tensor, x: Tensor, w: Tensor, need_x: bool):
        g2, x2 = g.reshape(-1, g.shape[-1]), x.reshape(-1, x.shape[-1])
        grad_x = (g2 @ w).reshape(x.shape) if need_x else None
        grad_b = g2.sum(0) if self.bias is not None else None
        return grad_x, g2.t() @ x2, grad_b


def convert(module: nn.Module, method: str, settings: RctSettings | None = None) -> nn.Module:
    """Swap every Conv2d / Linear of ``module`` (in place) for the ``method``'s layer."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if method == "fp32":
        return module
    settings = settings or RctSettings()
    for name, child in list(module.named_children()):
        if isinstance(child, nn.Conv2d):
            new: nn.Module = RctConv2d(child, settings) if method == "rct" else _qat(child)
        elif isinstance(child, nn.Linear):
            new = RctLinear(child, settings) if method == "rct" else _qat(child)
        else:
            convert(child, method, settings)
            continue
        setattr(module, name, new)
    return module


def _qat(layer: nn.Module) -> nn.Module:
    layer.__class__ = QatConv2d if isinstance(layer, nn.Conv2d) else QatLinear
    return layer


@torch.no_grad()
def to_plain(module: nn.Module) -> nn.Module:
    """Swap RCT layers back (in place) for plain Conv2d / Linear with the dequantised weights.

    Used to write a group trained under RCT back into a ``GroupNet``.
    """
    for name, child in list(module.named_children()):
        if isinstance(child, RctConv2d):
            plain: nn.Module = nn.Conv2d(child.in_channels, child.out_channels,
                                         child.kernel_size, child.stride, child.padding,
                                         child.dilation, child.groups, child.bias is not None)
        elif isinstance(child, RctLinear):
            plain = nn.Linear(child.in_features, child.out_features, child.bias is not None)
        else:
            to_plain(child)
            continue
        plain.weight.copy_(child.store.dequantise())
        if child.bias is not None:
            plain.bias.copy_(child.bias)
        setattr(module, name, plain)
    return module


def quantised_layers(module: nn.Module) -> dict[str, nn.Module]:
    """The converted layers (RCT or QAT) by name."""
    return {n: m for n, m in module.named_modules()
            if isinstance(m, (RctLayer, QatConv2d, QatLinear))}
