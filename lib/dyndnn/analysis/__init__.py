"""Trade-off analysis on the tidy tables: operating points, dynamic ranges, Pareto fronts, memory.

Pure functions of ``eval.csv`` (one row per model and configuration) and ``profile.csv`` (one
row per measured repeat); ``write_summary`` runs them all on a run folder.

>>> points = operating_points(join_tables(evaluation, profile))  # doctest: +SKIP
>>> dynamic_ranges(points)[["backend", "batch", "level", "metric", "range"]]  # doctest: +SKIP
>>> pareto_front(points, x="energy_j")[["mapping", "groups", "energy_j", "accuracy"]]
... # doctest: +SKIP
>>> summary = write_summary("outputs/run")  # summary.json and operating_points.csv
... # doctest: +SKIP

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
