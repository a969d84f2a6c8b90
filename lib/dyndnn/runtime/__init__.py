"""The runtime manager: pick the operating point that meets a budget, and keep meeting it.

``choose`` answers "which point now?" on the operating-point table: the *best* point is the
one with the highest accuracy among those within every budget, ties going to the lowest
energy, then the lowest latency. When nothing meets the budgets it says which point comes
closest and by how much that point misses each budget (``Choice.met`` is False; with
``strict=True`` a ``BudgetError`` carries the same ``Choice``).

>>> import pandas as pd
>>> points = pd.DataFrame({"groups": [1, 2], "latency_s": [0.001, 0.002],
...                        "accuracy": [0.80, 0.88]})
>>> choice = choose(points, latency_s=0.0015, min_accuracy=0.8)
>>> choice.met, choice.point["groups"]
(True, 1)

``RuntimeManager`` does it over time for a running model: each step it gets the budgets and
the latency it measured, estimates how much a background load slows every configuration, and
switches ``model.set_active_groups(k)`` with hysteresis (down at once when a budget breaks, up
only after ``patience`` consecutive steps in which the better point fits with ``margin`` to
spare), so it does not oscillate. Every switch is logged with its cause, ``switch_cost_s``
(the first inference after it minus a steady one, on a probe input ``x``; NaN without it) and
``assign_s`` (the ``set_active_groups`` call alone: an assignment, not what a switch costs).

Simulated over a synthetic trace (calm, a background load, calm, a tighter budget):

>>> log = simulate(points, synthetic_trace(points, steps=40))
>>> print(log.loc[log["switched"], ["t_s", "previous_groups", "groups", "direction"]]
...       .to_string(index=False))
 t_s  previous_groups  groups direction
 2.5                2       1      down
 5.5                1       2        up
 7.5                2       1      down

Live, with a real model and a real competing load (``live_demo``, a minute or so)::

    result = live_demo(model, accuracy={1: 0.80, 2: 0.85, 3: 0.87, 4: 0.88})
    result.switches[["t_s", "previous_groups", "groups", "cause", "switch_cost_s", "assign_s"]]

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
