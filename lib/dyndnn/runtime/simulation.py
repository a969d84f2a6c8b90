"""Simulating the runtime manager over a resource trace: budgets and background load in time.

``synthetic_trace`` makes a trace in four phases (calm, load, calm, a tighter latency budget);
``simulate`` runs a ``RuntimeManager`` over it, with latencies drawn from the profiled ones:
they are *simulated* (``simulated_latency_s``), never logged as measured. Switch costs are
measured when a real model runs under the simulation.

>>> import pandas as pd
>>> table = pd.DataFrame({"groups": [1, 2, 3], "latency_s": [0.001, 0.002, 0.003],
...                       "accuracy": [0.80, 0.85, 0.88]})
>>> log = simulate(table, synthetic_trace(table, steps=40))
>>> log.loc[log["switched"], "direction"].tolist()
['down', 'up', 'down']
>>> "simulated_latency_s" in log, "measured_latency_s" in log
(True, False)
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.runtime.budgets import Budget, _finite
from dyndnn.runtime.choice import _ranked
from dyndnn.runtime.manager import RuntimeManager


def synthetic_trace(table: pd.DataFrame, steps: int = 80, dt_s: float = 0.25,
                    margin: float = 0.85, load_slowdown: float | None = None) -> pd.DataFrame:
    """A resource trace in four phases: calm, background load, calm, a tighter latency budget.

    The latency budget lets the best configuration run with ``margin`` to spare; the load
    slows everything by ``load_slowdown`` (default: enough that the best point breaks the
    budget and the fastest still meets it); the last quarter lowers the budget to 1.1 x the
    middle configuration's latency. Columns: ``t_s``, the budgets, ``slowdown``, ``load``.

    >>> import pandas as pd
    >>> table = pd.DataFrame({"groups": [1, 2, 3], "latency_s": [0.001, 0.002, 0.003],
    ...                       "accuracy": [0.80, 0.85, 0.88]})
    >>> trace = synthetic_trace(table, steps=8)
    >>> print(trace[["t_s", "budget_latency_s", "slowdown", "load"]].round(4)
    ...       .to_string(index=False))
     t_s  budget_latency_s  slowdown  load
    0.00            0.0037    1.0000 False
    0.25            0.0037    1.0000 False
    0.50            0.0037    2.1396  True
    0.75            0.0037    2.1396  True
    1.00            0.0037    1.0000 False
    1.25            0.0037    1.0000 False
    1.50            0.0022    1.0000 False
    1.75            0.0022    1.0000 False
    """
    best = float(_ranked(table).iloc[0]["latency_s"])
    fastest = float(table["latency_s"].min())
    budget = best / margin * 1.05
    if load_slowdown is None:
        # geometric middle of (just breaks the best point, just fits the fastest)
        load_slowdown = math.sqrt(budget / best * budget / fastest)
    # a budget the middle configuration meets with 10 % to spare and the slower ones break
    ordered = sorted(table["latency_s"].astype(float))
    tight = ordered[(len(ordered) - 1) // 2] * 1.1
    q = steps // 4
    rows = []
    for i in range(steps):
        loaded = q <= i < 2 * q
        rows.append({"t_s": i * dt_s, "budget_latency_s": tight if i >= 3 * q else budget,
                     "budget_energy_j": math.nan, "budget_power_w": math.nan,
                     "min_accuracy": math.nan, "slowdown": load_slowdown if loaded else 1.0,
                     "load": loaded})
    return pd.DataFrame(rows)


def _budget_of(row: MappingABC[str, Any]) -> Budget:
    def get(name: str) -> float | None:
        value = row.get(name)
        return float(value) if _finite(value) else None

    return Budget(get("budget_latency_s"), get("budget_energy_j"), get("budget_power_w"),
                  get("min_accuracy"))


def simulate(table: pd.DataFrame, trace: pd.DataFrame, model: Any | None = None, *,
             x: Any = None, patience: int = 3, margin: float = 0.85, noise: float = 0.03,
             seed: int = 0) -> pd.DataFrame:
    """Run a ``RuntimeManager`` over a trace; returns the manager's log.

    The latency the manager reads is simulated: the profiled one times the trace's
    ``slowdown`` times (1 + ``noise`` x a normal draw), logged as ``simulated_latency_s``. A
    real ``model`` and probe input ``x`` make the switch costs real (``assign_s`` needs the
    model alone); the inferences themselves are simulated.

    >>> import pandas as pd, torch
    >>> from dyndnn.models import GroupNet
    >>> table = pd.DataFrame({"groups": [1, 2, 3], "latency_s": [0.001, 0.002, 0.003],
    ...                       "accuracy": [0.80, 0.85, 0.88]})
    >>> model = GroupNet(groups=3, width=0.25, in_channels=1, image_size=28).eval()
    >>> log = simulate(table, synthetic_trace(table), model, x=torch.randn(4, 1, 28, 28))
    >>> switches = log[log["switched"]]
    >>> print(switches[["t_s", "groups", "cause"]].to_string(index=False))
     t_s  groups                                                    cause
     5.0       1 latency 6.39 ms is 2.69 ms (73%) over the 3.71 ms budget
    10.5       3         k=3 met the budget with 15% to spare for 3 steps
    15.0       2 latency 2.96 ms is 0.761 ms (35%) over the 2.2 ms budget
    >>> switches[["switch_cost_s", "assign_s"]].notna().all().tolist()   # measured on the model
    [True, True]
    """
    rng = np.random.default_rng(seed)
    manager = RuntimeManager(table, model, x=x, patience=patience, margin=margin)
    latency = table.set_index("groups")["latency_s"]
    for row in trace.to_dict(orient="records"):
        slowdown = float(row.get("slowdown", 1.0))
        simulated = float(latency[manager.current]) * slowdown * (1 + noise * rng.standard_normal())
        manager.step(row["t_s"], _budget_of(row), simulated, load=bool(row.get("load", False)))
    return manager.log.rename(columns={"measured_latency_s": "simulated_latency_s"})
