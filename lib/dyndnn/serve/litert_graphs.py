"""A LiteRT (TFLite) model of every configuration, written from the serving plan's ONNX graphs.

One ``.tflite`` file: a subgraph and a signature per configuration (``k1`` ... ``kG``, input
``images`` NCHW with any batch, output ``logits``), every configuration's weights read from one
region after the flatbuffer. The plan's tensors are stored there once, in LiteRT's layouts (a
conv's filters OHWI, a linear layer's rows as they are), and each subgraph's weight tensor is a
``Buffer`` whose offset and size pick its prefix: configuration k of the group model reads the
first bytes of configuration G's tensors, as the ONNX bundle's graphs do.

>>> import numpy as np
>>> from ai_edge_litert.interpreter import Interpreter
>>> from dyndnn.models import GroupNet
>>> from dyndnn.serve.graphs import serving_plan
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> written = litert_model(serving_plan(model))
>>> runner = Interpreter(model_content=written.content).get_signature_runner("k1")
>>> runner(images=np.zeros((3, 1, 28, 28), np.float32))["logits"].shape
(3, 10)

Written by hand because the converter that writes ``.tflite`` from PyTorch (``litert-torch``)
cannot share an environment with the workbook (it pins ``typing-extensions`` below what Jupyter
needs; ``docs/engines.md``), and because only a hand-written file can say that configuration
k's weights are a prefix of configuration G's. The graphs are translated from ONNX (NCHW) to
LiteRT's NHWC: one transpose after the input, channel axes moved, a transpose before a
flatten that still has a spatial extent. Writing needs ``onnx`` and ``ai-edge-litert`` (its
schema module), not torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from dyndnn.serve.litert_ops import SubgraphWriter
from dyndnn.serve.tensor_names import INPUT, OUTPUT, signature_key

if TYPE_CHECKING:  # the plan is made with torch; writing it needs none
    from dyndnn.serve.graphs import ServingPlan

ALIGNMENT_BYTES = 64  # each tensor's start in the weight region (XNNPACK reads aligned data)
_PLACEHOLDER = 1 << 40  # an offset before the flatbuffer's size is known (same encoded size)
NHWC = (0, 2, 3, 1)  # NCHW -> NHWC
NCHW = (0, 3, 1, 2)  # NHWC -> NCHW


def _schema() -> Any:
    from dyndnn.serve.optional_engines import require_engine

    return require_engine("litert", "ai_edge_litert.schema_py_generated")[0]


@dataclass
class LiteRtModel:
    """The ``.tflite`` bytes, and how many of them are weights (each plan tensor once)."""

    content: bytes
    weight_bytes: int
    flatbuffer_bytes: int


def litert_model(plan: ServingPlan) -> LiteRtModel:
    """Every configuration of ``plan`` as one ``.tflite`` (see the module docstring)."""
    region = _WeightRegion()
    writer = _ModelWriter(_schema(), region)
    for cg in plan.graphs:
        writer.subgraph(cg.k, cg.graph, {name: plan.tensors[tensor] for name, (tensor, _)
                                         in cg.uses.items()}, cg.uses)
    draft = writer.pack(base=_PLACEHOLDER)
    base = len(draft) + (-len(draft) % ALIGNMENT_BYTES)
    content = writer.pack(base=base)
    if len(content) != len(draft):  # offsets are fixed-size fields: cannot happen
        raise RuntimeError("the flatbuffer changed size when its offsets were set")
    padding = b"\0" * (base - len(content))
    return LiteRtModel(content + padding + region.data(), region.size, len(content))


class _WeightRegion:
    """The plan's tensors in LiteRT's layouts, each once, at aligned offsets."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._offsets: dict[tuple[str, str], int] = {}
        self.size = 0

    def place(self, key: tuple[str, str], array: np.ndarray) -> int:
        """The offset of ``array`` (stored under ``key`` the first time it is asked for)."""
        if key not in self._offsets:
            pad = -self.size % ALIGNMENT_BYTES
            self._chunks.append(b"\0" * pad)
            self._offsets[key] = self.size + pad
            data = np.ascontiguousarray(array).tobytes()
            self._chunks.append(data)
            self.size += pad + len(data)
        return self._offsets[key]

    def data(self) -> bytes:
        return b"".join(self._chunks)


class _ModelWriter:
    """Subgraphs, operator codes and buffers of one LiteRT model."""

    def __init__(self, schema: Any, region: _WeightRegion) -> None:
        self.s, self.region = schema, region
        self.model = schema.ModelT()
        self.model.version = 3
        self.model.description = "dyndnn"
        self.model.buffers = [schema.BufferT()]  # buffer 0: the empty sentinel
        self.model.operatorCodes, self.model.subgraphs, self.model.signatureDefs = [], [], []
        self._codes: dict[int, int] = {}
        self._external: list[tuple[Any, int, int]] = []  # buffer, region offset, size

    def code(self, builtin: int) -> int:
        if builtin not in self._codes:
            op = self.s.OperatorCodeT()
            op.builtinCode, op.deprecatedBuiltinCode, op.version = builtin, min(builtin, 127), 1
            self._codes[builtin] = len(self.model.operatorCodes)
            self.model.operatorCodes.append(op)
        return self._codes[builtin]

    def external_buffer(self, offset: int, size: int) -> int:
        buffer = self.s.BufferT()
        self._external.append((buffer, offset, size))
        self.model.buffers.append(buffer)
        return len(self.model.buffers) - 1

    def inline_buffer(self, array: np.ndarray) -> int:
        buffer = self.s.BufferT()
        buffer.data = np.frombuffer(np.ascontiguousarray(array).tobytes(), np.uint8)
        self.model.buffers.append(buffer)
        return len(self.model.buffers) - 1

    def subgraph(self, k: int, graph: onnx.ModelProto, arrays: dict[str, np.ndarray],
                 uses: dict[str, tuple[str, tuple[int, ...]]]) -> None:
        s = self.s
        sub = SubgraphWriter(self, graph, arrays, uses, _shapes(graph))
        input_index, output_index = sub.run(INPUT, OUTPUT)
        sg = s.SubGraphT()
        sg.name, sg.tensors, sg.operators = signature_key(k), sub.tensors, sub.operators
        sg.inputs, sg.outputs = [input_index], [output_index]
        self.model.subgraphs.append(sg)
        signature = s.SignatureDefT()
        signature.signatureKey, signature.subgraphIndex = signature_key(k), len(
            self.model.subgraphs) - 1
        signature.inputs = [_tensor_map(s, INPUT, input_index)]
        signature.outputs = [_tensor_map(s, OUTPUT, output_index)]
        self.model.signatureDefs.append(signature)

    def pack(self, base: int) -> bytes:
        import flatbuffers

        for buffer, offset, size in self._external:
            buffer.offset, buffer.size = base + offset, size
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(self.model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _tensor_map(schema: Any, name: str, index: int) -> Any:
    entry = schema.TensorMapT()
    entry.name, entry.tensorIndex = name, index
    return entry


def _shapes(graph: onnx.ModelProto) -> dict[str, list[int | None]]:
    """Every value's shape (None: the batch axis), by ONNX shape inference."""
    inferred = onnx.shape_inference.infer_shapes(graph, strict_mode=True)
    shapes = {}
    for info in (*inferred.graph.input, *inferred.graph.value_info, *inferred.graph.output):
        dims = info.type.tensor_type.shape.dim
        shapes[info.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
    for init in graph.graph.initializer:
        shapes[init.name] = list(init.dims)
    return shapes
