"""The runtime manager: pick the operating point that meets a budget, and keep meeting it.

``choose`` answers "which point now?" on the operating-point table: the *best* point is the
one with the highest accuracy among those within every budget, ties going to the lowest
energy, then the lowest latency. When nothing meets the budgets it says which point comes
closest and by how much that point misses each budget (``Choice.met`` is False; with
``strict=True`` a ``BudgetError`` carries the same ``Choice``).

>>> choice = choose(points, latency_s=0.002, min_accuracy=0.8)  # doctest: +SKIP
>>> choice.met, choice.point["groups"], choice.message  # doctest: +SKIP

``RuntimeManager`` does it over time for a running model: each step it gets the budgets and
the latency it measured, estimates how much a background load slows every configuration, and
switches ``model.set_active_groups(k)`` with hysteresis (down at once when a budget breaks, up
only after ``patience`` consecutive steps in which the better point fits with ``margin`` to
spare), so it does not oscillate. Every switch is logged with its cause, ``switch_cost_s``
(the first inference after it minus a steady one, on a probe input ``x``; NaN without it) and
``assign_s`` (the ``set_active_groups`` call alone: an assignment, not what a switch costs).

>>> log = simulate(candidates(points, "cpu[0-1]x2", batch=64, backend="onnxruntime"),
...                synthetic_trace(...), server, x=images)  # doctest: +SKIP
>>> result = live_demo(model, accuracy={1: 0.80, 2: 0.85, 3: 0.87, 4: 0.88})  # doctest: +SKIP
>>> result.switches[["t_s", "previous_groups", "groups", "cause", "switch_cost_s", "assign_s"]]
... # doctest: +SKIP

One module per idea: ``budgets`` (``Budget``, ``Miss``, ``misses_of``), ``choice``
(``choose``, ``Choice``, ``BudgetError``), ``manager`` (``RuntimeManager``, ``candidates``),
``timing`` (``steady_latency``, ``calibrate``), ``simulation`` (``synthetic_trace``,
``simulate``) and ``live`` (``live_demo`` and the CPU load it competes with).
"""

from dyndnn.runtime.budgets import UPPER, Budget, Miss, misses_of
from dyndnn.runtime.choice import BudgetError, Choice, choose, describe_point
from dyndnn.runtime.live import LiveDemo, live_demo, start_cpu_load, stop_cpu_load
from dyndnn.runtime.manager import LOG_COLUMNS, RuntimeManager, candidates
from dyndnn.runtime.simulation import simulate, synthetic_trace
from dyndnn.runtime.timing import calibrate, steady_latency

__all__ = [
    "LOG_COLUMNS", "UPPER", "Budget", "BudgetError", "Choice", "LiveDemo", "Miss",
    "RuntimeManager", "calibrate", "candidates", "choose", "describe_point", "live_demo",
    "misses_of", "simulate", "start_cpu_load", "steady_latency", "stop_cpu_load",
    "synthetic_trace",
]  # fmt: skip
