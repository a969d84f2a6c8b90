"""``LiteRtServer``: every configuration of a dynamic model in one LiteRT model (XNNPACK).

Google's on-device runtime (formerly TensorFlow Lite). The model is written by
``serve.litert_graphs`` from the serving plan (one subgraph and signature per configuration,
each weight a prefix of one stored tensor) and run by ``ai_edge_litert``'s interpreter, whose
default XNNPACK delegate takes every subgraph; ``set_active_groups`` picks a signature.

>>> import numpy as np
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> server = LiteRtServer(model, threads=1)
>>> server.signature_keys
['k1', 'k2']
>>> server.set_active_groups(1)
>>> server(np.zeros((3, 1, 28, 28), np.float32)).shape
(3, 10)

``model_bytes`` is the file (each plan tensor once, ``weight_bytes`` of it weights);
``build_rss_bytes`` what loading it and preparing every signature at batch 1 took: XNNPACK
packs each subgraph's weights for its kernels, so resident memory is per configuration, as
measured in ``docs/engines.md``. Threads: the interpreter's, given at load (``threads``).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from dyndnn.models.switching import Switchable
from dyndnn.serve.bundle import BundleError
from dyndnn.serve.optional_engines import require_engine
from dyndnn.serve.tensor_names import INPUT, OUTPUT, signature_key


def _interpreter() -> Any:
    return require_engine("litert", "ai_edge_litert.interpreter")[0].Interpreter


class LiteRtServer(Switchable):
    """One LiteRT interpreter, one signature per configuration 1..G."""

    def __init__(self, model: Any, threads: int | None = None) -> None:
        from dyndnn.serve.graphs import serving_plan
        from dyndnn.serve.litert_graphs import litert_model

        written = litert_model(serving_plan(model))
        self.weight_bytes = written.weight_bytes
        self._load(written.content, model.family, [model.macs(k) for k in
                                                    range(1, model.groups + 1)], threads)

    @classmethod
    def from_bytes(cls, content: bytes, family: str, macs: list[int],
                   threads: int | None = None, weight_bytes: int | None = None
                   ) -> LiteRtServer:
        """A server over a written ``.tflite`` (``litert_bundle.load_litert`` reads a bundle's).

        ``macs``: each configuration's multiply-accumulates, configuration 1 first;
        ``weight_bytes``: how many of the file's bytes are weights, where known (the manifest).
        """
        server = cls.__new__(cls)
        server.weight_bytes = weight_bytes
        server._load(content, family, macs, threads)
        return server

    def _load(self, content: bytes, family: str, macs: list[int], threads: int | None) -> None:
        from dyndnn.serve.server import _rss_bytes

        interpreter_class = _interpreter()
        self.family, self.groups, self._macs = family, len(macs), list(macs)
        self.threads = threads or len(os.sched_getaffinity(0))
        self.model_bytes = self.file_bytes = len(content)  # file_bytes: any engine's name
        rss_before = _rss_bytes()
        try:
            interpreter = interpreter_class(model_content=content, num_threads=self.threads)
        except (ValueError, RuntimeError) as exc:  # the interpreter's own refusal
            raise BundleError(f"not a LiteRT model this runtime loads ({str(exc)[:300]}); "
                              "write it again") from exc
        self.signature_keys = [signature_key(k) for k in range(1, self.groups + 1)]
        found = sorted(interpreter.get_signature_list())
        if found != sorted(self.signature_keys):
            raise BundleError(f"the model's signatures {found} are not "
                              f"{', '.join(self.signature_keys)}: write it again")
        self._runners = [interpreter.get_signature_runner(key) for key in self.signature_keys]
        warm = np.zeros((1, *self._input_shape(interpreter)), np.float32)
        for runner in self._runners:  # each subgraph prepared (XNNPACK packs its weights)
            runner(**{INPUT: warm})
        rss_after = _rss_bytes()
        self._interpreter = interpreter  # the runners read its subgraphs
        self.build_rss_bytes = (None if rss_before is None or rss_after is None
                                else rss_after - rss_before)
        self.set_active_groups(self.groups)

    @staticmethod
    def _input_shape(interpreter: Any) -> tuple[int, ...]:
        details = interpreter.get_signature_runner(signature_key(1)).get_input_details()
        return tuple(int(d) for d in details[INPUT]["shape"][1:])

    def set_active_groups(self, k: int) -> None:
        """Serve configuration k from now on: picks its signature (nothing built)."""
        Switchable.set_active_groups(self, k)
        self._runner = self._runners[k - 1]

    def __call__(self, images: Any) -> Any:
        """Logits of the active configuration: numpy in, numpy out; a torch tensor in, out."""
        if isinstance(images, np.ndarray):
            return self._runner(**{INPUT: np.ascontiguousarray(images, np.float32)})[OUTPUT]
        import torch  # only for a torch tensor, which means torch is there

        array = images.detach().cpu().contiguous().numpy().astype(np.float32, copy=False)
        return torch.from_numpy(self._runner(**{INPUT: array})[OUTPUT].copy())

    def macs(self, k: int | None = None) -> int:
        """Multiply-accumulates per image of configuration k (default: the active one)."""
        return self._macs[(k or self._active) - 1]

    def __repr__(self) -> str:
        return (f"LiteRtServer({self.family}, G={self.groups}, active={self._active}, "
                f"{self.threads} threads, {self.model_bytes:,} model bytes)")
