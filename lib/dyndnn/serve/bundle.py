"""A deployment bundle: G configuration graphs sharing one weights file, and a manifest.

    export/
      manifest.json   configurations, MACs, accuracy, input shape, where each tensor lies
      weights.bin     every folded tensor once, each at a page-aligned offset
      k1.onnx ...     configuration k's graph; its initializers are external data in
                      weights.bin (for the group model: the same offsets, shorter lengths)

Each ``k{k}.onnx`` loads in plain onnxruntime (``onnxruntime.InferenceSession("export/k2.onnx")``);
``dyndnn.serve.Server.from_bundle`` loads all of them over one in-memory copy of
``weights.bin``. Writing needs torch (the plan comes from the model); reading needs only numpy
and onnxruntime.

>>> import tempfile
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28)
>>> path = write_bundle(model, tempfile.mkdtemp(), accuracy={1: 0.85, 2: 0.87})
>>> sorted(file.name for file in path.iterdir())
['k1.onnx', 'k2.onnx', 'manifest.json', 'weights.bin']
>>> [(c["k"], c["macs"] == model.macs(c["k"]), c["accuracy"])
...  for c in read_manifest(path)["configurations"]]
[(1, True, 0.85), (2, True, 0.87)]
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dyndnn.errors import DyndnnError
from dyndnn.record.atomic import atomic_write, write_text

FORMAT = "dyndnn-bundle/1"
WEIGHTS_FILE = "weights.bin"
MANIFEST_FILE = "manifest.json"
# a page: onnxruntime maps an external tensor straight from the file when its offset is aligned
ALIGNMENT_BYTES = 4096


class BundleError(DyndnnError, ValueError):
    """A bundle folder is missing, incomplete or not a dyndnn bundle; says which file."""


def write_bundle(model: Any, folder: str | os.PathLike,
                 accuracy: Mapping[int, float] | None = None,
                 alignment_bytes: int = ALIGNMENT_BYTES) -> Path:
    """Write ``model``'s G configurations as a bundle into ``folder``; returns the folder.

    ``model`` is a ``DynamicModel`` (any family) or a ``serve.graphs.ServingPlan``.
    ``accuracy`` (configuration -> test accuracy, from ``eval.csv``) goes into the manifest.
    """
    import onnx

    from dyndnn.serve.graphs import ServingPlan, serving_plan

    plan = model if isinstance(model, ServingPlan) else serving_plan(model)
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    offsets: dict[str, int] = {}
    with atomic_write(out / WEIGHTS_FILE, "wb") as f:  # a full disk: DiskFullError, no leftovers
        for name, array in plan.tensors.items():
            f.write(b"\0" * (-f.tell() % alignment_bytes))
            offsets[name] = f.tell()
            f.write(array.tobytes())
    configurations = []
    for cg in plan.graphs:
        uses = {}
        for init in cg.graph.graph.initializer:
            if init.data_location != onnx.TensorProto.EXTERNAL:
                continue
            tensor, shape = cg.uses[init.name]
            length = 4 * _numel(shape)  # float32: a prefix of the tensor's bytes
            del init.external_data[:]
            for key, value in (("location", WEIGHTS_FILE), ("offset", str(offsets[tensor])),
                               ("length", str(length))):
                entry = init.external_data.add()
                entry.key, entry.value = key, value
            uses[init.name] = {"tensor": tensor, "offset": offsets[tensor], "length": length,
                               "shape": list(shape)}
        with atomic_write(out / f"k{cg.k}.onnx", "wb") as f:
            f.write(cg.graph.SerializeToString())  # its tensors already point at weights.bin
        configurations.append({
            "k": cg.k, "file": f"k{cg.k}.onnx", "macs": cg.macs,
            "accuracy": None if accuracy is None or cg.k not in accuracy
            else float(accuracy[cg.k]),
            "weight_bytes": sum(u["length"] for u in uses.values()), "initializers": uses})
    manifest = {
        "format": FORMAT, "family": plan.family, "groups": len(plan.graphs),
        "input": {"name": "images", "shape": ["batch", *plan.input_shape], "dtype": "float32"},
        "output": {"name": "logits", "shape": ["batch", plan.num_classes]},
        "weights": {"file": WEIGHTS_FILE, "alignment_bytes": alignment_bytes,
                    "tensor_bytes": sum(a.nbytes for a in plan.tensors.values()),
                    "tensors": {n: {"offset": offsets[n], "shape": list(a.shape)}
                                for n, a in plan.tensors.items()}},
        "configurations": configurations,
    }
    write_text(out / MANIFEST_FILE, json.dumps(manifest, indent=2) + "\n")
    return out


def unloadable(graph: Path, k: int, exc: Exception) -> BundleError:
    """What to say of configuration k's graph file that onnxruntime refused to load."""
    return BundleError(f"{graph} (configuration {k}) is not a graph onnxruntime can load "
                       f"({type(exc).__name__}: {str(exc)[:300]}); write the bundle again")


