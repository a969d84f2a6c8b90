"""The inference engines by name: what the profiler, the runtime experiment and 05 serve with.

``eager``: the PyTorch model itself (the research side); ``onnxruntime``: ``Server`` over one
weight set (what a board deploys); ``openvino``: ``OpenVinoServer`` (Intel CPUs);
``executorch``: ``ExecutorchServer`` (one XNNPACK program, a method per configuration);
``litert``: ``LiteRtServer`` (one ``.tflite``, a signature per configuration). Each has
``set_active_groups(k)`` and takes a batch: a torch tensor for eager, a numpy array for the
others (``wants_numpy``).

>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> engine(model, "eager") is model, type(engine(model, "onnxruntime", threads=1)).__name__
(True, 'Server')
"""

from __future__ import annotations

from typing import Any

from dyndnn.config.names import BACKENDS


def engine(model: Any, backend: str, threads: int | None = None) -> Any:
    """``model`` served by ``backend`` on ``threads`` threads (default: the cores we may use).

    A bundle opened on a board (``board.bundle_source.BundleModel``) serves itself: its engines
    read the bundle's graphs, and it has no eager model (it says so).
    """
    if hasattr(model, "serve"):
        return model.serve(backend, threads)
    if backend == "eager":
        return model
    if backend == "onnxruntime":
        from dyndnn.serve.server import Server

        return Server(model, threads=threads)
    if backend == "openvino":
        from dyndnn.serve.openvino_server import OpenVinoServer

        return OpenVinoServer(model, threads=threads)
    if backend == "executorch":
        from dyndnn.serve.executorch_server import ExecutorchServer

        return ExecutorchServer(model, threads=threads)
    if backend == "litert":
        from dyndnn.serve.litert_server import LiteRtServer

        return LiteRtServer(model, threads=threads)
    raise ValueError(f"unknown backend {backend!r}; known: {', '.join(BACKENDS)}")


def wants_numpy(backend: str) -> bool:
    """Whether the engine takes numpy arrays (every engine but eager PyTorch)."""
    return backend != "eager"
