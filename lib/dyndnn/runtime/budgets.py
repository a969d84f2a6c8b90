"""Budgets: per-inference limits, and which of them an operating point misses.

A ``Budget`` holds upper limits on latency, energy and power and a lower limit on accuracy;
``misses_of`` lists the ones a point breaks, each a ``Miss`` that says by how much.

>>> budget = Budget(latency_s=0.002, min_accuracy=0.85)
>>> [m.describe() for m in misses_of({"latency_s": 0.003, "accuracy": 0.9}, budget)]
['latency 3 ms is 1 ms (50%) over the 2 ms budget']
"""

from __future__ import annotations

import math
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, replace
from typing import Any

# upper-bound budgets: the point's column and how it is shown
UPPER = {"latency_s": ("latency", 1e3, "ms"), "energy_j": ("energy", 1e3, "mJ"),
         "power_w": ("power", 1.0, "W")}


@dataclass(frozen=True)
class Budget:
    """Per-inference limits; None (or inf) is no limit.

    >>> Budget(latency_s=0.002, min_accuracy=0.85).describe()
    'latency <= 2 ms, accuracy >= 0.850'
    """

    latency_s: float | None = None
    energy_j: float | None = None
    power_w: float | None = None
    min_accuracy: float | None = None

    def limits(self) -> dict[str, float]:
        """The budgets that are set, by point column (``min_accuracy`` for the lower bound)."""
        out = {}
        for name in (*UPPER, "min_accuracy"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, float) and
                                          (math.isnan(value) or math.isinf(value))):
                out[name] = float(value)
        return out

    def tightened(self, margin: float) -> Budget:
        """Upper budgets times ``margin`` (< 1): the head-room a step up must leave."""
        return replace(self, **{k: v * margin for k, v in self.limits().items() if k in UPPER})

    def describe(self) -> str:
        """The budgets in words."""
        parts = []
        for name, value in self.limits().items():
            if name == "min_accuracy":
                parts.append(f"accuracy >= {value:.3f}")
            else:
                label, scale, unit = UPPER[name]
                parts.append(f"{label} <= {value * scale:.3g} {unit}")
        return ", ".join(parts) or "no budget"


@dataclass(frozen=True)
class Miss:
    """One budget a point does not meet: its value, the limit and the relative excess."""

    budget: str  # a point column ("latency_s", ...) or "min_accuracy"
    value: float
    limit: float

    @property
    def excess(self) -> float:
        """How far off, relative to the limit: 0.3 is 30 % over (or under, for accuracy)."""
        if self.budget == "min_accuracy":
            return (self.limit - self.value) / self.limit if self.limit else math.inf
        return self.value / self.limit - 1 if self.limit > 0 else math.inf

    def describe(self) -> str:
        """``latency 1.3 ms is 0.3 ms (30%) over the 1 ms budget``."""
        if self.budget == "min_accuracy":
            return (f"accuracy {self.value:.3f} is {100 * (self.limit - self.value):.1f} points "
                    f"under the minimum {self.limit:.3f}")
        label, scale, unit = UPPER[self.budget]
        return (f"{label} {self.value * scale:.3g} {unit} is "
                f"{(self.value - self.limit) * scale:.3g} {unit} ({100 * self.excess:.0f}%) "
                f"over the {self.limit * scale:.3g} {unit} budget")


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def misses_of(point: MappingABC[str, Any], budget: Budget) -> tuple[Miss, ...]:
    """The budgets ``point`` breaks (a missing value breaks a set budget: it cannot be shown).

    >>> misses_of({"latency_s": 0.003, "accuracy": 0.9}, Budget(latency_s=0.002))[0].excess
    0.5
    """
    out = []
    for name, limit in budget.limits().items():
        column = "accuracy" if name == "min_accuracy" else name
        value = point.get(column)
        value = float(value) if _finite(value) else (-math.inf if column == "accuracy"
                                                     else math.inf)
        broken = value < limit if name == "min_accuracy" else value > limit
        if broken:
            out.append(Miss(name, value, limit))
    return tuple(out)
