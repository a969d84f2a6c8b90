"""A deployment bundle as the profiler measures it on a board: numpy and an engine, no torch.

The profiler's worker builds what it measures from a picklable factory; for a trained model
that is a checkpoint (torch), for a board it is ``BundleSource``: the bundle folder that
02_evaluate wrote (``export/``), opened in the worker by the engine named (``onnxruntime``
``Server.from_bundle``, or ``openvino``) with the mapping's threads.

>>> import tempfile
>>> from dyndnn.models import GroupNet
>>> from dyndnn.serve import write_bundle
>>> folder = write_bundle(GroupNet(groups=2, width=0.25, in_channels=1, image_size=28),
...                       tempfile.mkdtemp())
>>> source = BundleSource(str(folder))
>>> source.family, source.groups, source.input_shape
('group', 2, (1, 28, 28))
>>> model = source()                        # what the worker holds
>>> model.set_active_groups(2)
>>> type(model.serve("onnxruntime", threads=1)).__name__
'Server'
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from dyndnn.board.errors import BoardError
from dyndnn.record.manifest import sha256_file
from dyndnn.serve.bundle import MANIFEST_FILE, WEIGHTS_FILE, read_manifest

# what profile-bundle writes beside its profile.csv: what it measured, where
RECORD_FILE = "board_profile.json"
RECORD_FORMAT = "dyndnn-board-profile/1"
# the engines that read a bundle's ONNX graphs themselves (eager PyTorch needs the checkpoint)
BUNDLE_BACKENDS = ("onnxruntime", "openvino")
# engines that read a program of their own in the bundle, measured only when named: ExecuTorch
# reads export/executorch/program.pte (its Python runtime needs torch: boards that have it);
# LiteRT reads export/litert/model.tflite (no torch: ai-edge-litert alone)
NAMED_BUNDLE_BACKENDS = ("executorch", "litert")


@dataclass(frozen=True)
class BundleSource:
    """A bundle folder; called (in the worker) it gives the ``BundleModel`` to measure."""

    folder: str

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """The bundle's manifest, checked (``serve.read_manifest``: a BundleError names what)."""
        return read_manifest(self.folder)

    @property
    def family(self) -> str:
        """The family whose configurations the bundle holds."""
        return self.manifest["family"]

    @property
    def groups(self) -> int:
        """G, the number of configurations."""
        return int(self.manifest["groups"])

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One input's shape (channels, height, width): the manifest's less its batch axis."""
        return tuple(int(n) for n in self.manifest["input"]["shape"][1:])

    def __call__(self) -> BundleModel:
        """What the worker holds (built there: nothing heavy crosses the process boundary)."""
        return BundleModel(self.folder, self.groups)


class BundleModel:
    """What the profiler's worker holds for a bundle: switching, and an engine per backend."""

    def __init__(self, folder: str, groups: int) -> None:
        self.folder, self.groups, self._active = folder, groups, groups

    def eval(self) -> BundleModel:
        """Itself: a bundle is always in inference mode (the profiler calls it on a model)."""
        return self

    def to(self, device: str) -> BundleModel:
        """Itself on the CPU; any other device is refused (its engines are CPU ones)."""
        if device != "cpu":
            raise BoardError(f"a bundle is measured on the CPU engines "
                             f"({', '.join(BUNDLE_BACKENDS)}); mapping device {device!r} "
                             "needs the checkpoint and torch (python -m dyndnn profile)")
        return self

    def set_active_groups(self, k: int) -> None:
        """Check k (the engine built by ``serve`` switches itself)."""
        if not 1 <= k <= self.groups:
            raise BoardError(f"configuration {k} is not in this bundle (1..{self.groups})")
        self._active = k

    def serve(self, backend: str, threads: int | None = None) -> Any:
        """The bundle opened by ``backend`` on ``threads`` threads (its configuration 1..G)."""
        if backend == "onnxruntime":
            from dyndnn.serve.server import Server

            return Server.from_bundle(self.folder, threads=threads)
        if backend == "openvino":
            from dyndnn.serve.openvino_server import OpenVinoServer

            return OpenVinoServer.from_bundle(self.folder, threads=threads)
        if backend == "executorch":
            from dyndnn.serve.executorch_bundle import BUNDLE_FOLDER, load_program

            return load_program(Path(self.folder) / BUNDLE_FOLDER, threads=threads)
        if backend == "litert":
            from dyndnn.serve.litert_bundle import BUNDLE_FOLDER as LITERT_FOLDER
            from dyndnn.serve.litert_bundle import load_litert

            return load_litert(Path(self.folder) / LITERT_FOLDER, threads=threads)
        raise BoardError(f"backend {backend!r} cannot read a bundle; a bundle is measured with "
                         f"{' or '.join(BUNDLE_BACKENDS + NAMED_BUNDLE_BACKENDS)} (eager "
                         "PyTorch needs the run's checkpoint: python -m dyndnn profile)")


def installed_bundle_backends() -> list[str]:
    """The bundle engines this machine can import (onnxruntime first).

    >>> "onnxruntime" in installed_bundle_backends()
    True
    """
    import importlib.util

    return [b for b in BUNDLE_BACKENDS if importlib.util.find_spec(b) is not None]


def bundle_identity(export: str | os.PathLike) -> dict[str, str]:
    """The SHA-256 of a bundle's manifest and weights: what says two bundles are the same."""
    folder = Path(export)
    return {"manifest_sha256": sha256_file(folder / MANIFEST_FILE),
            "weights_sha256": sha256_file(folder / WEIGHTS_FILE)}

