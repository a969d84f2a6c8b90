"""One configuration's ONNX graph (the serving plan's vocabulary) as a LiteRT subgraph.

The plan's graphs use a dozen ONNX operators (``serve.graphs``); each becomes one or two
LiteRT builtins. Image values are kept NHWC (LiteRT's convolution layout): ``nhwc`` names
them, and an operator over the channel axis (concatenation, slice) moves its axis. A ReLU
right after a convolution, a sum or a linear layer that nothing else reads is fused into it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper

_FUSABLE = ("Conv", "Add", "Gemm")  # producers a following ReLU fuses into


class SubgraphWriter:
    """Tensors and operators of one configuration (``run`` translates the graph)."""

    def __init__(self, model: Any, graph: onnx.ModelProto, arrays: dict[str, np.ndarray],
                 uses: dict[str, tuple[str, tuple[int, ...]]],
                 shapes: dict[str, list[int | None]]) -> None:
        self.m, self.s, self.graph = model, model.s, graph
        self.arrays, self.uses, self.shapes = arrays, uses, shapes
        self.consts = {i.name: numpy_helper.to_array(i) for i in graph.graph.initializer
                       if i.data_location != onnx.TensorProto.EXTERNAL}
        self.tensors: list[Any] = []
        self.operators: list[Any] = []
        self.values: dict[str, int] = {}
        self.nhwc: set[str] = set()
        self._producer: dict[str, tuple[str, Any]] = {}
        self._readers: dict[str, int] = {}
        for node in graph.graph.node:
            for name in node.input:
                self._readers[name] = self._readers.get(name, 0) + 1

    # -- tensors -----------------------------------------------------------------------------

    def tensor(self, name: str, shape: list[int | None], dtype: int | None = None,
               buffer: int = 0) -> int:
        """A new tensor (None in ``shape``: the batch axis, any size); its index."""
        t = self.s.TensorT()
        t.name, t.buffer = name, buffer
        t.type = self.s.TensorType.FLOAT32 if dtype is None else dtype
        t.shape = [1 if d is None else int(d) for d in shape]
        if any(d is None for d in shape):
            t.shapeSignature = [-1 if d is None else int(d) for d in shape]
        self.tensors.append(t)
        return len(self.tensors) - 1

    def value(self, name: str, nhwc: bool) -> int:
        """A fresh tensor for ONNX value ``name`` (NHWC when ``nhwc``)."""
        shape = self.shapes[name]
        if nhwc:
            shape = [shape[i] for i in (0, 2, 3, 1)]
            self.nhwc.add(name)
        self.values[name] = index = self.tensor(name, shape)
        return index

    def ints(self, values: list[int]) -> int:
        """An int32 constant (a shape, a permutation, axes) stored in the flatbuffer."""
        array = np.asarray(values, np.int32)
        return self.tensor(f"const{len(self.tensors)}", list(array.shape),
                           self.s.TensorType.INT32, self.m.inline_buffer(array))

    def weight(self, name: str, layout: str = "plain") -> int:
        """Initializer ``name``: a prefix of its plan tensor, stored once in the region."""
        full = self.arrays[name]
        if layout == "ohwi":
            full = full.transpose(0, 2, 3, 1)
        tensor, shape = self.uses[name]
        rows = int(shape[0])
        row_bytes = full[0].nbytes
        offset = self.m.region.place((tensor, layout), full)
        shape_out = [rows, *full.shape[1:]]
        buffer = self.m.external_buffer(offset, rows * row_bytes)
        return self.tensor(name, shape_out, buffer=buffer)

    def op(self, builtin: str, inputs: list[int], outputs: list[int], options: Any = None,
           options_type: str | None = None) -> Any:
        """Append the LiteRT builtin ``builtin`` with its options (a ``*OptionsT``)."""
        s = self.s
        op = s.OperatorT()
        op.opcodeIndex = self.m.code(getattr(s.BuiltinOperator, builtin))
        op.inputs, op.outputs = inputs, outputs
        if options is not None:
            op.builtinOptionsType = getattr(s.BuiltinOptions, options_type)
            op.builtinOptions = options
        self.operators.append(op)
        return op

    # -- the graph ---------------------------------------------------------------------------

    def run(self, input_name: str, output_name: str) -> tuple[int, int]:
        """Translate every node; returns the input and output tensor indices."""
        shape = self.shapes[input_name]
        input_index = self.tensor(input_name, shape)
        self.op("TRANSPOSE", [input_index, self.ints([0, 2, 3, 1])],
                [self._nhwc_input(input_name)])
        for node in self.graph.graph.node:
            handler = getattr(self, f"_{node.op_type}", None)
            if handler is None:
                raise TypeError(f"no LiteRT writer for ONNX {node.op_type}")
            handler(node)
        return input_index, self.values[output_name]

    def _nhwc_input(self, input_name: str) -> int:
        shape = self.shapes[input_name]
        index = self.tensor(f"{input_name}.nhwc", [shape[i] for i in (0, 2, 3, 1)])
        self.values[input_name] = index
        self.nhwc.add(input_name)
        return index

    def _in(self, node: onnx.NodeProto, i: int = 0) -> int:
        return self.values[node.input[i]]

    def _out(self, node: onnx.NodeProto, nhwc: bool) -> int:
        return self.value(node.output[0], nhwc)

    def _Identity(self, node: onnx.NodeProto) -> None:
        self.values[node.output[0]] = self._in(node)
        if node.input[0] in self.nhwc:
            self.nhwc.add(node.output[0])

    def _Relu(self, node: onnx.NodeProto) -> None:
        source = node.input[0]
        producer = self._producer.get(source)
        if producer is not None and self._readers.get(source) == 1:
            producer[1].fusedActivationFunction = self.s.ActivationFunctionType.RELU
            self._Identity(node)
            return
        self.op("RELU", [self._in(node)], [self._out(node, source in self.nhwc)])

    def _Conv(self, node: onnx.NodeProto) -> None:
        a = _attributes(node)
        kh, kw = a["kernel_shape"]
        top, left, bottom, right = a.get("pads", [0, 0, 0, 0])
        x = self._in(node)
        options = self.s.Conv2DOptionsT()
        options.strideH, options.strideW = a.get("strides", [1, 1])
        options.dilationHFactor = options.dilationWFactor = 1
        same = (options.strideH == options.strideW == 1 and top == bottom == (kh - 1) // 2
                and left == right == (kw - 1) // 2 and kh % 2 == kw % 2 == 1)
        options.padding = self.s.Padding.SAME if same else self.s.Padding.VALID
        if not same and any((top, left, bottom, right)):
            shape = self.shapes[node.input[0]]
            padded_shape = [shape[0], shape[2] + top + bottom, shape[3] + left + right, shape[1]]
            padded = self.tensor(f"{node.output[0]}.padded", padded_shape)
            self.op("PAD", [x, self.ints([[0, 0], [top, bottom], [left, right], [0, 0]])],
                    [padded], self.s.PadOptionsT(), "PadOptions")
            x = padded
        inputs = [x, self.weight(node.input[1], "ohwi"), self.weight(node.input[2])]
        self._producer[node.output[0]] = ("Conv", options)
        self.op("CONV_2D", inputs, [self._out(node, True)], options, "Conv2DOptions")

    def _MaxPool(self, node: onnx.NodeProto) -> None:
        a = _attributes(node)
        if any(a.get("pads", [0])):
            raise TypeError("no LiteRT writer for a padded MaxPool")
        options = self.s.Pool2DOptionsT()
        options.filterHeight, options.filterWidth = a["kernel_shape"]
        options.strideH, options.strideW = a.get("strides", a["kernel_shape"])
        options.padding = self.s.Padding.VALID
        self.op("MAX_POOL_2D", [self._in(node)], [self._out(node, True)], options,
                "Pool2DOptions")

    def _GlobalAveragePool(self, node: onnx.NodeProto) -> None:
        options = self.s.ReducerOptionsT()
        options.keepDims = True
        self.op("MEAN", [self._in(node), self.ints([1, 2])], [self._out(node, True)], options,
                "ReducerOptions")

    def _Flatten(self, node: onnx.NodeProto) -> None:
        x, shape = self._in(node), self.shapes[node.input[0]]
        if node.input[0] in self.nhwc and shape[2] * shape[3] > 1:  # NCHW order, as ONNX's
            nchw = self.tensor(f"{node.output[0]}.nchw", shape)
            self.op("TRANSPOSE", [x, self.ints([0, 3, 1, 2])], [nchw])
            x = nchw
        self._reshape(node, x)

    def _Reshape(self, node: onnx.NodeProto) -> None:
        self._reshape(node, self._in(node))

    def _reshape(self, node: onnx.NodeProto, x: int) -> None:
        new_shape = [-1 if d is None else d for d in self.shapes[node.output[0]]]
        options = self.s.ReshapeOptionsT()
        options.newShape = new_shape
        self.op("RESHAPE", [x, self.ints(new_shape)], [self._out(node, False)], options,
                "ReshapeOptions")

    def _Transpose(self, node: onnx.NodeProto) -> None:
        perm = _attributes(node)["perm"]
        self.op("TRANSPOSE", [self._in(node), self.ints(perm)], [self._out(node, False)])

    def _operand(self, name: str) -> int:
        return self.values[name] if name in self.values else self.weight(name)

    def _Add(self, node: onnx.NodeProto) -> None:
        options = self.s.AddOptionsT()
        inputs = [self._operand(name) for name in node.input]
        self._producer[node.output[0]] = ("Add", options)
        self.op("ADD", inputs, [self._out(node, node.input[0] in self.nhwc)], options,
                "AddOptions")

    def _Sum(self, node: onnx.NodeProto) -> None:
        total = self._in(node)
        for i, name in enumerate(node.input[1:], start=1):
            last = i == len(node.input) - 1
            out = (self._out(node, False) if last
                   else self.tensor(f"{node.output[0]}.{i}", self.shapes[node.output[0]]))
            self.op("ADD", [total, self.values[name]], [out], self.s.AddOptionsT(),
                    "AddOptions")
            total = out

    def _Concat(self, node: onnx.NodeProto) -> None:
        nhwc = node.input[0] in self.nhwc
        options = self.s.ConcatenationOptionsT()
        axis = _attributes(node)["axis"]
        options.axis = 3 if nhwc and axis == 1 else axis
        self.op("CONCATENATION", [self.values[name] for name in node.input],
                [self._out(node, nhwc)], options, "ConcatenationOptions")

    def _Slice(self, node: onnx.NodeProto) -> None:
        nhwc = node.input[0] in self.nhwc
        out_shape = self.shapes[node.output[0]]
        if nhwc:
            out_shape = [out_shape[i] for i in (0, 2, 3, 1)]
        size = [-1 if d is None else d for d in out_shape]
        self.op("SLICE", [self._in(node), self.ints([0] * len(size)), self.ints(size)],
                [self._out(node, nhwc)], self.s.SliceOptionsT(), "SliceOptions")

    def _Gemm(self, node: onnx.NodeProto) -> None:
        a = _attributes(node)
        if a.get("transB") != 1 or a.get("transA", 0) or a.get("alpha", 1.0) != 1.0:
            raise TypeError("no LiteRT writer for a Gemm other than x @ W.T + b")
        options = self.s.FullyConnectedOptionsT()
        inputs = [self._in(node), self.weight(node.input[1]), self.weight(node.input[2])]
        self._producer[node.output[0]] = ("Gemm", options)
        self.op("FULLY_CONNECTED", inputs, [self._out(node, False)], options,
                "FullyConnectedOptions")

    def _MatMul(self, node: onnx.NodeProto) -> None:
        self.op("BATCH_MATMUL", [self._in(node), self._operand(node.input[1])],
                [self._out(node, False)], self.s.BatchMatMulOptionsT(), "BatchMatMulOptions")

    def _reduce(self, node: onnx.NodeProto, builtin: str, axes: list[int]) -> None:
        options = self.s.ReducerOptionsT()
        options.keepDims = bool(_attributes(node).get("keepdims", 1))
        self.op(builtin, [self._in(node), self.ints(axes)], [self._out(node, False)], options,
                "ReducerOptions")

    def _ReduceSum(self, node: onnx.NodeProto) -> None:
        self._reduce(node, "SUM", [int(v) for v in self.consts[node.input[1]]])

    def _ReduceMean(self, node: onnx.NodeProto) -> None:
        self._reduce(node, "MEAN", list(_attributes(node)["axes"]))


def _attributes(node: onnx.NodeProto) -> dict[str, Any]:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
