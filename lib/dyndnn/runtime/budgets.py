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


_PREFIXES = ((1.0, ""), (1e-3, "m"), (1e-6, "µ"), (1e-9, "n"))


def accuracy_text(value: float) -> str:
    """An accuracy with as many decimals as it has (3 to 6): a slider at 0.8574 is not 0.857.

    >>> accuracy_text(0.85), accuracy_text(0.8574), accuracy_text(0.857421875)
    ('0.850', '0.8574', '0.857422')
    """
    for decimals in range(3, 6):
        if abs(round(value, decimals) - value) < 1e-9:
            return f"{value:.{decimals}f}"
    return f"{value:.6f}"


def eng_text(value: float, unit: str) -> str:
    """A value in the SI prefix that keeps it >= 1: ``eng_text(1.82e-7, "s")`` is ``182 ns``.

    >>> eng_text(1.82e-7, "s"), eng_text(0.0025, "J"), eng_text(-3e-5, "s")
    ('182 ns', '2.5 mJ', '-30 µs')
    """
    magnitude = abs(value)
    factor, prefix = next(((f, p) for f, p in _PREFIXES if magnitude >= f), _PREFIXES[-1])
    return f"{value / factor:.3g} {prefix}{unit}"


def _pair(value: float, limit: float, scale: float) -> tuple[str, str]:
    """A value and its limit with the fewest significant digits (3 to 7) that tell them apart.

    >>> _pair(1.0002e-3, 1e-3, 1e3)
    ('1.0002', '1')
    """
    for digits in range(3, 8):
        shown = f"{value * scale:.{digits}g}", f"{limit * scale:.{digits}g}"
        if shown[0] != shown[1]:
            return shown
    return shown


def _percent(fraction: float) -> str:
    """``50%``; under 1 % two significant digits (``0.021%``), never a bare ``0%``."""
    percent = 100 * fraction
    return f"{percent:.0f}%" if abs(percent) >= 1 or percent == 0 else f"{percent:.2g}%"


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
                parts.append(f"accuracy >= {accuracy_text(value)}")
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
        """``latency 1.3 ms is 0.3 ms (30%) over the 1 ms budget``.

        >>> Miss("latency_s", 0.001000182, 0.001).describe()
        'latency 1.0002 ms is 182 ns (0.018%) over the 1 ms budget'
        """
        if self.budget == "min_accuracy":
            points = 100 * (self.limit - self.value)
            shown = f"{points:.1f}" if points >= 0.1 else f"{points:.2g}"
            return (f"accuracy {accuracy_text(self.value)} is {shown} points under the "
                    f"minimum {accuracy_text(self.limit)}")
        label, scale, unit = UPPER[self.budget]
        value, limit = _pair(self.value, self.limit, scale)
        excess = (self.value - self.limit) * scale
        # in the budget's unit, unless that rounds it away (0.000182 ms): then SI-prefixed
        by = f"{excess:.3g} {unit}" if abs(excess) >= 0.01 else eng_text(
            (self.value - self.limit), unit[1:] if unit.startswith("m") else unit)
        return (f"{label} {value} {unit} is {by} "
                f"({_percent(self.excess)}) over the {limit} {unit} budget")


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
