"""Static, BatchNorm-folded ONNX graphs of every configuration of a model, over shared tensors.

A ``ServingPlan`` is what a deployment needs: the weight tensors (numpy, float32, folded: each
conv's BatchNorm is merged into its weights and a bias) and, per configuration k, an ONNX graph
whose initializers name a tensor and how many of its leading bytes they read. The graphs are
written from each configuration's static module (``model.export(k)``: plain torch layers) for
any architecture and family; configuration G's tensors are registered first, and a smaller
configuration's tensor that equals the *prefix* of the same layer's is read from it instead of
stored again. For the group model every layer is one group-major block, so all G graphs share
the same bytes; a Tann network shares whole blocks; independent and slimmable networks (whose
folded weights differ per width) hold one set per configuration.

>>> from dyndnn.models import GroupNet
>>> plan = serving_plan(GroupNet(groups=2, width=0.25, in_channels=1, image_size=28))
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

from dyndnn.models import DynamicModel
from dyndnn.models.group_layers import StaticGroupLinear
from dyndnn.models.layers import StaticResidual
from dyndnn.models.tann_layers import StaticBlocks
from dyndnn.serve.tensor_names import INPUT, OUTPUT

OPSET = 17


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

    def tensor(self, name: str, array: np.ndarray) -> str:
        """Read ``array`` from the plan.

        The prefix of the same layer's tensor where its bytes are that prefix, else a tensor of
        this configuration's own.
        """
        full = self.plan.tensors.get(name)
        if full is None:
            self.plan.tensors[name] = full = array
        rows = array.shape[0]
        if not (full.shape[1:] == array.shape[1:] and rows <= full.shape[0]
                and np.array_equal(full[:rows], array)):
            name = f"k{self.k}.{name}"
            self.plan.tensors[name] = full = array
        self.uses[name] = (name, array.shape)
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

    def conv(self, x: str, conv: nn.Conv2d, weight: str, bias: str) -> str:
        return self.op("Conv", [x, weight, bias], kernel_shape=list(conv.kernel_size),
                       pads=[*conv.padding, *conv.padding], strides=list(conv.stride),
                       group=conv.groups)

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
# the static module of one configuration, written as ONNX nodes


class _Writer:
    """Writes a static module's nodes.

    ``grouped``: x is (n, N, features), the group model's batched-GEMM layout, kept between its
    linear layers.
    """

    def __init__(self, b: _Builder) -> None:
        self.b, self.convs, self.fcs, self.grouped = b, 0, 0, 0

    def flat(self, x: str) -> str:
        """Back from the grouped layout to (N, n x features)."""
        if not self.grouped:
            return x
        self.grouped = 0
        x = self.b.op("Transpose", [x], perm=[1, 0, 2])
        return self.b.op("Reshape", [x, self.b.const([0, -1])])

    def module(self, x: str, m: nn.Module) -> str:
        b = self.b
        if isinstance(m, nn.Sequential):
            children = list(m)
            i = 0
            while i < len(children):
                bn = children[i + 1] if i + 1 < len(children) else None
                if isinstance(bn, nn.BatchNorm2d):
                    x = self.conv_bn(x, children[i], bn)
                    i += 2
                else:
                    x = self.module(x, children[i])
                    i += 1
            return x
        if isinstance(m, nn.ReLU):
            return b.op("Relu", [x])
        if isinstance(m, nn.Dropout | nn.Identity):
            return x
        if isinstance(m, StaticGroupLinear):
            return self.group_linear(x, m)
        x = self.flat(x)
        if isinstance(m, nn.MaxPool2d):
            size = m.kernel_size if isinstance(m.kernel_size, int) else m.kernel_size[0]
            return b.op("MaxPool", [x], kernel_shape=[size, size], strides=[size, size])
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return b.op("GlobalAveragePool", [x])
        if isinstance(m, nn.Flatten):
            return b.op("Flatten", [x], axis=1)
        if isinstance(m, StaticResidual):
            body = self.module(x, m.body)
            shortcut = self.module(x, m.shortcut)
            return b.op("Relu", [b.op("Add", [body, shortcut])])
        if isinstance(m, nn.Linear) or (isinstance(m, StaticBlocks)
                                        and isinstance(m.blocks[0], nn.Linear)):
            return self.linear(x, m)
        raise TypeError(f"no ONNX writer for {type(m).__name__}")

    def conv_bn(self, x: str, conv: nn.Module, bn: nn.BatchNorm2d) -> str:
        """A conv (or Tann's conv blocks) with the BatchNorm after it folded in."""
        b, name = self.b, f"conv{self.convs}"
        self.convs += 1
        x = self.flat(x)
        if isinstance(conv, nn.Conv2d):
            w, bias = _fold(conv.weight, bn.weight, bn.bias, bn.running_mean,
                            bn.running_var, bn.eps)
            return b.conv(x, conv, b.tensor(f"{name}.weight", w), b.tensor(f"{name}.bias", bias))
        outs, lo = [], 0
        for g, (block, reads) in enumerate(zip(conv.blocks, conv.reads, strict=True)):
            span = slice(lo, lo + block.out_channels)
            lo = span.stop
            w, bias = _fold(block.weight, bn.weight[span], bn.bias[span],
                            bn.running_mean[span], bn.running_var[span], bn.eps)
            outs.append(b.conv(_prefix(b, x, reads), block, b.tensor(f"{name}.{g}.weight", w),
                               b.tensor(f"{name}.{g}.bias", bias)))
        return outs[0] if len(outs) == 1 else b.op("Concat", outs, axis=1)

    def linear(self, x: str, m: nn.Module) -> str:
        """``nn.Linear`` as Gemm; Tann's blocks as Gemms over input prefixes."""
        b, name = self.b, f"fc{self.fcs}"
        self.fcs += 1
        if isinstance(m, nn.Linear):
            return b.op("Gemm", [x, b.tensor(f"{name}.weight", _array(m.weight)),
                                 b.tensor(f"{name}.bias", _array(m.bias))], transB=1)
        outs = [b.op("Gemm", [_prefix(b, x, reads), b.tensor(f"{name}.{g}.weight",
                                                             _array(block.weight)),
                              b.tensor(f"{name}.{g}.bias", _array(block.bias))], transB=1)
                for g, (block, reads) in enumerate(zip(m.blocks, m.reads, strict=True))]
        if len(outs) == 1:
            return outs[0]
        return b.op("Sum", outs) if m.sum_blocks else b.op("Concat", outs, axis=1)

    def group_linear(self, x: str, m: StaticGroupLinear) -> str:
        """One MatMul over the active groups: weight (n, in, out), a prefix along G."""
        b, name, n = self.b, f"fc{self.fcs}", m.groups
        self.fcs += 1
        if not self.grouped:  # (N, n*in) -> (n, N, in): group g's features are its own
            x = b.op("Reshape", [x, b.const([0, n, m.in_per_group])])
            x = b.op("Transpose", [x], perm=[1, 0, 2])
        weight = m.weight.reshape(n, m.out_per_group, m.in_per_group).transpose(1, 2)
        x = b.op("Add", [b.op("MatMul", [x, b.tensor(f"{name}.weight", _array(weight))]),
                         b.tensor(f"{name}.bias", _array(m.bias.reshape(n, 1, -1)))])
        self.grouped = n
        if not m.sum_groups:
            return x
        self.grouped = 0
        # opset 17: ReduceSum takes its axes as an input, ReduceMean still as an attribute
        if m.divisor == n and n > 1:
            return b.op("ReduceMean", [x], axes=[0], keepdims=0)
        return b.op("ReduceSum", [x, b.const([0])], keepdims=0)


def _prefix(b: _Builder, x: str, width: int) -> str:
    """The first ``width`` channels / features of ``x``."""
    return b.op("Slice", [x, b.const([0]), b.const([width]), b.const([1])])


@torch.no_grad()
def serving_plan(model: DynamicModel) -> ServingPlan:
    """The folded tensors and the G configuration graphs of ``model`` (any family)."""
    model.eval()
    spec = model.spec
    plan = ServingPlan(model.family, (spec.in_channels, spec.image_size, spec.image_size),
                       spec.num_classes)
    for k in range(model.groups, 0, -1):  # the full configuration's tensors first
        b = _Builder(plan, k)
        logits = _Writer(b).module(INPUT, model.export(k))
        plan.graphs.append(b.finish(logits, model.macs(k)))
    plan.graphs.reverse()
    return plan
