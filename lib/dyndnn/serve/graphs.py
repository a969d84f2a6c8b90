"""Static, BatchNorm-folded ONNX graphs of every configuration of a model, over shared tensors.

A ``ServingPlan`` is what a deployment needs: the weight tensors (numpy, float32, folded: each
conv's BatchNorm is merged into its weights and a bias) and, per configuration k, an ONNX graph
whose initializers name a tensor and how many of its leading bytes they read. For the group
model every layer is one group-major block, so configuration k reads a *prefix* of each block
and all G graphs share the same bytes; a Tann network shares whole blocks between
configurations; independent and slimmable networks (whose folded weights differ per width)
hold one set per configuration.

>>> from dyndnn.models import GroupAlexNet
>>> plan = serving_plan(GroupAlexNet(groups=2, width=0.25, in_channels=1, image_size=28))
>>> plan.tensors["conv0.weight"].shape             # folded: both groups' filters
(16, 1, 5, 5)
>>> [graph.uses["conv0.weight"] for graph in plan.graphs]   # k=1 reads the first half
[('conv0.weight', (8, 1, 5, 5)), ('conv0.weight', (16, 1, 5, 5))]

Built by hand with ``onnx.helper`` rather than by tracing: only a hand-built graph can say that
configuration k's weights are a prefix of configuration G's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from dyndnn.models import (
    ALEXNET_POOL_AFTER,
    DynamicModel,
    GroupAlexNet,
    IndependentModels,
    SlimmableAlexNet,
    TannAlexNet,
)

OPSET = 17
INPUT, OUTPUT = "images", "logits"


@dataclass
class ConfigGraph:
    """Configuration k: its graph, and for each initializer (tensor name, shape it reads)."""

    k: int
    graph: onnx.ModelProto
    uses: dict[str, tuple[str, tuple[int, ...]]]  # initializer -> (plan tensor, shape)
    macs: int


@dataclass
class ServingPlan:
    """Folded weight tensors and one graph per configuration (see the module docstring)."""

    family: str
    input_shape: tuple[int, int, int]
    num_classes: int
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    graphs: list[ConfigGraph] = field(default_factory=list)


def _fold(weight: torch.Tensor, bn_weight, bn_bias, mean, var, eps: float
          ) -> tuple[np.ndarray, np.ndarray]:
    """Conv weight and bias with the (eval-mode) BatchNorm after it merged in."""
    scale = bn_weight / torch.sqrt(var + eps)
    folded = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))
    return _array(folded), _array(bn_bias - mean * scale)


def _array(t: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(t.detach().float().cpu().numpy(), dtype=np.float32)


class _Builder:
    """Nodes and initializer uses of one graph, with fresh value names."""

    def __init__(self, plan: ServingPlan, k: int) -> None:
        self.plan, self.k = plan, k
        self.nodes: list[onnx.NodeProto] = []
        self.constants: list[TensorProto] = []
        self.uses: dict[str, tuple[str, tuple[int, ...]]] = {}
        self._n = 0

    def tensor(self, name: str, rows: int | None = None, shape: tuple[int, ...] | None = None
               ) -> str:
        """Use the first ``rows`` rows of plan tensor ``name`` (all of it by default)."""
        full = self.plan.tensors[name]
        rows = full.shape[0] if rows is None else rows
        self.uses[name] = (name, shape or (rows, *full.shape[1:]))
        return name

    def const(self, values: list[int]) -> str:
        name = f"const{len(self.constants)}"
        self.constants.append(numpy_helper.from_array(np.array(values, np.int64), name))
        return name

    def op(self, op_type: str, inputs: list[str], **attrs) -> str:
        self._n += 1
        out = f"{op_type.lower()}{self._n}"
        self.nodes.append(helper.make_node(op_type, inputs, [out], **attrs))
        return out

    def conv(self, x: str, weight: str, bias: str, kernel: int, group: int = 1) -> str:
        return self.op("Conv", [x, weight, bias], kernel_shape=[kernel, kernel],
                       pads=[kernel // 2] * 4, group=group)

    def pool(self, x: str) -> str:
        return self.op("MaxPool", [x], kernel_shape=[2, 2], strides=[2, 2])

    def finish(self, logits: str, macs: int) -> ConfigGraph:
        self.nodes.append(helper.make_node("Identity", [logits], [OUTPUT]))
        c, h, w = self.plan.input_shape
        initializers = [_external(name, shape) for name, (_, shape) in self.uses.items()]
        graph = helper.make_graph(
            self.nodes, f"{self.plan.family}-k{self.k}",
            [helper.make_tensor_value_info(INPUT, TensorProto.FLOAT, ["batch", c, h, w])],
            [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT,
                                           ["batch", self.plan.num_classes])],
            initializers + self.constants)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  ir_version=9, producer_name="dyndnn")
        return ConfigGraph(self.k, model, dict(self.uses), macs)


def _external(name: str, shape: tuple[int, ...]) -> TensorProto:
    """An initializer declared with its shape; its bytes are placed by the bundle writer."""
    t = TensorProto(name=name, data_type=TensorProto.FLOAT, dims=list(shape))
    t.data_location = TensorProto.EXTERNAL
    return t


# ----------------------------------------------------------------------------------------------
# the group model: every layer one group-major block, configuration k a prefix of it


def _group_plan(model: GroupAlexNet) -> ServingPlan:
    G, spec = model.groups, model.spec
    plan = ServingPlan(model.family, (spec.in_channels, spec.image_size, spec.image_size),
                       spec.num_classes)
    for i, (conv, norm) in enumerate(zip(model.convs, model.norms, strict=True)):
        # the block is stored channels-last; ONNX wants OIHW, so contiguous() reorders it
        weight = conv.weight_full.contiguous()
        plan.tensors[f"conv{i}.weight"], plan.tensors[f"conv{i}.bias"] = _fold(
            weight, norm.weight_full, norm.bias_full, norm.running_mean, norm.running_var,
            norm.eps)
    for i, fc in enumerate(model.fcs):
        # (G*out, in) -> (G, in, out): one MatMul over the active groups, a prefix along G
        weight = fc.weight_full.reshape(G, fc.out_per_group, fc.in_per_group).transpose(1, 2)
        plan.tensors[f"fc{i}.weight"] = _array(weight)
        plan.tensors[f"fc{i}.bias"] = _array(fc.bias_full.reshape(G, 1, fc.out_per_group))
    for k in range(1, G + 1):
        b = _Builder(plan, k)
        x = INPUT
        for i, (conv, pool) in enumerate(zip(model.convs, ALEXNET_POOL_AFTER, strict=True)):
            rows = k * conv.out_per_group
            x = b.op("Relu", [b.conv(x, b.tensor(f"conv{i}.weight", rows),
                                     b.tensor(f"conv{i}.bias", rows), conv.kernel_size,
                                     1 if conv.dense_input else k)])
            x = b.pool(x) if pool else x
        # (N, k*C*H*W) -> (k, N, C*H*W): group g's features are its channels, flattened
        x = b.op("Reshape", [x, b.const([0, k, model.fcs[0].in_per_group])])
        x = b.op("Transpose", [x], perm=[1, 0, 2])
        for i in range(len(model.fcs)):
            x = b.op("Add", [b.op("MatMul", [x, b.tensor(f"fc{i}.weight", k)]),
                             b.tensor(f"fc{i}.bias", k)])
            x = b.op("Relu", [x]) if i < len(model.fcs) - 1 else x
        # opset 17: ReduceSum takes its axes as an input, ReduceMean still as an attribute
        logits = (b.op("ReduceMean", [x], axes=[0], keepdims=0) if spec.combine == "mean"
                  else b.op("ReduceSum", [x, b.const([0])], keepdims=0))
        plan.graphs.append(b.finish(logits, model.macs(k)))
    return plan


# ----------------------------------------------------------------------------------------------
# dense networks (independent, slimmable): one plain AlexNet per configuration


def _dense_graph(plan: ServingPlan, k: int, net: nn.Module, prefix: str, macs: int
                 ) -> ConfigGraph:
    b = _Builder(plan, k)
    convs = [m for m in net.features if isinstance(m, nn.Conv2d)]
    norms = [m for m in net.features if isinstance(m, nn.BatchNorm2d)]
    x = INPUT
    for i, (conv, bn, pool) in enumerate(zip(convs, norms, ALEXNET_POOL_AFTER, strict=True)):
        w, bias = _fold(conv.weight.contiguous(), bn.weight, bn.bias, bn.running_mean,
                        bn.running_var, bn.eps)
        plan.tensors[f"{prefix}conv{i}.weight"], plan.tensors[f"{prefix}conv{i}.bias"] = w, bias
        x = b.op("Relu", [b.conv(x, b.tensor(f"{prefix}conv{i}.weight"),
                                 b.tensor(f"{prefix}conv{i}.bias"), conv.kernel_size[0])])
        x = b.pool(x) if pool else x
    x = b.op("Flatten", [x], axis=1)
    for i, fc in enumerate(net.fcs):
        plan.tensors[f"{prefix}fc{i}.weight"] = _array(fc.weight)
        plan.tensors[f"{prefix}fc{i}.bias"] = _array(fc.bias)
        x = b.op("Gemm", [x, b.tensor(f"{prefix}fc{i}.weight"), b.tensor(f"{prefix}fc{i}.bias")],
                 transB=1)
        x = b.op("Relu", [x]) if i < len(net.fcs) - 1 else x
    return b.finish(x, macs)


def _dense_plan(model: IndependentModels | SlimmableAlexNet) -> ServingPlan:
    spec = model.spec
    plan = ServingPlan(model.family, (spec.in_channels, spec.image_size, spec.image_size),
                       spec.num_classes)
    for k in range(1, model.groups + 1):
        plan.graphs.append(_dense_graph(plan, k, model.export(k), f"k{k}.", model.macs(k)))
    return plan


# ----------------------------------------------------------------------------------------------
# Tann et al.: block g of a layer reads the prefix of blocks 1..g; configurations share blocks


def _tann_plan(model: TannAlexNet) -> ServingPlan:
    spec = model.spec
    plan = ServingPlan(model.family, (spec.in_channels, spec.image_size, spec.image_size),
                       spec.num_classes)
    t = plan.tensors
    for i, (convs, norms) in enumerate(zip(model.convs, model.norms, strict=True)):
        for g, (conv, bn) in enumerate(zip(convs, norms, strict=True)):
            t[f"conv{i}.{g}.weight"], t[f"conv{i}.{g}.bias"] = _fold(
                conv.weight.contiguous(), bn.weight, bn.bias, bn.running_mean, bn.running_var,
                bn.eps)
    for name, layers in [*((f"fc{i}", fcs) for i, fcs in enumerate(model.fcs)),
                         ("head", model.heads)]:
        for g, fc in enumerate(layers):
            t[f"{name}.{g}.weight"], t[f"{name}.{g}.bias"] = _array(fc.weight), _array(fc.bias)

    for k in range(1, model.groups + 1):
        plan.graphs.append(_tann_graph(plan, model, k))
    return plan


def _prefix(b: _Builder, x: str, width: int | None) -> str:
    """The first ``width`` channels / features of ``x`` (all of it for None)."""
    return x if width is None else b.op("Slice", [x, b.const([0]), b.const([width]),
                                                  b.const([1])])


def _tann_graph(plan: ServingPlan, model: TannAlexNet, k: int) -> ConfigGraph:
    b = _Builder(plan, k)
    x = INPUT
    for i, (convs, pool) in enumerate(zip(model.convs, ALEXNET_POOL_AFTER, strict=True)):
        # block g reads the input prefix of blocks 1..g; the first layer reads the whole image
        outs = [b.conv(_prefix(b, x, None if i == 0 else convs[g].in_channels),
                       b.tensor(f"conv{i}.{g}.weight"), b.tensor(f"conv{i}.{g}.bias"),
                       convs[g].kernel_size[0]) for g in range(k)]
        x = b.op("Relu", [outs[0] if k == 1 else b.op("Concat", outs, axis=1)])
        x = b.pool(x) if pool else x
    x = b.op("Flatten", [x], axis=1)
    layers = [*((f"fc{i}", fcs) for i, fcs in enumerate(model.fcs)), ("head", model.heads)]
    for name, fcs in layers:
        outs = [b.op("Gemm", [_prefix(b, x, fcs[g].in_features), b.tensor(f"{name}.{g}.weight"),
                              b.tensor(f"{name}.{g}.bias")], transB=1) for g in range(k)]
        if name == "head":  # the classifier sums the blocks' logits
            x = outs[0] if k == 1 else b.op("Sum", outs)
        else:
            x = b.op("Relu", [outs[0] if k == 1 else b.op("Concat", outs, axis=1)])
    return b.finish(x, model.macs(k))


@torch.no_grad()
def serving_plan(model: DynamicModel) -> ServingPlan:
    """The folded tensors and the G configuration graphs of ``model`` (any family)."""
    model.eval()
    if isinstance(model, GroupAlexNet):
        return _group_plan(model)
    if isinstance(model, TannAlexNet):
        return _tann_plan(model)
    if isinstance(model, IndependentModels | SlimmableAlexNet):
        return _dense_plan(model)
    raise TypeError(f"no serving graphs for {type(model).__name__}; families: group-alexnet, "
                    "independent, tann, slimmable")
