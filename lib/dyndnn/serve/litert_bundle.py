"""The LiteRT deployment bundle: one ``.tflite`` with a signature per configuration, a manifest.

    export/litert/
      model.tflite    signatures k1 ... kG (input ``images`` NCHW, any batch; output
                      ``logits``), every weight tensor once after the flatbuffer, each
                      configuration reading its prefix (``serve.litert_graphs``)
      manifest.json   which signature is which configuration: MACs, accuracy, the file's size,
                      SHA-256 and weight bytes

A board with LiteRT (``pip install ai-edge-litert``: no torch) reads ``model.tflite`` as it is,
in Python (``load_model``) or through LiteRT's C++ API.

>>> import tempfile
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> folder = write_litert(model, tempfile.mkdtemp(), accuracy={1: 0.85, 2: 0.87})
>>> sorted(path.name for path in folder.iterdir())
['manifest.json', 'model.tflite']
>>> manifest = read_litert_manifest(folder)
>>> [(c["k"], c["signature"], c["accuracy"]) for c in manifest["configurations"]]
[(1, 'k1', 0.85), (2, 'k2', 0.87)]
>>> max(check_litert(folder, model).values()) < 1e-4
True
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dyndnn.serve.engine_file import (
    EngineFile,
    engine_file_bytes,
    max_differences,
    read_engine_manifest,
    write_engine_file,
)
from dyndnn.serve.tensor_names import signature_key

FORMAT = "dyndnn-litert/1"
BUNDLE_FOLDER = "litert"  # inside a run's export/
MODEL_FILE = "model.tflite"
ENGINE_FILE = EngineFile(FORMAT, "model", MODEL_FILE, "signature", signature_key)
MANIFEST_KEYS = ("family", "groups", "input", "weight_bytes")


def write_litert(model: Any, folder: str | os.PathLike,
                 accuracy: Mapping[int, float] | None = None) -> Path:
    """``model``'s G configurations as ``folder/model.tflite`` with its manifest.

    ``model`` is a ``DynamicModel`` (any family). ``accuracy`` (configuration -> test accuracy,
    from ``eval.csv``) goes into the manifest. Returns the folder.
    """
    from dyndnn.serve.graphs import serving_plan
    from dyndnn.serve.litert_graphs import litert_model

    written = litert_model(serving_plan(model))
    spec = model.spec
    header = {"family": model.family, "groups": model.groups,
              "input": {"shape": ["batch", spec.in_channels, spec.image_size, spec.image_size],
                        "dtype": "float32"},
              "weight_bytes": written.weight_bytes}
    return write_engine_file(folder, ENGINE_FILE, written.content, header,
                             [model.macs(k) for k in range(1, model.groups + 1)], accuracy)


def read_litert_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest, checked: every key there, the model file in the folder and unchanged.

    Any failure is a ``BundleError`` naming the file and what is wrong with it.
    """
    return read_engine_manifest(folder, ENGINE_FILE, "a LiteRT bundle",
                                "02_evaluate writes one into export/litert/ when the run "
                                "profiles the litert backend", MANIFEST_KEYS)


def load_litert(folder: str | os.PathLike, threads: int | None = None) -> Any:
    """A ``LiteRtServer`` over the bundle's model: no model object, no torch, the file alone."""
    from dyndnn.serve.litert_server import LiteRtServer

    manifest = read_litert_manifest(folder)
    return LiteRtServer.from_bytes(engine_file_bytes(folder, manifest, ENGINE_FILE),
                                   manifest["family"],
                                   [int(c["macs"]) for c in manifest["configurations"]],
                                   threads, int(manifest["weight_bytes"]))


def check_litert(folder: str | os.PathLike, model: Any, batch: int = 5) -> dict[int, float]:
    """Load the bundle's model; max |difference| to the library's outputs, per k."""
    return max_differences(load_litert(folder, threads=1), model, batch)
