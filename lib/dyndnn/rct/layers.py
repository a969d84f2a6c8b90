"""The RCT layers, and ``convert`` that swaps them (or QAT's) into a module.

- ``fp32``: the module as it is.
- ``qat``: fp32 master weights, fake-quantised in the forward pass (``rct.qat``).
- ``rct``: only a ``QuantisedWeight`` per layer (bit-packed integers and a scale). A custom
  autograd function dequantises the weights tile by tile for the forward GEMM and again for the
  backward GEMMs, quantises activations and errors per tensor, and applies the SGD update to
  the integers inside the backward pass, so neither an fp32 weight copy nor an fp32 weight
  gradient outlives one tile's computation. The momentum buffer is integers too
  (``QuantisedMomentum``), unless ``momentum_bits`` is 0.

Conv1d, Conv2d, Linear and Embedding are converted; normalisation layers and biases stay fp32
parameters (vectors, updated by the trainer's torch optimiser).

>>> import torch
>>> from torch import nn
>>> from dyndnn.rct.controller import RctSettings
>>> from dyndnn.rct.trainer import measure_param_bytes
>>> net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 26 * 26, 10))
>>> fp32_bytes = measure_param_bytes(net)
>>> net = convert(net, "rct", RctSettings())          # in place: Conv2d / Linear swapped
>>> [type(layer).__name__ for layer in net]
['RctConv', 'ReLU', 'Flatten', 'RctLinear']
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

from dyndnn.models.macs import conv_macs
from dyndnn.rct.controller import RctSettings
from dyndnn.rct.qat import Tracked, conv_batch_macs, fake_quant, to_qat
from dyndnn.rct.quant import QuantisedMomentum, QuantisedWeight

METHODS = ("fp32", "qat", "rct")
# an embedding row is one token's vector: 2x the rows per tile where tile_rows is set (by
# default tiles are bounded by tile_values alone, for every layer alike)
EMBEDDING_TILE_FACTOR = 2


class _RctFunction(torch.autograd.Function):
    """y = op(quant(x), dequant(q)), computed tile by tile.

    The backward updates q instead of returning dW, also tile by tile, so at most one tile of
    fp32 weights and of weight gradient exists at a time.
    """

    @staticmethod
    def forward(ctx, x: Tensor, bias: Tensor | None, layer: RctLayer,  # noqa: D102
                _trains: Tensor) -> Tensor:
        xq = layer.quantise_input(x)
        ctx.save_for_backward(xq)  # activations are saved, weights are not
        ctx.layer = layer
        return layer._tiled_forward(xq, bias)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # noqa: D102
        (xq,) = ctx.saved_tensors
        layer: RctLayer = ctx.layer
        gq = fake_quant(grad_out, layer.settings.err_bits)
        grad_x, grad_b = layer._tiled_backward(gq, xq, ctx.needs_input_grad[0])
        return grad_x, grad_b if ctx.needs_input_grad[1] else None, None, None


class RctLayer(nn.Module, Tracked):
    """Base of the RCT layers: an integer weight store, an fp32 bias, and a fused update.

    ``out_dim`` is the dimension of the output that indexes the weight's rows.
    """

    out_dim = 1
    grad_tracker: Any = None

    def __init__(self, weight: Tensor, bias: Tensor | None, settings: RctSettings,
                 tile_rows: int | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.store = QuantisedWeight(weight, settings.bits_init,
                                     _rows_per_tile(weight, settings, tile_rows),
                                     settings.packed)
        self.bias = nn.Parameter(bias.detach().clone()) if bias is not None else None
        self.momentum: QuantisedMomentum | Tensor | None = None  # optimiser state
        self.hyper = {"lr": 0.0, "momentum": 0.0, "weight_decay": 0.0}
        self.generator: torch.Generator | None = None
        self._gavg_sum, self._gavg_n = 0.0, 0

    def tiles(self) -> list[slice]:
        """Row ranges dequantised one at a time."""
        return self.store.tiles.slices()

    def _dequantise(self, rows: slice) -> Tensor:
        """A tile's transient fp32 weights, tracked while its decoded integers still exist.

        Both are alive while the copy is made, so the tracked peak holds both (as it is).
        """
        q = self.store.tiles.read(rows)
        weight = self._track(self.store.weights_of(q))
        del q
        return weight

    def quantise_input(self, x: Tensor) -> Tensor:
        """The input as the GEMMs read it: fake-quantised to ``act_bits``."""
        return fake_quant(x, self.settings.act_bits)

    def forward(self, x: Tensor) -> Tensor:  # noqa: D102
        self.last_macs = self._macs(x)
        if not torch.is_grad_enabled():  # inference: no autograd function needed
            return self._tiled_forward(self.quantise_input(x), self.bias)
        # the integers are not Parameters: without a tensor that requires grad among the
        # inputs, a layer reading token ids or images with no bias would never see backward
        return _RctFunction.apply(x, self.bias, self, torch.empty(0, requires_grad=True))

    def _tiled_forward(self, xq: Tensor, bias: Tensor | None) -> Tensor:
        outs = []
        for rows in self.tiles():
            weight = self._dequantise(rows)
            outs.append(self._op(xq, weight, None if bias is None else bias[rows]))
            del weight
        return torch.cat(outs, self.out_dim) if len(outs) > 1 else outs[0]

    def _tiled_backward(self, gq: Tensor, xq: Tensor, need_x: bool):
        grad_x = None
        grad_b = torch.zeros_like(self.bias) if self.bias is not None else None
        for rows in self.tiles():
            weight = self._dequantise(rows)
            g_rows = gq.narrow(self.out_dim, rows.start, rows.stop - rows.start)
            gx, gw, gb = self._grads(g_rows, xq, weight, need_x)
            grad_x = gx if grad_x is None else grad_x.add_(gx)
            if grad_b is not None:
                grad_b[rows] = gb
            self._update(gw, weight, rows)
            del weight, gw
        return grad_x, grad_b

    def _update(self, grad_w: Tensor, weight: Tensor, rows: slice) -> None:
        """SGD (Nesterov momentum, L2 weight decay, as the fp32 baseline) on the integers.

        ``weight`` (this tile's transient fp32 copy) is used up: its buffer becomes the
        updated integers, so the tile is decoded once for the GEMMs and the update alike.
        """
        if self.grad_tracker is not None:
            self.grad_tracker.track(grad_w)
        h = self.hyper
        # fused: one op per term, in place where the tensor is this step's own (a tile costs
        # about 25 small ops in all, so each one saved is felt; docs/rct.md)
        d = torch.add(grad_w, weight, alpha=h["weight_decay"]) if h["weight_decay"] else grad_w
        if h["momentum"]:
            buf = self._momentum_step(rows, d, h["momentum"])
            d.add_(buf, alpha=h["momentum"])  # Nesterov; d (or grad_w) is this tile's own
        step_per_unit = h["lr"] / self.store.scale  # the update in quantisation steps, per |d|
        self._gavg_sum += step_per_unit * d.abs().sum().item()
        self._gavg_n += d.numel()
        self.store.apply_step(d, -step_per_unit, self.settings.rounding, self.generator, rows,
                              self.store.integers_of(weight))

    def _momentum_step(self, rows: slice, d: Tensor, momentum: float) -> Tensor:
        """The momentum buffer of these rows after ``momentum x buf + d`` (from zeros)."""
        bits = self.settings.momentum_bits
        if self.momentum is None:
            self.momentum = (QuantisedMomentum(self.store.shape, bits,
                                               self.store.tiles.tile_rows, self.settings.packed)
                             if bits else torch.zeros(self.store.shape))
        if isinstance(self.momentum, QuantisedMomentum):
            return self.momentum.update(rows, d, momentum, self.generator)
        return self.momentum[rows].mul_(momentum).add_(d)

    def optimizer_state_bytes(self) -> int:
        """Bytes of this layer's momentum buffer (integers and scales, or fp32)."""
        if isinstance(self.momentum, QuantisedMomentum):
            return self.momentum.nbytes
        return 0 if self.momentum is None else self.momentum.numel() * 4

    def take_gavg(self) -> float:
        """Mean Gavg since the last call (and reset)."""
        gavg = self._gavg_sum / max(1, self._gavg_n)
        self._gavg_sum, self._gavg_n = 0.0, 0
        return gavg

    @property
    def bits(self) -> int:
        """The layer's current weight bitwidth."""
        return self.store.bits


def _rows_per_tile(weight: Tensor, settings: RctSettings, tile_rows: int | None) -> int:
    """Rows per tile: ``tile_rows`` (the settings' unless given), at most ``tile_values``.

    The cap in values keeps the transient copies small whatever a row's size.
    """
    rows = settings.tile_rows if tile_rows is None else tile_rows
    rows = rows or weight.shape[0]
    if settings.tile_values:
        rows = min(rows, max(1, settings.tile_values // math.prod(weight.shape[1:])))
    return rows


class RctConv(RctLayer):
    """Conv1d or Conv2d under RCT."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d, settings: RctSettings) -> None:
        # integers in the standard (contiguous) layout, whatever the source's: oneDNN's conv
        # backward on channels-last weights hangs or corrupts the heap with 2 threads in
        # strided 1x1 projections (torch 2.13 CPU; as in tann_layers.TannConv2d._conv)
        super().__init__(conv.weight.detach().contiguous(), conv.bias, settings)
        self.stride, self.padding = conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.kernel_size, self.in_channels = conv.kernel_size, conv.in_channels
        self.out_channels = conv.out_channels
        self._functional = F.conv1d if isinstance(conv, nn.Conv1d) else F.conv2d

    def _op(self, x: Tensor, w: Tensor, b: Tensor | None) -> Tensor:
        return self._functional(x, w, b, self.stride, self.padding, self.dilation, self.groups)

    def _macs(self, x: Tensor) -> int:
        return conv_batch_macs(self, x)

    def _grads(self, g: Tensor, x: Tensor, w: Tensor, need_x: bool):
        grad_x, grad_w, grad_b = torch.ops.aten.convolution_backward(
            g.contiguous(), x, w, [w.shape[0]] if self.bias is not None else None, self.stride,
            self.padding, self.dilation, False, [0] * len(self.stride), self.groups,
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


class RctEmbedding(RctLayer):
    """Embedding under RCT: a token's vector is dequantised from the tile that holds it.

    Its update is dense, as fp32 SGD's: rows no token of the batch used still decay with
    momentum and weight decay. The padding row receives no gradient (``padding_idx``).
    """

    def __init__(self, embedding: nn.Embedding, settings: RctSettings) -> None:
        super().__init__(embedding.weight, None, settings,
                         settings.tile_rows * EMBEDDING_TILE_FACTOR)
        self.num_embeddings, self.embedding_dim = embedding.weight.shape
        self.padding_idx = embedding.padding_idx

    def quantise_input(self, x: Tensor) -> Tensor:
        """Token ids are read as they are."""
        return x

    def _macs(self, x: Tensor) -> int:
        return 0  # a lookup

    def _positions_by_tile(self, ids: Tensor) -> list[Tensor]:
        """For every tile, the positions of ``ids`` (flat) whose token it holds.

        One sort for the whole batch instead of a mask over the batch for every tile.
        """
        tile_of = ids.reshape(-1) // self.store.tiles.tile_rows
        order = torch.argsort(tile_of, stable=True)
        counts = torch.bincount(tile_of, minlength=len(self.tiles())).tolist()
        return list(torch.split(order, counts))

    def _tiled_forward(self, ids: Tensor, bias: Tensor | None) -> Tensor:
        flat = ids.reshape(-1)
        out = torch.zeros(flat.numel(), self.embedding_dim)
        for rows, positions in zip(self.tiles(), self._positions_by_tile(ids), strict=True):
            if len(positions):
                weight = self._dequantise(rows)
                out[positions] = weight[flat[positions] - rows.start]
                del weight
        return out.view(*ids.shape, self.embedding_dim)

    def _tiled_backward(self, gq: Tensor, ids: Tensor, need_x: bool):
        flat, grads = ids.reshape(-1), gq.reshape(-1, self.embedding_dim)
        for rows, positions in zip(self.tiles(), self._positions_by_tile(ids), strict=True):
            if self.padding_idx is not None and rows.start <= self.padding_idx < rows.stop:
                positions = positions[flat[positions] != self.padding_idx]
            weight = self._dequantise(rows)
            grad_w = torch.zeros_like(weight).index_add_(0, flat[positions] - rows.start,
                                                         grads[positions])
            self._update(grad_w, weight, rows)
            del weight, grad_w
        return None, None


RCT_CLASSES = {nn.Conv2d: RctConv, nn.Conv1d: RctConv, nn.Linear: RctLinear,
               nn.Embedding: RctEmbedding}


def convert(module: nn.Module, method: str, settings: RctSettings | None = None) -> nn.Module:
    """Swap every Conv1d / Conv2d / Linear / Embedding of ``module`` (in place)."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}; got {method!r}")
    if method == "fp32":
        return module
    settings = settings or RctSettings()
    for name, child in list(module.named_children()):
        if type(child) in RCT_CLASSES:
            new = RCT_CLASSES[type(child)](child, settings) if method == "rct" \
                else to_qat(child)
            setattr(module, name, new)
        else:
            convert(child, method, settings)
    return module


@torch.no_grad()
def to_plain(module: nn.Module) -> nn.Module:
    """Swap RCT layers back (in place) for plain torch layers with the dequantised weights.

    Used to write a group trained under RCT back into a ``GroupNet``.
    """
    for name, child in list(module.named_children()):
        if isinstance(child, RctConv):
            kind = nn.Conv1d if child._functional is F.conv1d else nn.Conv2d
            plain: nn.Module = kind(child.in_channels, child.out_channels, child.kernel_size,
                                    child.stride, child.padding, child.dilation, child.groups,
                                    child.bias is not None)
        elif isinstance(child, RctLinear):
            plain = nn.Linear(child.in_features, child.out_features, child.bias is not None)
        elif isinstance(child, RctEmbedding):
            plain = nn.Embedding(child.num_embeddings, child.embedding_dim, child.padding_idx)
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
            if isinstance(m, Tracked)}
