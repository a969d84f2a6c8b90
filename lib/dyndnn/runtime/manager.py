"""The runtime manager: keeps a running model within its budgets as they and the load change.

``RuntimeManager`` gets the budgets and the latency it measured each step, estimates how much a
background load slows every configuration, and switches ``model.set_active_groups(k)`` with
hysteresis (down at once when a budget breaks, up only after ``patience`` consecutive steps in
which the better point fits with ``margin`` to spare), so it does not oscillate. Every switch is
logged with its cause, ``switch_cost_s`` (the first inference after it minus a steady one, on a
probe input ``x``; NaN without it) and ``assign_s`` (the ``set_active_groups`` call alone: an
assignment, not what a switch costs). ``candidates`` gives the table it switches over.

>>> import pandas as pd
>>> table = pd.DataFrame({"groups": [1, 2], "latency_s": [0.001, 0.002],
...                       "accuracy": [0.80, 0.88]})
>>> manager = RuntimeManager(table, patience=2)  # no model: decisions only
>>> record = manager.step(0.0, Budget(latency_s=0.0025), measured_latency_s=0.003)
>>> record["previous_groups"], record["groups"], record["direction"]
(2, 1, 'down')
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.analysis import select
from dyndnn.errors import DyndnnError
from dyndnn.runtime.budgets import Budget, _finite, misses_of
from dyndnn.runtime.choice import _better, _ranked, choose
from dyndnn.runtime.timing import _time_call, steady_latency_and_noise


def candidates(points: pd.DataFrame, mapping: str | None = None, batch: int | None = None,
               board: str | None = None, freq_label: str | None = None,
               model: str | None = None, backend: str | None = None) -> pd.DataFrame:
    """The points a running model switches between: one per k at one backend, mapping, clock.

    With a filter left None the first value (sorted) is taken, so the result always has one
    row per configuration; a table without a ``backend`` column (hand-made) is taken as is.

    >>> import pandas as pd
    >>> points = pd.DataFrame({"groups": [1, 2, 1, 2], "mapping": "cpu[0-1]x2", "batch": 1,
    ...                        "backend": ["eager", "eager", "onnxruntime", "onnxruntime"],
    ...                        "latency_s": [0.004, 0.007, 0.002, 0.003], "accuracy": 0.8})
    >>> candidates(points, mapping="cpu[0-1]x2", backend="onnxruntime")[["groups", "latency_s"]]
       groups  latency_s
    0       1      0.002
    1       2      0.003
    >>> candidates(points)["backend"].tolist()          # None: the first backend, sorted
    ['eager', 'eager']
    """
    chosen = {"board": board, "mapping": mapping, "batch": batch, "freq_label": freq_label,
              "model": model, "backend": backend}
    for col, value in chosen.items():
        if value is None and col in points:
            chosen[col] = sorted(points[col].unique())[0]
    part = select(points, **chosen)
    if part.empty:
        raise DyndnnError(f"no operating points for {chosen}")
    return part.sort_values("groups").reset_index(drop=True)


LOG_COLUMNS = [
    "t_s", "previous_groups", "groups", "switched", "direction", "cause", "switch_cost_s",
    "switch_noise_s", "assign_s", "measured_latency_s", "slowdown", "predicted_latency_s", "met",
    "budget_latency_s", "budget_energy_j", "budget_power_w", "min_accuracy",
]  # fmt: skip


class RuntimeManager:
    """Switches a running model between configurations as budgets and load change.

    ``table`` has one row per configuration (``groups``) at the backend, mapping, clock and
    batch the model runs with: ``latency_s`` and ``accuracy``, optionally ``energy_j`` and
    ``power_w`` (``candidates`` gives it). ``model`` is anything with ``set_active_groups(k)``
    and ``__call__(x)`` (a ``DynamicModel``, a ``serve.Server``); None simulates without one.
    A measured latency gives the slowdown of the current configuration over its profiled
    latency; every configuration is assumed slowed alike, energy with it (the same power drawn
    for longer), power not.

    With a model and a probe input ``x``, each configuration's steady latency on ``x`` is
    measured here once (``steady_latency``); a switch's ``switch_cost_s`` is its first
    inference (after one at the old k) minus that, NaN without ``x``; ``assign_s`` is the
    ``set_active_groups`` call.

    Hysteresis: a broken budget switches at once to the best point that meets it (the closest
    one if none does); a better point is taken only after ``patience`` consecutive steps in
    which it meets every upper budget times ``margin``.

    >>> import pandas as pd, torch
    >>> from dyndnn.models import GroupNet
    >>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
    >>> table = pd.DataFrame({"groups": [1, 2], "latency_s": [0.001, 0.002],
    ...                       "accuracy": [0.80, 0.88]})
    >>> manager = RuntimeManager(table, model, x=torch.randn(4, 1, 28, 28), patience=3)
    >>> manager.current, model.num_active_groups        # the best point first
    (2, 2)
    >>> record = manager.step(0.0, Budget(latency_s=0.002), measured_latency_s=0.0031)
    >>> model.num_active_groups, record["cause"]
    (1, 'latency 3.1 ms is 1.1 ms (55%) over the 2 ms budget')
    >>> manager.switches[["switch_cost_s", "assign_s"]].notna().values.tolist()  # measured
    [[True, True]]
    """

    def __init__(self, table: pd.DataFrame, model: Any | None = None, *, x: Any = None,
                 patience: int = 3, margin: float = 0.85, start_groups: int | None = None,
                 probes: int = 5) -> None:
        if table.empty or table["groups"].duplicated().any():
            raise DyndnnError("the manager needs one row per configuration (groups), "
                              "at one backend, mapping, clock and batch; see runtime.candidates")
        if patience < 1 or not 0 < margin <= 1:
            raise DyndnnError(f"need patience >= 1 and 0 < margin <= 1; got {patience}, {margin}")
        self.table = table.copy().set_index("groups", drop=False)
        for col in ("energy_j", "power_w"):
            if col not in self.table:
                self.table[col] = np.nan
        self.model, self.x, self.patience, self.margin = model, x, patience, margin
        self.current = int(start_groups or _ranked(self.table).iloc[0]["groups"])
        # per k, seconds of a steady inference on x: what a switch's first one is set against
        self.steady_s: dict[int, float] = {}
        self.noise_s: dict[int, float] = {}  # per k: slowest steady probe minus the median
        if model is not None and x is not None:
            self.steady_s, self.noise_s = steady_latency_and_noise(
                model, x, [int(k) for k in self.table.index], probes)
        if model is not None:
            model.set_active_groups(self.current)
        self.slowdown = 1.0
        self._calm = 0  # consecutive steps in which a better point fitted with margin
        self.records: list[dict[str, Any]] = []

    def estimate(self) -> pd.DataFrame:
        """Every configuration's latency/energy under the slowdown measured last."""
        est = self.table.copy()
        est["latency_s"] = est["latency_s"] * self.slowdown
        est["energy_j"] = est["energy_j"] * self.slowdown
        return est

    def _switch(self, k: int) -> tuple[float, float]:
        """Switch to ``k``; ``(switch_cost_s, assign_s)``, NaN where nothing was measured."""
        cost = assign = math.nan
        if self.model is not None:
            if self.x is not None:  # warm at the old k, as a serving engine is: no idle in it
                _time_call(self.model, self.x)
            start = time.perf_counter()
            self.model.set_active_groups(k)
            assign = time.perf_counter() - start
            if self.x is not None:
                cost = _time_call(self.model, self.x) - self.steady_s[k]
        self.current = k
        return cost, assign

    def step(self, t_s: float, budget: Budget, measured_latency_s: float | None = None,
             **extra: Any) -> dict[str, Any]:
        """One control step; returns (and logs) what it decided and why.

        ``extra`` values (e.g. ``load=True``) are copied into the log record.
        """
        before = self.current
        if _finite(measured_latency_s) and measured_latency_s > 0:
            self.slowdown = measured_latency_s / float(self.table.loc[before, "latency_s"])
        est = self.estimate()
        broken = misses_of(est.loc[before].to_dict(), budget)
        target, cause = before, ""
        if broken:
            self._calm = 0
            choice = choose(est, **_kwargs(budget))
            target = int(choice.point["groups"])
            cause = "; ".join(m.describe() for m in broken)
            if not choice.met:
                cause += f"; nothing meets the budget, closest is k={target}"
        else:
            roomy = choose(est, **_kwargs(budget.tightened(self.margin)))
            if roomy.met and _better(roomy.point, est.loc[before].to_dict()):
                self._calm += 1
                if self._calm >= self.patience:
                    target = int(roomy.point["groups"])
                    cause = (f"k={target} met the budget with {100 * (1 - self.margin):.0f}% to "
                             f"spare for {self._calm} steps")
                    self._calm = 0
            else:
                self._calm = 0
        cost, assign = self._switch(target) if target != before else (math.nan, math.nan)
        limits = budget.limits()
        record = {
            "t_s": float(t_s), "previous_groups": before, "groups": self.current,
            "switched": target != before,
            "direction": "" if target == before else ("up" if _better(
                est.loc[target].to_dict(), est.loc[before].to_dict()) else "down"),
            "cause": cause, "switch_cost_s": cost,
            "switch_noise_s": self.noise_s.get(self.current, math.nan) if target != before
            else math.nan, "assign_s": assign,
            "measured_latency_s": measured_latency_s if _finite(measured_latency_s) else math.nan,
            "slowdown": self.slowdown,
            "predicted_latency_s": float(est.loc[self.current, "latency_s"]),
            "met": not misses_of(est.loc[self.current].to_dict(), budget),
            "budget_latency_s": limits.get("latency_s", math.nan),
            "budget_energy_j": limits.get("energy_j", math.nan),
            "budget_power_w": limits.get("power_w", math.nan),
            "min_accuracy": limits.get("min_accuracy", math.nan), **extra,
        }  # fmt: skip
        self.records.append(record)
        return record

    @property
    def log(self) -> pd.DataFrame:
        """Every step so far, one row each (``LOG_COLUMNS`` and any extras)."""
        return pd.DataFrame(self.records, columns=_columns(self.records))

    @property
    def switches(self) -> pd.DataFrame:
        """The steps that switched configuration, with their cause and cost."""
        log = self.log
        return log[log["switched"]].reset_index(drop=True)


def _columns(records: list[dict[str, Any]]) -> list[str]:
    extra = [k for r in records for k in r if k not in LOG_COLUMNS]
    return LOG_COLUMNS + list(dict.fromkeys(extra))


def _kwargs(budget: Budget) -> dict[str, float | None]:
    return {"latency_s": budget.latency_s, "energy_j": budget.energy_j,
            "power_w": budget.power_w, "min_accuracy": budget.min_accuracy}
