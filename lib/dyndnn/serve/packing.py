"""onnxruntime's packed weights, held once and shared by every configuration.

onnxruntime makes convolutions fast by rewriting a graph for its blocked kernels (the NCHWc
layout) and copying each convolution's weights into blocks at load; a session that does so owns
its copy, so G sessions hold G copies. ``packing="off"`` avoids the copies by giving up the
blocked kernels (measured 1.5-2.1x slower at batch 1, alexnet, docs/serving.md). This module
keeps both: it lets onnxruntime optimise every configuration's graph once, keeps configuration
G's optimised tensors in one buffer, and gives each configuration views of it. That holds
because, for the group model, configuration k's blocked tensors are the leading bytes of
configuration G's: a grouped convolution's output blocks are group-major and a group's input
channels are the same at every k, as long as each group's channels fill whole blocks (8 or 16
channels, by CPU: at width 1.0 they do). A tensor that is no such prefix (other families' own
widths; a narrow group model whose smaller configurations are blocked where G's grouped
convolutions cannot be) keeps a copy of its own, counted in ``own_bytes``.

The blocked layout depends on the CPU (its vector width), so it is made where the server runs,
at load, never shipped in a bundle.

>>> import tempfile
>>> from dyndnn.models import GroupNet
>>> from dyndnn.serve.bundle import read_manifest, write_bundle
>>> # width 1.0: each group's channels fill whole blocks (8 or 16 channels, by CPU)
>>> folder = write_bundle(GroupNet(groups=2, width=1.0, in_channels=1, image_size=28),
...                       tempfile.mkdtemp())
>>> with tempfile.TemporaryDirectory() as work:
...     packed = pack_shared(folder, read_manifest(folder), work)
...     sorted(packed.graphs), packed.own_bytes        # every packed tensor is G's, shared
([1, 2], 0)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from dyndnn.serve.bundle import unloadable

PACKING = ("shared", "off", "per-session")
# each tensor starts a multiple of a cache line after the buffer's start (numpy aligns the
# start itself to 16 bytes at least)
ALIGNMENT_BYTES = 64
# tensors this small stay inside the optimised graph (shape constants that onnxruntime's shape
# inference must read from the graph itself)
INLINE_BYTES = 1024


@dataclass
class PackedWeights:
    """Optimised graphs per configuration, over views of configuration G's packed tensors."""

    # configuration -> its optimised graph, in the work folder: gone once a Server has loaded
    graphs: dict[int, Path]
    buffer: np.ndarray  # configuration G's packed tensors, one after the other
    tensors: dict[str, np.ndarray] = field(default_factory=dict)  # G's, views of buffer
    initializers: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # per k
    own_bytes: int = 0  # bytes a configuration holds that are no prefix of G's


def optimise(graph: Path, out: Path, options: ort.SessionOptions, blocked: bool = True
             ) -> Path:
    """``graph`` as onnxruntime optimises it here, written as ``out`` (its tensors beside it).

    ``blocked=False`` leaves the NCHWc layout out (every other optimisation stays).
    """
    options.log_severity_level = 3  # not its warning that the result is CPU-specific
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.optimized_model_filepath = str(out)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", f"{out.stem}.bin")
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", str(INLINE_BYTES))
    ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"],
                         disabled_optimizers=[] if blocked else ["NchwcTransformer"])
    return out


def pack_shared(folder: str | Path, manifest: dict[str, Any], work: str | Path,
                options_of: Callable[[], ort.SessionOptions] = ort.SessionOptions
                ) -> PackedWeights:
    """Optimise every configuration in ``work``; their packed tensors as views of G's.

    A configuration whose blocked tensors are no prefix of G's (its channels fill the blocks
    otherwise than G's do) is optimised once more without the blocked layout, and keeps
    whichever holds fewer bytes of its own. ``options_of`` makes the sessions' options (the
    server's: its threads, its pool).
    """
    folder, work = Path(folder), Path(work)
    configurations = {c["k"]: folder / c["file"] for c in manifest["configurations"]}
    G = max(configurations)

    def optimised(k: int, blocked: bool = True) -> Path:
        out = work / f"packed{k}{'' if blocked else '-plain'}.onnx"
        try:
            return optimise(configurations[k], out, options_of(), blocked)
        except Exception as exc:  # onnxruntime's own types (InvalidProtobuf, Fail, ...)
            raise unloadable(configurations[k], k, exc) from exc

    full_graph = optimised(G)
    full = _external_tensors(full_graph, work)
    packed = PackedWeights({}, np.zeros(sum(_aligned(a.nbytes) for a in full.values()),
                                        np.uint8))
    offset = 0
    for name, array in full.items():
        view = packed.buffer[offset: offset + array.nbytes].view(array.dtype)
        view[...] = array.reshape(-1)
        packed.tensors[name] = view.reshape(array.shape)
        offset += _aligned(array.nbytes)
    packed.graphs[G], packed.initializers[G] = full_graph, dict(packed.tensors)  # G's own
    for k in sorted(configurations)[:-1]:
        graph = optimised(k)
        uses, own = _uses(packed.tensors, graph, work)
        if own:
            plain = optimised(k, blocked=False)
            plain_uses, plain_own = _uses(packed.tensors, plain, work)
            if plain_own < own:
                graph, uses, own = plain, plain_uses, plain_own
        packed.graphs[k], packed.initializers[k] = graph, uses
        packed.own_bytes += own
    return packed


def _uses(tensors: dict[str, np.ndarray], graph: Path, work: Path
          ) -> tuple[dict[str, np.ndarray], int]:
    """What ``graph``'s sessions read (views of ``tensors`` where it can), and its own bytes."""
    uses, own = {}, 0
    for name, array in _external_tensors(graph, work).items():
        view = _prefix_of(tensors, name, array)
        if view is None:
            view, own = array, own + array.nbytes
        uses[name] = view
    return uses, own


def _external_tensors(graph: Path, work: Path) -> dict[str, np.ndarray]:
    """The tensors an optimised graph keeps outside itself (all but the small ones)."""
    import onnx  # here, not at the top: importing onnx costs 0.5 s (docs/processes.md)
    from onnx import numpy_helper

    model = onnx.load(str(graph), load_external_data=False)
    return {init.name: np.ascontiguousarray(numpy_helper.to_array(init, base_dir=str(work)))
            for init in model.graph.initializer
            if init.data_location == onnx.TensorProto.EXTERNAL}


def _prefix_of(tensors: dict[str, np.ndarray], name: str, array: np.ndarray
               ) -> np.ndarray | None:
    """A view of the tensor of G whose leading bytes are ``array``'s (the same name first)."""
    flat = array.reshape(-1)
    candidates = [tensors[name]] if name in tensors else []
    candidates += [t for other, t in tensors.items() if other != name]
    for tensor in candidates:
        if tensor.dtype == array.dtype and tensor.size >= flat.size:
            lead = tensor.reshape(-1)[: flat.size]
            if np.array_equal(lead.view(np.uint8), flat.view(np.uint8)):  # the same bits
                return lead.reshape(array.shape)
    return None


def _aligned(nbytes: int) -> int:
    return -(-nbytes // ALIGNMENT_BYTES) * ALIGNMENT_BYTES
