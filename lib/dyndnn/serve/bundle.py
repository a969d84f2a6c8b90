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

FORMAT = "dyndnn-bundle/1"
WEIGHTS_FILE = "weights.bin"
MANIFEST_FILE = "manifest.json"
# a page: onnxruntime maps an external tensor straight from the file when its offset is aligned
ALIGNMENT_BYTES = 4096


class BundleError(ValueError):
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
    tmp = out / f".{WEIGHTS_FILE}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        for name, array in plan.tensors.items():
            f.write(b"\0" * (-f.tell() % alignment_bytes))
            offsets[name] = f.tell()
            f.write(array.tobytes())
    os.replace(tmp, out / WEIGHTS_FILE)
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
        onnx.save(cg.graph, out / f"k{cg.k}.onnx")
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
    (out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
    return out


def _numel(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def read_manifest(folder: str | os.PathLike) -> dict[str, Any]:
    """The bundle's manifest, checked: every graph and the weights file are there."""
    out = Path(folder)
    path = out / MANIFEST_FILE
    if not path.is_file():
        raise BundleError(f"{out} is not a deployment bundle: {MANIFEST_FILE} is missing "
                          "(02_evaluate writes one into the run folder's export/)")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise BundleError(f"{path} is not valid JSON ({exc}); write the bundle again") from exc
    if manifest.get("format") != FORMAT:
        raise BundleError(f"{path} has format {manifest.get('format')!r}, not {FORMAT!r}")
    weights = out / manifest["weights"]["file"]
    needed = max((u["offset"] + u["length"] for c in manifest["configurations"]
                  for u in c["initializers"].values()), default=0)
    if not weights.is_file() or weights.stat().st_size < needed:
        raise BundleError(f"{weights} is missing or shorter than the {needed} bytes the graphs "
                          "read; copy the whole bundle folder")
    for c in manifest["configurations"]:
        if not (out / c["file"]).is_file():
            raise BundleError(f"{out / c['file']} (configuration {c['k']}) is missing")
    return manifest