def _numel(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The bundle's manifest, checked before anything is read through it.

    Every file it names is a file of the bundle folder (no path out of it), every tensor's
    offset and length lie inside ``weights.bin`` and fit its shape, every key a reader uses is
    there. Any failure is a ``BundleError`` naming the file and what is wrong with it.
    """
    out = Path(folder)
    path, manifest = manifest_of(out, "a deployment bundle", FORMAT,
                                 "02_evaluate writes one into the run folder's export/")
    try:
        _check_manifest(out, manifest)
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, BundleError):
            raise
        what = f"lacks the key {exc}" if isinstance(exc, KeyError) else f"is malformed ({exc})"
        raise BundleError(f"{path} {what}; write the bundle again (02_evaluate, or "
                          "dyndnn.serve.write_bundle)") from exc
    return manifest


def manifest_of(out: Path, kind: str, expected_format: str, where_from: str
                ) -> tuple[Path, dict[str, Any]]:
    """``out/manifest.json`` and its content, a JSON object of ``expected_format``.

    Anything else is a ``BundleError`` naming the file: missing (``where_from`` says what
    writes one), not JSON, or another format.
    """
    path = out / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{out} is not {kind}: {MANIFEST_FILE} is missing ({where_from})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); write the bundle again") from exc
    if not isinstance(manifest, dict) or manifest.get("format") != expected_format:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise BundleError(f"{path} has format {found!r}, not {expected_format!r}")
    return path, manifest


def bundle_file(out: Path, name: Any, what: str) -> Path:
    """``out / name``, refused unless ``name`` is a plain file name of the bundle folder.

    >>> bundle_file(Path("export"), "k1.onnx", "graph")
    PosixPath('export/k1.onnx')
    >>> bundle_file(Path("export"), "../other/k4.onnx", "graph")
    Traceback (most recent call last):
    ...
    dyndnn.serve.bundle.BundleError: export/manifest.json names the graph '../other/k4.onnx', ...
    """
    if not isinstance(name, str) or not name or Path(name).name != name or name in (".", ".."):
        raise BundleError(f"{out / MANIFEST_FILE} names the {what} {name!r}, which is not a file "
                          "of the bundle folder: a bundle reads only its own files")
    return out / name


def _check_manifest(out: Path, manifest: dict[str, Any]) -> None:
    manifest_path = out / MANIFEST_FILE
    weights = bundle_file(out, manifest["weights"]["file"], "weights file")
    if not weights.is_file():
        raise BundleError(f"{weights} is missing; copy the whole bundle folder")
    size = weights.stat().st_size
    groups = int(manifest["groups"])
    configurations = manifest["configurations"]
    if [int(c["k"]) for c in configurations] != list(range(1, groups + 1)):
        raise BundleError(f"{manifest_path} lists configurations "
                          f"{[c.get('k') for c in configurations]}, not 1..{groups}")
    for c in configurations:
        graph = bundle_file(out, c["file"], f"graph of configuration {c['k']}")
        if not graph.is_file():
            raise BundleError(f"{graph} (configuration {c['k']}) is missing")
        for name, use in c["initializers"].items():
            offset, length, shape = use["offset"], use["length"], use["shape"]
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in
                       (offset, length, *shape)) or offset < 0 or min(shape, default=1) < 1:
                raise BundleError(f"{manifest_path}: tensor {name!r} of configuration "
                                  f"{c['k']} has offset {offset!r}, shape {shape!r}: not "
                                  "whole numbers >= 0 (a shape's >= 1)")
            if length != 4 * _numel(shape):
                raise BundleError(f"{manifest_path}: tensor {name!r} of configuration "
                                  f"{c['k']} has length {length} bytes, not the "
                                  f"{4 * _numel(shape)} its float32 shape {shape} holds")
            if offset + length > size:
                raise BundleError(f"{weights} ({size:,} bytes) is shorter than the "
                                  f"{offset + length:,} bytes tensor {name!r} of configuration "
                                  f"{c['k']} reads up to; copy the whole bundle folder")
