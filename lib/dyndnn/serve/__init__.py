"""The serving engine a board runs: every configuration in onnxruntime, from one set of weights.

- ``graphs``: BatchNorm-folded ONNX graphs of configurations 1..G over shared tensors (torch).
- ``bundle``: the deployment bundle on disk (graphs, one weights file, a manifest).
- ``server``: ``Server``, one session per configuration, switched in O(1) (numpy and
  onnxruntime only, so a board needs neither torch nor dyndnn's training code).
- ``openvino_server``: ``OpenVinoServer``, the same graphs compiled by OpenVINO (optional).
- ``executorch_server``, ``executorch_bundle``: one ExecuTorch program, a method per
  configuration, and its bundle (optional; lowering needs torch).
- ``litert_graphs``, ``litert_ops``, ``litert_server``, ``litert_bundle``: one LiteRT
  ``.tflite`` written from the same graphs, a signature per configuration, each weight once;
  its server and bundle (optional; no torch).
- ``engine_file``: an engine's own file in a bundle and its manifest (ExecuTorch, LiteRT).
- ``tensor_names``: the input and output names every engine uses.
- ``engines``: every engine by name (``eager``, ``onnxruntime``, ``openvino``, ``executorch``,
  ``litert``); ``optional_engines``: what the optional ones need, skipped when missing.
- ``timing``: steady latency and the honest cost of a switch, for any engine.

>>> import torch
>>> from dyndnn.models import GroupNet
>>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
>>> server = Server(model)                       # the graphs of k = 1 and 2, one weights buffer
>>> images = torch.randn(3, 1, 28, 28)
>>> server.set_active_groups(1); logits = server(images)
>>> with torch.inference_mode(), model.active_groups(1):   # the library's own answer
...     (logits - model(images)).abs().max().item() < 1e-4
True
"""

from dyndnn.serve.bundle import BundleError, read_manifest, write_bundle
from dyndnn.serve.server import Server, session_options

__all__ = ["BundleError", "Server", "read_manifest", "session_options", "write_bundle"]
