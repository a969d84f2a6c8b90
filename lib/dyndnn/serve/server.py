"""``Server``: every configuration of a dynamic model in onnxruntime, over one set of weights.

>>> import numpy as np, tempfile
>>> from dyndnn.models import GroupNet
>>> from dyndnn.serve import write_bundle
>>> model = GroupNet(groups=4, width=0.25, in_channels=1, image_size=28).eval()
>>> server = Server(model)                     # threads: default, the cores we may use
>>> server.set_active_groups(2)                # O(1): another session, nothing built
>>> images = np.random.default_rng(0).standard_normal((3, 1, 28, 28), dtype=np.float32)
>>> server(images).shape                       # numpy in, numpy out; torch in, torch out
(3, 10)
>>> with server.active_groups(4):              # temporarily the full configuration
...     server.num_active_groups
4
>>> server.weight_bytes(), server.configuration_weight_bytes(2)  # bundle's, once; k=2 reads
(342624, 171312)
>>> folder = write_bundle(model, tempfile.mkdtemp())
>>> Server.from_bundle(folder)                 # a bundle alone: no torch, no training code
Server(group, G=4, active=4, 342,624 weight bytes, ... threads, packing='shared')

Sharing (measured; ``docs/serving.md``): ``packing`` says how the G sessions hold weights.
``"shared"`` (the default, ``dyndnn.serve.packing``): onnxruntime optimises each configuration
for its blocked kernels once, at load, and every session reads views of configuration G's
packed tensors: one weight set at the packed speed. ``"off"``: the sessions read views of
``weights.bin`` itself, given with ``SessionOptions.add_initializer``, with onnxruntime's NCHWc
transform and prepacking turned off (one weight set, unblocked kernels). ``"per-session"``:
onnxruntime packs each session's own copy (G copies).

Threads: each session has a pool of its own by default (``session_options``), as a plain
onnxruntime session does. onnxruntime's process-wide pool (``shared_pool=True``) makes the
first inference after a switch a little cheaper (the previous session's threads are not left
spinning), but once made it refuses every session of the process that has a pool of its own,
a plain ``onnxruntime.InferenceSession(path)`` included: it changes a shared library's state
under its user, so it is opt-in. Measured in ``docs/serving.md``.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from dyndnn.models.switching import Switchable
from dyndnn.serve.bundle import read_manifest, unloadable
from dyndnn.serve.packing import PACKING, PackedWeights, pack_shared

_POOL: dict[str, int] = {}  # the size of onnxruntime's process-wide thread pool, once set


def session_options(threads: int | None = None, shared_pool: bool = False
                    ) -> ort.SessionOptions:
    """Options for an onnxruntime session on ``threads`` (default: the cores we may use).

    By default the session has a pool of its own (its threads spin briefly after a run, as
    onnxruntime's do: stopping them cost 30-50 % of every inference, docs/serving.md).
    ``shared_pool=True``: onnxruntime's process-wide pool instead; the first such call
    sets its size, and from then on onnxruntime refuses any session of the process with a pool
    of its own (so every session must come from here with ``shared_pool=True``). A later call
    asking for another size gets the pool as it is, with a warning (``pool_threads()``).

    >>> options = session_options(2)
    >>> options.intra_op_num_threads, options.use_per_session_threads
    (2, True)
    """
    threads = threads or len(os.sched_getaffinity(0))
    if not shared_pool:
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        options.log_severity_level = 3  # not onnxruntime's notes on unused initializers
        return options
    from onnxruntime.capi import _pybind_state as ort_c

    if "threads" not in _POOL:
        ort_c.set_global_thread_pool_sizes(threads, 1)
        _POOL["threads"] = threads
    elif _POOL["threads"] != threads:
        warnings.warn(f"onnxruntime's thread pool in this process has {_POOL['threads']} "
                      f"threads; {threads} were asked for (each profiled mapping runs in a "
                      "process of its own, with its own pool)", stacklevel=2)
    options = ort.SessionOptions()
    options.use_per_session_threads = False
    options.log_severity_level = 3  # not onnxruntime's notes on unused initializers and the like
    return options


def pool_threads() -> int | None:
    """Threads of this process's shared onnxruntime pool (None if none was made)."""
    return _POOL.get("threads")


def _rss_bytes() -> int | None:
    try:
        import psutil
    except ImportError:  # a board without psutil: memory is then not reported
        return None
    return psutil.Process().memory_info().rss


class Server(Switchable):
    """One onnxruntime session per configuration 1..G; ``set_active_groups`` picks one."""

    def __init__(self, model: Any, threads: int | None = None, *,
                 packing: str = "shared", shared_pool: bool = False) -> None:
        from dyndnn.serve.bundle import write_bundle

        # the graphs go through a bundle in a temporary folder, so a Server made from a model
        # and one loaded on a board run the very same files; the sessions keep nothing of it
        with tempfile.TemporaryDirectory(prefix="dyndnn-serve-") as folder:
            self._load(write_bundle(model, folder), threads, packing, shared_pool)

    @classmethod
    def from_bundle(cls, folder: str | os.PathLike, threads: int | None = None, *,
                    packing: str = "shared", shared_pool: bool = False) -> Server:
        """A server over a bundle written by ``serve.write_bundle`` (02_evaluate's export/)."""
        server = cls.__new__(cls)
        server._load(Path(folder), threads, packing, shared_pool)
        return server

    def _load(self, folder: Path, threads: int | None, packing: str,
              shared_pool: bool) -> None:
        if packing not in PACKING:
            raise ValueError(f"packing must be one of {', '.join(PACKING)}; got {packing!r}")
        manifest = read_manifest(folder)
        self.manifest = manifest
        self.family: str = manifest["family"]
        self.groups: int = manifest["groups"]
        self.packing, self.shared_pool = packing, shared_pool
        rss_before = _rss_bytes()
        if shared_pool:
            session_options(threads, shared_pool=True)  # the pool exists before the sessions
        self.threads = pool_threads() if shared_pool else (
            threads or len(os.sched_getaffinity(0)))
        self._values: list[ort.OrtValue] = []  # must outlive the sessions that read them
        self.packed: PackedWeights | None = None
        self._buffer: np.ndarray | None = None  # weights.bin, where the sessions read it
        if packing == "shared":  # the packed tensors serve: weights.bin is not read here
            with tempfile.TemporaryDirectory(prefix="dyndnn-pack-") as work:
                self.packed = pack_shared(folder, manifest, work, lambda: session_options(
                    self.threads, self.shared_pool))
                self._sessions = [self._packed_session(k) for k in sorted(self.packed.graphs)]
        else:
            # one buffer for every tensor; the sessions read views of it, never copies
            self._buffer = np.fromfile(folder / manifest["weights"]["file"], dtype=np.uint8)
            self._sessions = [self._session(folder, c) for c in manifest["configurations"]]
        self._runs = [session.run for session in self._sessions]  # bound once: a switch is O(1)
        rss_after = _rss_bytes()
        self.build_rss_bytes = (None if rss_before is None or rss_after is None
                                else rss_after - rss_before)
        self.set_active_groups(self.groups)

    def _session(self, folder: Path, configuration: dict[str, Any]) -> ort.InferenceSession:
        options = session_options(self.threads, self.shared_pool)
        disabled = []
        if self.packing == "off":
            options.add_session_config_entry("session.disable_prepacking", "1")
            disabled = ["NchwcTransformer"]
        for name, use in configuration["initializers"].items():
            self._add(options, name, self.tensor_view(use["offset"], use["shape"]))
        return _open(folder / configuration["file"], configuration["k"], options, disabled)

    def _packed_session(self, k: int) -> ort.InferenceSession:
        """Configuration k's optimised graph over views of G's packed tensors, as it is."""
        options = session_options(self.threads, self.shared_pool)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.add_session_config_entry("session.disable_prepacking", "1")  # no own copies
        for name, view in self.packed.initializers[k].items():
            self._add(options, name, view)
        return _open(self.packed.graphs[k], k, options)

    def _add(self, options: ort.SessionOptions, name: str, view: np.ndarray) -> None:
        value = ort.OrtValue.ortvalue_from_numpy(view)
        self._values.append(value)
        options.add_initializer(name, value)

    def tensor_view(self, offset: int, shape: list[int]) -> np.ndarray:
        """A float32 view of ``weights.bin``'s bytes (``packing`` "off" and "per-session").

        With ``packing="off"`` writing to it changes every session's input; with "shared" the
        sessions read ``packed.tensors`` instead, and this raises.
        """
        if self._buffer is None:
            raise ValueError("packing='shared' keeps no copy of weights.bin: its sessions read "
                             "the packed tensors (server.packed.tensors)")
        count = int(np.prod(shape))
        return self._buffer[offset: offset + 4 * count].view(np.float32).reshape(shape)

    # --- switching (num_active_groups and active_groups(k) come from Switchable) -------------
    def set_active_groups(self, k: int) -> None:
        """Serve configuration k from now on: picks its session (no build, no copy)."""
        Switchable.set_active_groups(self, k)
        self._run = self._runs[k - 1]

    # --- inference ------------------------------------------------------------------------------
    def __call__(self, images: Any) -> Any:
        """Logits of the active configuration: a torch tensor in, a torch tensor out; else numpy.

        ``images`` is (N, C, H, W) float32.
        """
        if isinstance(images, np.ndarray):
            return self._run(None, {"images": np.ascontiguousarray(images, np.float32)})[0]
        import torch  # only for a torch tensor, which means torch is there

        array = images.detach().cpu().contiguous().numpy()
        return torch.from_numpy(self._run(None, {"images": array.astype(np.float32,
                                                                        copy=False)})[0])

    # --- accounting -----------------------------------------------------------------------------
    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of configuration k (default: the active one)."""
        return self.manifest["configurations"][(k or self._active) - 1]["macs"]

    def weight_bytes(self) -> int:
        """Bytes of the bundle's weights for all G configurations (each tensor once).

        What the sessions hold with ``packing="off"``; with ``"shared"`` they hold onnxruntime's
        packed layout of them, ``packed.buffer`` and ``packed.own_bytes`` (about as many bytes;
        ``make bench`` reports both).
        """
        return int(self.manifest["weights"]["tensor_bytes"])

    def configuration_weight_bytes(self, k: int | None = None) -> int:
        """Bytes of weights configuration k reads."""
        return int(self.manifest["configurations"][(k or self._active) - 1]["weight_bytes"])

    def __repr__(self) -> str:
        return (f"Server({self.family}, G={self.groups}, active={self._active}, "
                f"{self.weight_bytes():,} weight bytes, {self.threads} threads, "
                f"packing={self.packing!r})")


def _open(graph: Path, k: int, options: ort.SessionOptions,
          disabled_optimizers: list[str] | None = None) -> ort.InferenceSession:
    """Configuration k's session; a graph onnxruntime refuses is a BundleError naming it."""
    try:
        return ort.InferenceSession(str(graph), options, providers=["CPUExecutionProvider"],
                                    disabled_optimizers=disabled_optimizers or [])
    except Exception as exc:  # onnxruntime's own types (InvalidProtobuf, Fail, ...)
        raise unloadable(graph, k, exc) from exc
