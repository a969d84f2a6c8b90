"""Choosing an operating point for a budget: the best one within it, or the closest miss.

The *best* point is the one with the highest accuracy among those within every budget, ties
going to the lowest energy, then the lowest latency. When nothing meets the budgets ``choose``
says which point comes closest and by how much that point misses each budget (``Choice.met``
is False; with ``strict=True`` a ``BudgetError`` carries the same ``Choice``).

>>> import pandas as pd
>>> points = pd.DataFrame({"groups": [1, 2], "latency_s": [0.001, 0.003],
...                        "accuracy": [0.80, 0.88]})
>>> choice = choose(points, latency_s=0.002, min_accuracy=0.8)
>>> choice.met, choice.point["groups"]
(True, 1)
>>> choice.message
'k=1: accuracy 0.800, latency 1 ms. 1 of 2 points meet latency <= 2 ms, accuracy >= 0.800.'
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from dyndnn.analysis import point_label
from dyndnn.errors import DyndnnError
from dyndnn.runtime.budgets import UPPER, Budget, Miss, _finite, accuracy_text, misses_of


@dataclass(frozen=True)
class Choice:
    """What ``choose`` found: the chosen point, or the closest one and what it misses."""

    met: bool
    point: dict[str, Any] | None  # the best point meeting the budget, else the closest one
    misses: tuple[Miss, ...]  # empty when met
    feasible: int  # how many points meet the budget
    total: int  # how many points there were to choose from
    budget: Budget = field(default_factory=Budget)

    @property
    def message(self) -> str:
        """One paragraph for a person: the point, or why nothing fits and what comes closest."""
        if self.point is None:
            return ("no operating points to choose from: the table (after the board, mapping "
                    "and batch filters) is empty")
        if self.met and not self.budget.limits():
            return (f"{describe_point(self.point)}. No budget set: the most accurate of "
                    f"{self.total} points.")
        if self.met:
            return (f"{describe_point(self.point)}. {self.feasible} of {self.total} points "
                    f"meet {self.budget.describe()}.")
        return (f"No operating point meets {self.budget.describe()} ({self.total} points). "
                f"Closest: {describe_point(self.point)}; "
                + "; ".join(m.describe() for m in self.misses) + ".")


class BudgetError(DyndnnError):
    """Nothing meets the budgets; ``choice`` names the closest point and its misses."""

    def __init__(self, choice: Choice) -> None:
        super().__init__(choice.message)
        self.choice = choice


def describe_point(point: MappingABC[str, Any]) -> str:
    """A point and its predicted numbers in words; energy says where it came from, if not a sensor.

    >>> describe_point({"groups": 2, "accuracy": 0.85, "latency_s": 0.002, "energy_j": 0.01,
    ...                 "energy_provenance": "modelled"})
    'k=2: accuracy 0.850, latency 2 ms, energy 10 mJ (modelled)'
    """
    text = point_label(point) if "mapping" in point else f"k={int(point['groups'])}"
    parts = []
    if _finite(point.get("accuracy")):
        parts.append(f"accuracy {accuracy_text(point['accuracy'])}")
    for name, (label, scale, unit) in UPPER.items():
        if _finite(point.get(name)):
            provenance = point.get("energy_provenance", "measured")
            note = f" ({provenance})" if name in ("energy_j", "power_w") and \
                provenance != "measured" else ""
            parts.append(f"{label} {point[name] * scale:.3g} {unit}{note}")
    return f"{text}: {', '.join(parts)}" if parts else text


def _rank_key(point: MappingABC[str, Any]) -> tuple[float, float, float]:
    """Sort key of a point, best first; a missing number sorts last."""
    def num(name: str, missing: float) -> float:
        value = point.get(name)
        return float(value) if _finite(value) else missing

    return (-num("accuracy", -math.inf), num("energy_j", math.inf), num("latency_s", math.inf))


def _better(a: MappingABC[str, Any], b: MappingABC[str, Any]) -> bool:
    """Whether point ``a`` ranks above ``b`` (more accurate; equal accuracy: less energy)."""
    return _rank_key(a) < _rank_key(b)


def _ranked(points: pd.DataFrame) -> pd.DataFrame:
    """Best first: highest accuracy, then lowest energy, then lowest latency (NaN last)."""
    keys = [_rank_key(r) for r in points.to_dict(orient="records")]
    order = sorted(range(len(keys)), key=keys.__getitem__)  # stable: equal points keep order
    return points.iloc[order]


def _closeness(misses: tuple[Miss, ...]) -> float:
    return sum(min(m.excess, 1e9) for m in misses)


def choose(points: pd.DataFrame, latency_s: float | None = None, energy_j: float | None = None,
           power_w: float | None = None, min_accuracy: float | None = None, *,
           strict: bool = False) -> Choice:
    """The best point within every given budget (see the module for "best").

    When none meets them: ``met=False`` and ``point`` is the closest one (the smallest sum of
    relative misses, ties to the best), with ``misses`` saying by how much; ``strict=True``
    raises ``BudgetError`` carrying that ``Choice`` instead.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"groups": [1, 2], "latency_s": [0.0015, 0.003],
    ...                        "accuracy": [0.80, 0.88]})
    >>> choice = choose(points, latency_s=0.001, min_accuracy=0.85)
    >>> choice.met, choice.point["groups"]
    (False, 1)
    >>> print(choice.message)
    No operating point meets latency <= 1 ms, accuracy >= 0.850 (2 points). Closest: k=1:
    accuracy 0.800, latency 1.5 ms; latency 1.5 ms is 0.5 ms (50%) over the 1 ms budget;
    accuracy 0.800 is 5.0 points under the minimum 0.850.
    >>> choose(points, latency_s=0.001, strict=True)
    Traceback (most recent call last):
    dyndnn.runtime.choice.BudgetError: No operating point meets latency <= 1 ms (2 points). ...
    """
    budget = Budget(latency_s, energy_j, power_w, min_accuracy)
    if points.empty:
        choice = Choice(False, None, (), 0, 0, budget)
        if strict:
            raise BudgetError(choice)
        return choice
    ranked = _ranked(points)
    records = ranked.to_dict(orient="records")
    missed = [misses_of(r, budget) for r in records]
    feasible = [r for r, m in zip(records, missed, strict=True) if not m]
    if feasible:
        return Choice(True, feasible[0], (), len(feasible), len(records), budget)
    # min() keeps the first of equals, and records are best first: ties go to the best point
    best = min(range(len(records)), key=lambda i: _closeness(missed[i]))
    choice = Choice(False, records[best], missed[best], 0, len(records), budget)
    if strict:
        raise BudgetError(choice)
    return choice
