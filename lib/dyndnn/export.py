"""Export one configuration as a standalone static module for a board: TorchScript and ONNX.

>>> paths = export_configuration(model, k=2, out_dir=run_dir / "export")
>>> check_onnx(paths["onnx"], model, k=2)      # max |difference| to the library's outputs

The exported files need nothing of dyndnn: TorchScript loads with ``torch.jit.load`` and ONNX
with onnxruntime (both take any batch size).
"""

from __future__ import annotations

from pathlib import Path

import torch

from dyndnn.models import DynamicModel, GroupAlexNet


def example_input(model: DynamicModel, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """A seeded random batch of the model's input shape."""
    spec = model.spec
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size,
                       generator=generator)


def export_configuration(model: DynamicModel, k: int, out_dir: str | Path) -> dict[str, Path]:
    """Write ``<family>-k{k}.pt`` (TorchScript) and ``.onnx``; returns their paths.

    The group model's static module is scripted; a baseline's is traced (Tann's export keeps a
    Python loop over its blocks): a configuration's graph is fixed, so tracing loses nothing.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    static = model.export(k).eval()
    stem = out_dir / f"{model.family}-k{k}"
    if isinstance(model, GroupAlexNet):  # its static module is written to be scripted
        scripted = torch.jit.script(static)
    else:
        scripted = torch.jit.trace(static, example_input(model))
    torch.jit.save(scripted, f"{stem}.pt")
    program = torch.onnx.export(
        static, (example_input(model),), dynamo=True, verbose=False,
        input_names=["images"], output_names=["logits"],
        dynamic_shapes=({0: torch.export.Dim("batch")},))
    program.save(f"{stem}.onnx")
    return {"torchscript": Path(f"{stem}.pt"), "onnx": Path(f"{stem}.onnx")}


@torch.inference_mode()
def check_onnx(path: str | Path, model: DynamicModel, k: int, batch: int = 5) -> float:
    """Run the ONNX file in onnxruntime; max |difference| to the library's outputs."""
    import onnxruntime as ort  # imported here: only this check needs it

    x = example_input(model, batch, seed=1)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
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
