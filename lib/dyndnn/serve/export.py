"""Export one configuration as a standalone static module for a board: TorchScript and ONNX.

>>> import pathlib, tempfile
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> run_dir = pathlib.Path(tempfile.mkdtemp())
>>> done = export_deployment(model, run_dir / "export")   # bundle + TorchScript, checked
>>> sorted(path.name for path in (run_dir / "export").iterdir())
['group-k2.pt', 'k1.onnx', 'k2.onnx', 'manifest.json', 'weights.bin']
>>> max(done["max_diff_onnxruntime"].values()) < 1e-4, done["max_diff_torchscript"] < 1e-4
(True, True)

One configuration through torch's ONNX exporter (dynamo: some ten seconds per export)::

    paths = export_configuration(model, k=2, out_dir=run_dir / "export")
    check_onnx(paths["onnx"], model, k=2)      # max |difference| to the library's outputs

The exported files need nothing of dyndnn: TorchScript loads with ``torch.jit.load`` and ONNX
with onnxruntime (both take any batch size). Every configuration at once, over one weights
file, is the deployment bundle of ``dyndnn.serve`` (``check_bundle`` compares it with the
library).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from dyndnn.models import DynamicModel, GroupNet
from dyndnn.record.atomic import write_bytes


def example_input(model: DynamicModel, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A seeded random batch of the model's input shape."""
    spec = model.spec
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size,
                       generator=generator)


def _torchscript(model: DynamicModel, k: int, path: Path) -> Path:
    """Save configuration k as TorchScript at ``path``.

    The group model's static module is written to be scripted; a baseline's is traced (Tann's
    export keeps a Python loop over its blocks): a configuration's graph is fixed, so tracing
    loses nothing.
    """
    static = model.export(k).eval()
    if isinstance(model, GroupNet):
        scripted = torch.jit.script(static)
    else:
        scripted = torch.jit.trace(static, example_input(model))
    buffer = io.BytesIO()  # serialised in memory: torch's file writer aborts on a full disk
    torch.jit.save(scripted, buffer)
    return write_bytes(path, buffer.getvalue())


def export_configuration(model: DynamicModel, k: int, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<family>-k{k}.pt`` (TorchScript) and ``.onnx`` (torch's exporter); their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / f"{model.family}-k{k}"
    _torchscript(model, k, Path(f"{stem}.pt"))
    program = torch.onnx.export(
        model.export(k).eval(), (example_input(model),), dynamo=True, verbose=False,
        input_names=["images"], output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},))
    write_bytes(f"{stem}.onnx", program.model_proto.SerializeToString())
    return {"torchscript": Path(f"{stem}.pt"), "onnx": Path(f"{stem}.onnx")}


def export_deployment(model: DynamicModel, out_dir: str | Path, k: int | None = None,
                      accuracy: dict[int, float] | None = None) -> dict[str, Any]:
    """What a board needs, checked against the library.

    The deployment bundle in ``out_dir`` (every configuration as an ONNX graph over one shared
    ``weights.bin``, and ``manifest.json``; ``dyndnn.serve``), and configuration ``k``
    (default: all groups) as TorchScript for boards that run libtorch. Returns the paths and
    the max |difference| to the library's outputs of each.
    """
    from dyndnn.serve import write_bundle

    k = k or model.groups
    bundle = write_bundle(model, out_dir, accuracy)
    script = _torchscript(model, k, Path(out_dir) / f"{model.family}-k{k}.pt")
    return {"bundle": bundle, "torchscript": script,
            "max_diff_onnxruntime": check_bundle(bundle, model),
            "max_diff_torchscript": check_torchscript(script, model, k)}


@torch.inference_mode()
def check_onnx(path: str | Path, model: DynamicModel, k: int, batch: int = 5) -> float:
    """Run the ONNX file in onnxruntime; max |difference| to the library's outputs."""
    import onnxruntime as ort  # imported here: only this check needs it

    from dyndnn.serve.server import session_options

    x = example_input(model, batch, seed=1)
    session = ort.InferenceSession(str(path), session_options(),
                                   providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    model.eval()
    with model.active_groups(k):
        return (got - model(x)).abs().max().item()


@torch.inference_mode()
def check_torchscript(path: str | Path, model: DynamicModel, k: int, batch: int = 5) -> float:
    """Load the TorchScript file; max |difference| to the library's outputs."""
    x = example_input(model, batch, seed=1)
    model.eval()
    with model.active_groups(k):
        return (torch.jit.load(str(path))(x) - model(x)).abs().max().item()


@torch.inference_mode()
def check_bundle(folder: str | Path, model: DynamicModel, batch: int = 5) -> dict[int, float]:
    """Load a deployment bundle in a ``Server``; max |difference| to the library, per k."""
    from dyndnn.serve import Server

    server = Server.from_bundle(folder)
    x = example_input(model, batch, seed=1)
    model.eval()
    diffs = {}
    for k in range(1, model.groups + 1):
        with model.active_groups(k), server.active_groups(k):
            diffs[k] = (server(x) - model(x)).abs().max().item()
    return diffs
