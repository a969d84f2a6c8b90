"""``make bench``: the performance targets, measured side by side in one run.

One module a section: ``eager`` (eager PyTorch latency, fixed cost, switch, weights,
GFLOP/s), ``serving`` (eager against onnxruntime), ``training`` (incremental training against
plain PyTorch, every family), ``rct`` (fp32, QAT and RCT's training), ``scaling`` (1 vs 2
processes), ``pipeline`` (``make run``'s stages, from its last run); ``common`` the
targets and timer they share; ``suite`` runs them all (``python -m dyndnn.bench``).
"""
