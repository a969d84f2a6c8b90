"""``ExecutorchServer``: every configuration in one ExecuTorch program, lowered to XNNPACK.

PyTorch's own on-device runtime: each configuration's static module (``model.export(k)``) is
captured by ``torch.export`` with a dynamic batch axis, the G programs are lowered together
(``to_edge_transform_and_lower`` with the XNNPACK partitioner) into one ``.pte`` holding one
method per configuration (``forward_k1`` ... ``forward_kG``), and the runtime loads every
method; ``set_active_groups`` picks one.

>>> import numpy as np
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> server = ExecutorchServer(model, threads=1)
>>> server.method_names
['forward_k1', 'forward_k2']
>>> server.set_active_groups(1)
>>> server(np.zeros((3, 1, 28, 28), np.float32)).shape
(3, 10)

What is shared (measured in ``docs/engines.md``): the XNNPACK serializer names a constant by a
hash of its bytes, so a tensor byte-identical in two methods is stored once. Exported whole
(``layout="fused"``), configuration k's weights are slices of configuration G's, not identical
tensors, so the program holds each configuration's own (2.5 parameter sets for G = 4). The
group model is therefore lowered per group by default (``layout="per-group"``): configuration
k sums the paths of groups 1..k, every method reads the same group tensors, and the program
holds one parameter set.
``pte_bytes`` and ``build_rss_bytes`` say what holding all G costs. ``max_batch`` is the
largest batch the program's memory plan holds (15 here, though the batch axis was exported
up to ``MAX_BATCH``); a larger one is refused by name rather than failing inside the runtime.
ExecuTorch's Python runtime takes torch tensors, so this backend needs torch (on a board its C++
runtime reads the same ``.pte``); the XNNPACK thread pool is process-wide, set from
``threads`` (the profiler gives each mapping its own process).
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

import numpy as np
import torch  # this backend needs torch: its Python runtime takes torch tensors
from torch import nn

from dyndnn.models.switching import Switchable
from dyndnn.serve.bundle import BundleError
from dyndnn.serve.optional_engines import require_engine

MAX_BATCH = 1024  # the dynamic batch axis' upper bound (XNNPACK plans for a bounded shape)
# programs lowered in this process, by what they were lowered from (``_lowering_key``):
# 02_evaluate lowers the group model to time its switches and again for its bundle, seconds each
_LOWERED: dict[str, bytes] = {}
_LOWERED_KEPT = 4


def _executorch() -> Any:
    exir, runtime, partition, pybindings = require_engine(
        "executorch", "executorch.exir", "executorch.runtime",
        "executorch.backends.xnnpack.partition.xnnpack_partitioner",
        "executorch.extension.pybindings.portable_lib")
    return exir, runtime, partition.XnnpackPartitioner, pybindings


def method_name(k: int) -> str:
    """The program's method for configuration k.

    >>> method_name(3)
    'forward_k3'
    """
    return f"forward_k{k}"


LAYOUTS = ("per-group", "fused")


def configuration_modules(model: Any, layout: str = "per-group") -> dict[str, Any]:
    """Each configuration's module, by method name; ``layout`` says how the group model's.

    ``"per-group"``: configuration k sums the paths of groups 1..k (``group_path``), the same
    modules in every method, so their folded constants are byte-identical and the program
    stores each once. ``"fused"``: ``model.export(k)``, one grouped convolution per layer, whose
    constants are slices of G's and are stored per method. Other families export each
    configuration whole (``fused``) either way.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}; got {layout!r}")
    if layout == "fused" or not hasattr(model, "group_path"):
        return {method_name(k): model.export(k).eval() for k in range(1, model.groups + 1)}
    paths = [model.group_path(g).eval() for g in range(model.groups)]
    mean = model.spec.combine == "mean"
    return {method_name(k): _PathSum(paths[:k], float(k) if mean else 1.0)
            for k in range(1, model.groups + 1)}


def _lowering_key(model: Any, layout: str) -> str:
    """What a program is lowered from: family, configurations, spec, layout and every tensor."""
    digest = hashlib.sha256(repr((type(model).__name__, model.family, model.groups, model.spec,
                                  layout)).encode())
    for name, tensor in model.state_dict().items():
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def lower_program(model: Any, layout: str = "per-group") -> bytes:
    """The ``.pte`` bytes of every configuration of ``model``, one XNNPACK method each.

    Lowered once per process for the same model and layout (the same tensors, bit for bit):
    the program is a function of them.
    """
    key = _lowering_key(model, layout)
    program = _LOWERED.pop(key, None)
    if program is None:
        program = _lower(model, layout)
        while len(_LOWERED) >= _LOWERED_KEPT:
            del _LOWERED[next(iter(_LOWERED))]  # the least recently used
    _LOWERED[key] = program  # the most recently used last
    return program


