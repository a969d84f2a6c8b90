"""Trade-off analysis on the tidy tables: operating points, dynamic ranges, Pareto fronts, memory.

Pure functions of ``eval.csv`` (one row per model and configuration) and ``profile.csv`` (one
row per measured repeat); ``write_summary`` runs them all on a run folder.

Two configurations of a model ``m`` under two mappings, one repeat each:

>>> import pandas as pd, tempfile
>>> profile = pd.DataFrame({"board": "vm", "model": "m", "device": "cpu", "freq_khz": None,
...                         "batch": 1, "cores": ["0", "0", "0-1", "0-1"], "threads": [1, 1, 2, 2],
...                         "groups": [1, 2, 1, 2], "latency_s": [0.002, 0.004, 0.0012, 0.0022],
...                         "energy_j": [0.006, 0.012, 0.005, 0.009], "power_w": 3.0,
...                         "meter": "rapl"})
>>> evaluation = pd.DataFrame({"model": "m", "groups": [1, 2], "accuracy": [0.80, 0.88],
...                            "val_accuracy": [0.79, 0.87], "confidence_norm": [0.9, 1.0],
...                            "macs": [100, 200], "param_bytes": [40, 80]})
>>> points = operating_points(join_tables(evaluation, profile))
>>> dynamic_ranges(points)[["backend", "batch", "level", "metric", "range"]].round(2)
  backend  batch            level     metric  range
0   eager      1          pruning   energy_j   2.00
1   eager      1  pruning+mapping   energy_j   2.40
2   eager      1          pruning  latency_s   2.00
3   eager      1  pruning+mapping  latency_s   3.33
>>> pareto_front(points, x="energy_j")[["mapping", "groups", "energy_j", "accuracy"]]
      mapping  groups  energy_j  accuracy
0  cpu[0-1]x2       1     0.005      0.80
1  cpu[0-1]x2       2     0.009      0.88

On a run folder (``summary.json`` and ``operating_points.csv``, next to the two tables):

>>> run_dir = tempfile.mkdtemp()
>>> evaluation.to_csv(f"{run_dir}/eval.csv", index=False)
>>> profile.to_csv(f"{run_dir}/profile.csv", index=False)
>>> summary = write_summary(run_dir)
>>> summary["mappings"], summary["energy"]
(['cpu[0-1]x2', 'cpu[0]x1'], 'energy measured by rapl')

An *operating point* is one (board, model, device, backend, cores, threads, freq_khz, batch,
groups): a configuration k on an engine (``eager`` PyTorch or ``onnxruntime``) under a task
mapping, a clock and a batch size. ``latency_s`` and ``energy_j`` are per inference (one
forward pass of ``batch`` inputs), as the profiler writes them. An empty ``freq_khz`` (NaN
here) means the clocks were left as they were.

One module per idea: ``tidy`` (the input tables, joined), ``points`` (operating points),
``pareto`` (fronts), ``ranges`` (dynamic ranges), ``memory`` (bytes to serve every
configuration), ``comparison`` (against the baselines) and ``summary`` (a run folder's
``summary.json``); ``errors`` holds ``AnalysisError``.
"""

from dyndnn.analysis.comparison import (
    COMPARE_KEYS,
    COMPRESSION_TOLERANCE,
    REFERENCE,
    compare_models,
    comparison_headline,
)
from dyndnn.analysis.errors import AnalysisError
from dyndnn.analysis.memory import memory_footprint
from dyndnn.analysis.pareto import PARETO_BY, mark_pareto, pareto_front, pareto_mask
from dyndnn.analysis.points import (
    OP_COLUMNS,
    operating_points,
    point_label,
    read_operating_points,
    select,
)
from dyndnn.analysis.ranges import RANGE_LEVELS, dynamic_range_table, dynamic_ranges
from dyndnn.analysis.summary import energy_note, load_run, summarise, write_summary
from dyndnn.analysis.tidy import (
    AS_SET,
    DEFAULT_BACKEND,
    EVAL_KEEP,
    MAPPING_KEYS,
    METRICS,
    POINT_KEYS,
    freq_label,
    join_tables,
    tidy_profile,
)

__all__ = [
    "AS_SET", "COMPARE_KEYS", "COMPRESSION_TOLERANCE", "DEFAULT_BACKEND", "EVAL_KEEP",
    "MAPPING_KEYS", "METRICS", "OP_COLUMNS", "PARETO_BY", "POINT_KEYS", "RANGE_LEVELS",
    "REFERENCE", "AnalysisError", "compare_models", "comparison_headline", "dynamic_range_table",
    "dynamic_ranges", "energy_note", "freq_label", "join_tables", "load_run", "mark_pareto",
    "memory_footprint", "operating_points", "pareto_front", "pareto_mask", "point_label",
    "read_operating_points", "select", "summarise", "tidy_profile", "write_summary",
]  # fmt: skip
