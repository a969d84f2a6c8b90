"""What each policy achieved: miss rate, latency percentiles, accuracy served, switches, energy.

``summarise`` turns ``runtime.csv``'s windows into ``runtime_summary.csv``, one row per
(scenario, backend, policy), and adds the offline oracle: per phase of the scenario (a stretch
with one load), the most accurate (k, mapping) whose inferences in that phase, under any
policy, missed the budget at most ``MET_MISS_RATE`` of the time. It is computed after the
fact from the same measurements, an upper bound no online policy can know in advance.

>>> import pandas as pd
>>> windows = pd.DataFrame({"scenario": "s", "backend": "eager", "round": 1,
...     "policy": ["a", "a", "b", "b"], "t_s": [0.0, 1.0, 0.0, 1.0], "k": [2, 2, 1, 1],
...     "mapping": "m", "probe": False, "switched": False, "first_latency_s": 1e-3,
...     "latency_s": [1e-3, 3e-3, 5e-4, 6e-4], "p99_s": [1e-3, 3e-3, 5e-4, 6e-4],
...     "inferences": 100, "over_budget": [0, 100, 0, 0], "budget_s": 2e-3,
...     "load": ["calm", "cpu_hog on 0", "calm", "cpu_hog on 0"]})
>>> accuracy = {1: 0.80, 2: 0.90}
>>> table = summarise(windows, accuracy, phase_bounds={("s", 1): [0.0, 1.0, 2.0]})
>>> print(table[["policy", "miss_rate", "accuracy_served"]].to_string(index=False))
          policy  miss_rate  accuracy_served
               a        0.5             0.90
               b        0.0             0.80
oracle (offline)        0.0             0.85
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from typing import Any

import numpy as np
import pandas as pd

MET_MISS_RATE = 0.05  # a point "met the budget" in a phase if at most 5 % of it missed
ORACLE = "oracle (offline)"
KEYS = ["scenario", "backend", "policy"]


def _phase(t_s: pd.Series, bounds: list[float]) -> pd.Series:
    """The phase index of each window start."""
    return pd.Series(np.searchsorted(bounds, t_s.to_numpy(), side="right") - 1, index=t_s.index)


def summarise(windows: pd.DataFrame, accuracy: MappingABC[int, float],
              phase_bounds: MappingABC[tuple[str, int], list[float]],
              power_w: MappingABC[tuple[str, str, int], float] | None = None) -> pd.DataFrame:
    """Per (scenario, backend, policy), the oracle last in each (scenario, backend).

    ``accuracy``: validation accuracy per k; ``phase_bounds``: per (scenario, round), the
    times its load changed in that round (``Scenario.phase_bounds`` of what was played: a
    seeded scenario differs from round to round); ``power_w``: power per (backend, mapping, k),
    from the profiled operating points (a modelled one also under ``any_cores(mapping)``),
    for the energy per inference; NaN where a window's point has none.
    """
    frame = windows.assign(accuracy=windows["k"].map(accuracy))
    rows = []
    for (scen, backend), part in frame.groupby(["scenario", "backend"], sort=False):
        for policy, mine in part.groupby("policy", sort=False):
            rows.append(_outcome(scen, backend, policy, mine, power_w))
        rows.append(_oracle(scen, backend, part, phase_bounds, power_w))
    return pd.DataFrame(rows)


def _weighted(values: pd.Series, weights: pd.Series) -> float:
    """The mean of ``values`` weighted by ``weights``; NaN where any value is unknown."""
    total = weights.sum()
    if not total or values.isna().any():  # pandas would sum a NaN as 0
        return math.nan
    return float((values * weights).sum() / total)


def any_cores(mapping: str) -> str:
    """A mapping's label with its cores left open: ``cpu[1]x1`` -> ``cpu[*]x1``.

    A modelled power depends on how many cores are busy, not on which: the key under which
    ``power_w`` may hold a modelled point for any cores.

    >>> any_cores("cpu[1]x1"), any_cores("cpu[0-1]x2")
    ('cpu[*]x1', 'cpu[*]x2')
    """
    head, _, rest = mapping.partition("[")
    return f"{head}[*]{rest.partition(']')[2]}" if rest else mapping


def _outcome(scen: str, backend: str, policy: str, mine: pd.DataFrame,
             power_w: MappingABC[tuple[str, str, int], float] | None) -> dict[str, Any]:
    n = mine["inferences"]
    switched = mine[mine["switched"]]
    cost = (switched["first_latency_s"] - switched["latency_s"]).median() if len(switched) \
        else math.nan
    energy = math.nan
    if power_w:
        watts = [power_w.get((backend, m, int(k)),
                             power_w.get((backend, any_cores(m), int(k)), math.nan))
                 for m, k in zip(mine["mapping"], mine["k"], strict=True)]
        energy = _weighted(mine["latency_s"] * pd.Series(watts, index=mine.index), n)
    return {"scenario": scen, "backend": backend, "policy": policy,
            "rounds": int(mine["round"].nunique()), "windows": len(mine),
            "inferences": int(n.sum()),
            "miss_rate": float(mine["over_budget"].sum() / n.sum()) if n.sum() else math.nan,
            "windows_missed": float((mine["latency_s"] > mine["budget_s"]).mean()),
            "p50_s": _weighted_quantile(mine["latency_s"], n, 0.5),
            "p99_s": _weighted_quantile(mine["p99_s"], n, 0.99),
            "accuracy_served": _weighted(mine["accuracy"], n),
            "switches": int(len(switched)) / max(1, int(mine["round"].nunique())),
            "probes": int(mine["probe"].sum()),
            "switch_first_minus_median_s": float(cost),
            "energy_per_inference_j": energy,
            "energy_provenance": "modelled" if power_w else "none"}  # fmt: skip


def _weighted_quantile(values: pd.Series, weights: pd.Series, q: float) -> float:
    """The q-quantile of window values weighted by their inference counts.

    >>> _weighted_quantile(pd.Series([1.0, 2.0, 3.0]), pd.Series([1, 1, 8]), 0.5)
    3.0
    """
    order = np.argsort(values.to_numpy())
    v, w = values.to_numpy()[order], weights.to_numpy()[order].astype(float)
    if not len(v) or w.sum() == 0:
        return math.nan
    cumulative = np.cumsum(w) / w.sum()
    return float(v[min(int(np.searchsorted(cumulative, q)), len(v) - 1)])


def _oracle(scen: str, backend: str, part: pd.DataFrame,
            phase_bounds: MappingABC[tuple[str, int], list[float]],
            power_w: MappingABC[tuple[str, str, int], float] | None) -> dict[str, Any]:
    """Per round and phase, the best point measured there that met the budget."""
    chosen = []
    for round_, in_round in part.groupby("round"):
        phases = _phase(in_round["t_s"], phase_bounds[(scen, int(round_))])
        for _, here in in_round.groupby(phases):
            points = here.groupby(["k", "mapping"]).agg(
                over=("over_budget", "sum"), n=("inferences", "sum"),
                accuracy=("accuracy", "first"), latency_s=("latency_s", "median"))
            points["miss"] = points["over"] / points["n"]
            met = points[points["miss"] <= MET_MISS_RATE]
            pick = (met.sort_values(["accuracy", "latency_s"], ascending=[False, True])
                    if len(met) else points.sort_values(["miss", "accuracy"],
                                                        ascending=[True, False])).index[0]
            windows = here[(here["k"] == pick[0]) & (here["mapping"] == pick[1])]
            # the phase as long as the policies spent in it, served at the pick's numbers
            weight = here.groupby("policy")["inferences"].sum().mean()
            chosen.append(windows.assign(inferences=windows["inferences"] * weight /
                                         windows["inferences"].sum(),
                                         over_budget=windows["over_budget"] * weight /
                                         windows["inferences"].sum()))
    frame = pd.concat(chosen, ignore_index=True).assign(
        switched=False, probe=False, round=1)
    row = _outcome(scen, backend, ORACLE, frame, power_w)
    row["rounds"] = int(part["round"].nunique())
    picks = [tuple(c[["k", "mapping"]].iloc[0]) for c in chosen]
    row["switches"] = sum(a != b for a, b in zip(picks, picks[1:], strict=False)) / row["rounds"]
    row["switch_first_minus_median_s"] = math.nan
    return row
