"""An engine's own file in a bundle (ExecuTorch's ``.pte``, LiteRT's ``.tflite``) and its manifest.

Both bundles are one file holding every configuration and a ``manifest.json`` that says which
entry point (method, signature) is which configuration, with its MACs and accuracy, and the
file's size and SHA-256. ``write_engine_file`` writes the pair; ``read_engine_manifest`` checks
it (every key there, the file a plain name of the folder and unchanged) and names the file and
what is wrong otherwise.

>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> entry = EngineFile("dyndnn-example/1", "program", "a.bin", "entry", lambda k: f"run_{k}")
>>> _ = write_engine_file(folder, entry, b"bytes", {"family": "group", "groups": 2},
...                       [100, 400], accuracy={2: 0.9})
>>> manifest = read_engine_manifest(folder, entry, "an example bundle", "a test writes it")
>>> [(c["entry"], c["macs"], c["accuracy"]) for c in manifest["configurations"]]
[('run_1', 100, None), ('run_2', 400, 0.9)]
>>> (folder / "a.bin").write_bytes(b"other")
5
>>> read_engine_manifest(folder, entry, "an example bundle", "a test writes it")
Traceback (most recent call last):
...
dyndnn.serve.bundle.BundleError: .../a.bin is not the program .../manifest.json describes ...
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dyndnn.record.atomic import write_bytes, write_text
from dyndnn.serve.bundle import MANIFEST_FILE, BundleError, bundle_file, manifest_of


@dataclass(frozen=True)
class EngineFile:
    """What one engine's bundle is called: its format, file, and entry point per k."""

    format: str
    what: str  # the manifest's key for the file, and how errors name it: "program", "model"
    file: str
    entry_key: str  # each configuration's key for its entry point: "method", "signature"
    entry_name: Callable[[int], str]


def write_engine_file(folder: str | os.PathLike, engine: EngineFile, content: bytes,
                      header: Mapping[str, Any], macs: list[int],
                      accuracy: Mapping[int, float] | None = None) -> Path:
    """``content`` as ``folder/engine.file`` and its manifest; returns the folder.

    ``header``: the manifest's engine-specific keys (family, groups, layout, input, ...);
    ``macs``: each configuration's, configuration 1 first; ``accuracy``: configuration -> test
    accuracy (``eval.csv``).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    write_bytes(out / engine.file, content)
    manifest = {
        "format": engine.format, **header,
        engine.what: {"file": engine.file, "bytes": len(content),
                      "sha256": hashlib.sha256(content).hexdigest()},
        "configurations": [{
            "k": k, engine.entry_key: engine.entry_name(k), "macs": int(m),
            "accuracy": None if accuracy is None or k not in accuracy else float(accuracy[k]),
        } for k, m in enumerate(macs, start=1)],
    }
    write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return out


def read_engine_manifest(folder: str | os.PathLike, engine: EngineFile, kind: str,
                         where_from: str, keys: tuple[str, ...] = ("family", "groups")
                         ) -> dict[str, Any]:
    """The manifest, checked: ``keys`` there, the file in the folder and unchanged.

    Any failure is a ``BundleError`` naming the file and what is wrong with it.
    """
    out = Path(folder)
    path, manifest = manifest_of(out, kind, engine.format, where_from)
    missing = [key for key in (*keys, engine.what, "configurations") if key not in manifest]
    if missing:
        raise BundleError(f"{path} lacks the keys {missing}; write the bundle again")
    try:
        name, digest = manifest[engine.what]["file"], manifest[engine.what]["sha256"]
        ks = [int(c["k"]) for c in manifest["configurations"] if int(c["macs"]) > 0]
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"{path} is malformed ({type(exc).__name__}: {exc}); write the "
                          "bundle again") from exc
    if ks != list(range(1, int(manifest["groups"]) + 1)):
        raise BundleError(f"{path} lists configurations {ks}, not 1..{manifest['groups']} "
                          "each with its MACs; write the bundle again")
    file = bundle_file(out, name, engine.what)
    if not file.is_file():
        raise BundleError(f"{file} is missing; copy the whole bundle folder")
    if hashlib.sha256(file.read_bytes()).hexdigest() != digest:
        raise BundleError(f"{file} is not the {engine.what} {path} describes (its SHA-256 "
                          "differs): write the bundle again")
    return manifest


def engine_file_bytes(folder: str | os.PathLike, manifest: Mapping[str, Any],
                      engine: EngineFile) -> bytes:
    """The bytes of the (checked) manifest's file."""
    return (Path(folder) / manifest[engine.what]["file"]).read_bytes()


def max_differences(server: Any, model: Any, batch: int = 5) -> dict[int, float]:
    """Max |server - library| over a seeded batch, per configuration k."""
    import torch

    from dyndnn.serve.export import example_input

    x = example_input(model, batch, seed=1)
    model.eval()
    diffs = {}
    with torch.inference_mode():
        for k in range(1, model.groups + 1):
            with model.active_groups(k), server.active_groups(k):
                diffs[k] = (server(x) - model(x)).abs().max().item()
    return diffs
