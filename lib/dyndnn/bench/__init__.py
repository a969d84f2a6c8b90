"""``make bench``: the performance targets, measured side by side in one run.

One module a section: ``eager`` (eager PyTorch latency, fixed cost, switch, weights,
GFLOP/s), ``serving`` (eager against onnxruntime), ``training`` (incremental training against
plain PyTorch), ``rct`` (RCT's packed training), ``scaling`` (1 vs 2 processes); ``common`` the
targets and timer they share; ``suite`` runs them all (``python -m dyndnn.bench``).
"""