def _lower(model: Any, layout: str) -> bytes:
    exir, _, partitioner, _ = _executorch()
    spec = model.spec
    # a generator of its own: lowering (or finding it lowered) leaves the global stream alone
    example = torch.randn(2, spec.in_channels, spec.image_size, spec.image_size,
                          generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    programs = {}
    for name, module in configuration_modules(model, layout).items():
        for tensor in (*module.parameters(), *module.buffers()):  # XNNPACK's passes want NCHW
            tensor.data = tensor.data.contiguous()  # weights (ours are channels_last)
        programs[name] = torch.export.export(module, (example,), dynamic_shapes=({0: batch},))
    lowered = exir.to_edge_transform_and_lower(programs, partitioner=[partitioner()])
    return lowered.to_executorch().buffer


def _max_batch(methods: list[Any]) -> int:
    """The largest batch every method's planned input holds.

    Asked for batches up to ``MAX_BATCH``, ExecuTorch 1.5 with torch 2.13 planned 15 images
    (measured), whatever the bound or the example batch given to ``torch.export``.
    """
    return min(int(m.metadata.input_tensor_meta(0).sizes()[0]) for m in methods)


def program_max_batch(program_bytes: bytes, groups: int) -> int:
    """The batch limit of a lowered program (loaded once to read its methods' plans)."""
    _, runtime, _, _ = _executorch()
    program = runtime.Runtime.get().load_program(program_bytes)
    return _max_batch([program.load_method(method_name(k)) for k in range(1, groups + 1)])


class _PathSum(nn.Module):
    """The logits of the paths given, summed (and divided by ``divisor``: the mean rule)."""

    def __init__(self, paths: list[nn.Module], divisor: float) -> None:
        super().__init__()
        self.paths, self.divisor = nn.ModuleList(paths), divisor

    def forward(self, x: Any) -> Any:  # noqa: D102 (nn.Module's)
        out = self.paths[0](x)
        for path in self.paths[1:]:
            out = out + path(x)
        return out / self.divisor if self.divisor != 1.0 else out


class ExecutorchServer(Switchable):
    """One ExecuTorch program, one XNNPACK-lowered method per configuration 1..G."""

    def __init__(self, model: Any, threads: int | None = None, layout: str = "per-group"
                 ) -> None:
        self.family: str = model.family
        self.groups: int = model.groups
        self._macs = [model.macs(k) for k in range(1, model.groups + 1)]
        # what was lowered: per-group applies to the group model alone
        self.layout = layout if hasattr(model, "group_path") else "fused"
        self._load(lower_program(model, layout), threads)

    @classmethod
    def from_bytes(cls, program_bytes: bytes, family: str, macs: list[int], layout: str,
                   threads: int | None = None) -> ExecutorchServer:
        """A server over a lowered program (``executorch_bundle.load_program`` reads a bundle's).

        ``macs``: each configuration's multiply-accumulates, configuration 1 first.
        """
        server = cls.__new__(cls)
        server.family, server.groups = family, len(macs)
        server._macs, server.layout = list(macs), layout
        server._load(program_bytes, threads)
        return server

    def _load(self, program_bytes: bytes, threads: int | None) -> None:
        from dyndnn.serve.server import _rss_bytes

        _, runtime, _, portable_lib = _executorch()
        self.threads = threads or len(os.sched_getaffinity(0))
        self.pte_bytes = self.file_bytes = len(program_bytes)  # file_bytes: any engine's name
        portable_lib._unsafe_reset_threadpool(self.threads)  # process-wide: see the docstring
        rss_before = _rss_bytes()
        program = runtime.Runtime.get().load_program(program_bytes)
        expected = [method_name(k) for k in range(1, self.groups + 1)]
        if sorted(program.method_names) != sorted(expected):
            raise BundleError(f"the program's methods {sorted(program.method_names)} are not "
                              f"{', '.join(expected)}: write it again")
        self.method_names = expected
        self._methods = [program.load_method(name) for name in expected]
        self.max_batch = _max_batch(self._methods)
        rss_after = _rss_bytes()
        self._program = program  # the methods read its buffers
        self.build_rss_bytes = (None if rss_before is None or rss_after is None
                                else rss_after - rss_before)
        self.set_active_groups(self.groups)

    def set_active_groups(self, k: int) -> None:
        """Serve configuration k from now on: picks its method (nothing built)."""
        Switchable.set_active_groups(self, k)
        self._method = self._methods[k - 1]

    def __call__(self, images: Any) -> Any:
        """Logits of the active configuration: numpy in, numpy out; a torch tensor in, out."""
        if len(images) > self.max_batch:
            raise BundleError(
                f"this ExecuTorch program takes batches of up to {self.max_batch} images (what "
                f"its memory plan holds); got {len(images)}: profile the executorch backend at "
                f"batches up to {self.max_batch}")
        if isinstance(images, np.ndarray):
            x = torch.from_numpy(np.ascontiguousarray(images, np.float32))
            return self._method.execute([x])[0].numpy()
        return self._method.execute([images.detach().cpu().contiguous().float()])[0]

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of configuration k (default: the active one)."""
        return self._macs[(k or self._active) - 1]

    def __repr__(self) -> str:
        return (f"ExecutorchServer({self.family}, G={self.groups}, active={self._active}, "
                f"{self.threads} threads, {self.pte_bytes:,} program bytes, {self.layout})")
