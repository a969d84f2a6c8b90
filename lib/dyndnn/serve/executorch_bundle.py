"""The ExecuTorch deployment bundle: one ``.pte`` with a method per configuration, and a manifest.

    export/executorch/
      program.pte     methods forward_k1 ... forward_kG, lowered to XNNPACK; for the group model
                      each group's constants once (``layout="per-group"``)
      manifest.json   which method is which configuration: MACs, accuracy, the batch limit,
                      the program's size and SHA-256

A board with ExecuTorch's runtime reads ``program.pte`` as it is (its C++ runtime, or
``load_program`` in Python); the manifest says what each method serves.

>>> import tempfile
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> folder = write_program(model, tempfile.mkdtemp(), accuracy={1: 0.85, 2: 0.87})
>>> sorted(path.name for path in folder.iterdir())
['manifest.json', 'program.pte']
>>> [(c["k"], c["method"], c["accuracy"]) for c in read_program_manifest(folder)["configurations"]]
[(1, 'forward_k1', 0.85), (2, 'forward_k2', 0.87)]
>>> max(check_program(folder, model).values()) < 1e-4
True
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dyndnn.record.atomic import write_bytes, write_text
from dyndnn.serve.bundle import MANIFEST_FILE, BundleError, bundle_file, manifest_of

FORMAT = "dyndnn-executorch/1"
BUNDLE_FOLDER = "executorch"  # inside a run's export/
PROGRAM_FILE = "program.pte"
MANIFEST_KEYS = ("format", "family", "groups", "layout", "input", "program", "max_batch",
                 "configurations")


def write_program(model: Any, folder: str | os.PathLike,
                  accuracy: Mapping[int, float] | None = None,
                  layout: str = "per-group") -> Path:
    """Lower ``model``'s G configurations into ``folder/program.pte`` with its manifest.

    ``accuracy`` (configuration -> test accuracy, from ``eval.csv``) goes into the manifest.
    Returns the folder.
    """
    from dyndnn.serve.executorch_server import lower_program, method_name, program_max_batch

    program = lower_program(model, layout)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / PROGRAM_FILE, program)
    spec = model.spec
    manifest = {
        "format": FORMAT, "family": model.family, "groups": model.groups,
        "layout": layout if hasattr(model, "group_path") else "fused",
        "input": {"shape": ["batch", spec.in_channels, spec.image_size, spec.image_size],
                  "dtype": "float32"},
        "program": {"file": PROGRAM_FILE, "bytes": len(program),
                    "sha256": hashlib.sha256(program).hexdigest()},
        "max_batch": program_max_batch(program, model.groups),
        "configurations": [{
            "k": k, "method": method_name(k), "macs": int(model.macs(k)),
            "accuracy": None if accuracy is None or k not in accuracy else float(accuracy[k]),
        } for k in range(1, model.groups + 1)],
    }
    write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return out


def read_program_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The manifest, checked: every key there, the program file in the folder and unchanged.

    Any failure is a ``BundleError`` naming the file and what is wrong with it.
    """
    out = Path(folder)
    path, manifest = manifest_of(out, "an ExecuTorch bundle", FORMAT,
                                 "02_evaluate writes one into export/executorch/ when the run "
                                 "profiles the executorch backend")
    missing = [key for key in MANIFEST_KEYS if key not in manifest]
    if missing:
        raise BundleError(f"{path} lacks the keys {missing}; write the bundle again")
    try:
        name, digest = manifest["program"]["file"], manifest["program"]["sha256"]
        ks = [int(c["k"]) for c in manifest["configurations"] if int(c["macs"]) > 0]
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path} is malformed ({type(exc).__name__}: {exc}); write the "
                          "bundle again") from exc
    if ks != list(range(1, int(manifest["groups"]) + 1)):
        raise BundleError(f"{path} lists configurations {ks}, not 1..{manifest['groups']} "
                          "each with its MACs; write the bundle again")
    program = bundle_file(out, name, "program")
    if not program.is_file():
        raise BundleError(f"{program} is missing; copy the whole bundle folder")
    if hashlib.sha256(program.read_bytes()).hexdigest() != digest:
        raise BundleError(f"{program} is not the program {path} describes (its SHA-256 "
                          "differs): write the bundle again")
    return manifest


def load_program(folder: str | os.PathLike, threads: int | None = None) -> Any:
    """An ``ExecutorchServer`` over the bundle's program: no model needed, the file alone."""
    from dyndnn.serve.executorch_server import ExecutorchServer

    manifest = read_program_manifest(folder)
    program = (Path(folder) / manifest["program"]["file"]).read_bytes()
    return ExecutorchServer.from_bytes(program, manifest["family"],
                                       [int(c["macs"]) for c in manifest["configurations"]],
                                       manifest["layout"], threads)


def check_program(folder: str | os.PathLike, model: Any, batch: int = 5) -> dict[int, float]:
    """Load the bundle's program; max |difference| to the library's outputs, per k."""
    import torch

    from dyndnn.serve.export import example_input

    server = load_program(folder)  # the process's cores: ExecuTorch's pool is process-wide
    x = example_input(model, batch, seed=1)
    model.eval()
    diffs = {}
    with torch.inference_mode():
        for k in range(1, model.groups + 1):
            with model.active_groups(k), server.active_groups(k):
                diffs[k] = (server(x) - model(x)).abs().max().item()
    return diffs
