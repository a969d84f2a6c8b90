"""The ExecuTorch deployment bundle: one ``.pte`` with a method per configuration, and a manifest.

    export/executorch/
      program.pte     methods forward_k1 ... forward_kG, lowered to XNNPACK; for the group model
                      each group's constants once (``layout="per-group"``)
      manifest.json   which method is which configuration: MACs, accuracy, the batch limit,
                      the program's size and SHA-256

A board with ExecuTorch's runtime reads ``program.pte`` as it is (its C++ runtime, or
``load_program`` in Python); the manifest says what each method serves.

Writing lowers every configuration (seconds each; ``tests/test_serve.py`` runs these)::

    folder = write_program(model, "export/executorch", accuracy={1: 0.85, 2: 0.87})
    read_program_manifest(folder)["configurations"][0]   # {"k": 1, "method": "forward_k1", ...}
    max(check_program(folder, model).values()) < 1e-4    # True
    server = load_program(folder, threads=2)             # the file alone, no model
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dyndnn.serve.engine_file import (
    EngineFile,
    engine_file_bytes,
    read_engine_manifest,
    write_engine_file,
)

FORMAT = "dyndnn-executorch/1"
BUNDLE_FOLDER = "executorch"  # inside a run's export/
PROGRAM_FILE = "program.pte"
MANIFEST_KEYS = ("family", "groups", "layout", "input", "max_batch")


def _engine_file() -> EngineFile:
    from dyndnn.serve.executorch_server import method_name

    return EngineFile(FORMAT, "program", PROGRAM_FILE, "method", method_name)


def write_program(model: Any, folder: str | os.PathLike,
                  accuracy: Mapping[int, float] | None = None,
                  layout: str = "per-group") -> Path:
    """Lower ``model``'s G configurations into ``folder/program.pte`` with its manifest.

    ``accuracy`` (configuration -> test accuracy, from ``eval.csv``) goes into the manifest.
    Returns the folder.
    """
    from dyndnn.serve.executorch_server import lower_program, program_max_batch

    program = lower_program(model, layout)
    spec = model.spec
    header = {
        "family": model.family, "groups": model.groups,
        "layout": layout if hasattr(model, "group_path") else "fused",
        "input": {"shape": ["batch", spec.in_channels, spec.image_size, spec.image_size],
                  "dtype": "float32"},
        "max_batch": program_max_batch(program, model.groups),
    }
    return write_engine_file(folder, _engine_file(), program, header,
                             [model.macs(k) for k in range(1, model.groups + 1)], accuracy)


def read_program_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest, checked: every key there, the program file in the folder and unchanged.

    Any failure is a ``BundleError`` naming the file and what is wrong with it.
    """
    return read_engine_manifest(folder, _engine_file(), "an ExecuTorch bundle",
                                "02_evaluate writes one into export/executorch/ when the run "
                                "profiles the executorch backend", MANIFEST_KEYS)


def load_program(folder: str | os.PathLike, threads: int | None = None) -> Any:
    """An ``ExecutorchServer`` over the bundle's program: no model needed, the file alone."""
    from dyndnn.serve.executorch_server import ExecutorchServer

    manifest = read_program_manifest(folder)
    return ExecutorchServer.from_bytes(engine_file_bytes(folder, manifest, _engine_file()),
                                       manifest["family"],
                                       [int(c["macs"]) for c in manifest["configurations"]],
                                       manifest["layout"], threads)


def check_program(folder: str | os.PathLike, model: Any, batch: int = 5) -> dict[int, float]:
    """Load the bundle's program; max |difference| to the library's outputs, per k."""
    from dyndnn.serve.engine_file import max_differences

    # the process's cores: ExecuTorch's pool is process-wide
    return max_differences(load_program(folder), model, batch)
