"""The serving engine a board runs: every configuration in onnxruntime, from one set of weights.

- ``graphs``: BatchNorm-folded ONNX graphs of configurations 1..G over shared tensors (torch).
- ``bundle``: the deployment bundle on disk (graphs, one weights file, a manifest).
- ``server``: ``Server``, one session per configuration, switched in O(1) (numpy and
  onnxruntime only, so a board needs neither torch nor dyndnn's training code).
- ``timing``: steady latency and the honest cost of a switch, for any engine.

>>> server = Server(model)                 # doctest: +SKIP
>>> server.set_active_groups(1); server(images)  # doctest: +SKIP
"""

from dyndnn.serve.bundle import BundleError, read_manifest, write_bundle
from dyndnn.serve.server import Server, session_options

__all__ = ["BundleError", "Server", "read_manifest", "session_options", "write_bundle"]
