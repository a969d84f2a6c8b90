"""``OpenVinoServer``: every configuration of a dynamic model compiled by OpenVINO for the CPU.

It reads the deployment bundle's own ONNX graphs (``export/k{k}.onnx``, their weights external
data in ``weights.bin``), so OpenVINO runs the very graphs onnxruntime does, and compiles one
model per configuration; ``set_active_groups`` picks one.

>>> import numpy as np
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> server = OpenVinoServer(model, threads=1)
>>> server.set_active_groups(1)
>>> server(np.zeros((3, 1, 28, 28), np.float32)).shape
(3, 10)

Two settings decide whether it is the same network: the inference precision is fp32
(OpenVINO's CPU plugin would run bf16 where the CPU has it, 1e-2 off the eager logits where
fp32 is 1e-6 off) and one stream with the latency hint (a batch-1 service, as onnxruntime is
run). Weight sharing does not survive compilation: each compiled model holds its own
reordered weights (OpenVINO's CPU plugin repacks convolution weights per model), so G
configurations hold G copies; ``build_rss_bytes`` says what building them took.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from dyndnn.models.switching import Switchable
from dyndnn.serve.bundle import BundleError, read_manifest
from dyndnn.serve.optional_engines import require_engine


def _openvino() -> Any:
    return require_engine("openvino", "openvino")[0]


def compile_options(threads: int) -> dict[str, Any]:
    """The CPU plugin's settings: fp32, one stream, the latency hint, ``threads`` threads.

    >>> compile_options(2)["INFERENCE_PRECISION_HINT"]
    'f32'
    """
    return {"INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY",
            "NUM_STREAMS": 1, "INFERENCE_NUM_THREADS": int(threads)}


class OpenVinoServer(Switchable):
    """One compiled OpenVINO model per configuration 1..G."""

    def __init__(self, model: Any, threads: int | None = None) -> None:
        from dyndnn.serve.bundle import write_bundle

        with tempfile.TemporaryDirectory(prefix="dyndnn-openvino-") as folder:
            self._load(write_bundle(model, folder), threads)

    @classmethod
    def from_bundle(cls, folder: str | os.PathLike, threads: int | None = None
                    ) -> OpenVinoServer:
        """A server over a bundle written by ``serve.write_bundle`` (02_evaluate's export/)."""
        server = cls.__new__(cls)
        server._load(Path(folder), threads)
        return server

    def _load(self, folder: Path, threads: int | None) -> None:
        from dyndnn.serve.server import _rss_bytes

        ov = _openvino()
        manifest = read_manifest(folder)
        self.manifest, self.family = manifest, manifest["family"]
        self.groups: int = manifest["groups"]
        self.threads = threads or len(os.sched_getaffinity(0))
        core = ov.Core()
        rss_before = _rss_bytes()
        self._requests = []
        for configuration in manifest["configurations"]:
            graph = folder / configuration["file"]
            try:
                compiled = core.compile_model(core.read_model(str(graph)), "CPU",
                                              compile_options(self.threads))
            except RuntimeError as exc:  # OpenVINO's own error type for a graph it refuses
                raise BundleError(f"{graph} (configuration {configuration['k']}) is not a "
                                  f"graph OpenVINO can compile ({str(exc)[:300]}); write the "
                                  "bundle again") from exc
            self._requests.append(compiled.create_infer_request())
        rss_after = _rss_bytes()
        self.build_rss_bytes = (None if rss_before is None or rss_after is None
                                else rss_after - rss_before)
        self.set_active_groups(self.groups)

    def set_active_groups(self, k: int) -> None:
        """Serve configuration k from now on: picks its compiled model (nothing built)."""
        Switchable.set_active_groups(self, k)
        self._request = self._requests[k - 1]

    def __call__(self, images: Any) -> Any:
        """Logits of the active configuration: numpy in, numpy out; a torch tensor in, out."""
        if isinstance(images, np.ndarray):
            return self._infer(np.ascontiguousarray(images, np.float32))
        import torch

        array = images.detach().cpu().contiguous().numpy().astype(np.float32, copy=False)
        return torch.from_numpy(self._infer(array))

    def _infer(self, array: np.ndarray) -> np.ndarray:
        self._request.infer({0: array})
        return self._request.get_output_tensor(0).data.copy()

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of configuration k (default: the active one)."""
        return self.manifest["configurations"][(k or self._active) - 1]["macs"]

    def __repr__(self) -> str:
        return (f"OpenVinoServer({self.family}, G={self.groups}, active={self._active}, "
                f"{self.threads} threads)")
