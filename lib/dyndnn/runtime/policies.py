"""Policies that pick what runs each window: static points, the manager, the manager with mapping.

A policy sees the calibration (``table``: one row per (k, mapping) with the latency measured
here before any load, and each k's validation accuracy) and, after every window, the median
latency it measured at the point it chose. ``decide`` returns the next ``(k, mapping)``;
``probe`` says that window was a probe (the mapping manager measuring a mapping it is not on).

>>> import pandas as pd
>>> table = pd.DataFrame({"groups": [1, 2, 1, 2], "mapping": ["a", "a", "b", "b"],
...                       "latency_s": [1e-3, 2e-3, 1e-3, 2e-3], "accuracy": [0.8, 0.9] * 2})
>>> policy = MappingManagerPolicy(table, budget_s=2.5e-3, default_mapping="a", patience=1)
>>> policy.decide()
(2, 'a')
>>> policy.observe(2, "a", 4e-3)          # mapping a slowed down 2x: k=2 there misses
>>> policy.decide()                        # b is unknown, so taken as calibrated
(2, 'b')
"""

from __future__ import annotations

import math

import pandas as pd

from dyndnn.runtime.budgets import Budget
from dyndnn.runtime.choice import choose
from dyndnn.runtime.manager import RuntimeManager

POLICIES = ("static_full", "static_min", "static_best", "manager", "manager_mapping")


class Policy:
    """Base: a fixed point. ``name`` is the policy's column value in runtime.csv."""

    name = "static"

    def __init__(self, k: int, mapping: str) -> None:
        self.k, self.mapping = int(k), mapping
        self.probe = False

    def decide(self) -> tuple[int, str]:
        """The point to run next."""
        return self.k, self.mapping

    def observe(self, k: int, mapping: str, latency_s: float) -> None:
        """The median latency measured in the last window at ``(k, mapping)``."""


class ManagerPolicy(Policy):
    """``RuntimeManager`` over the pruning levels at one mapping (its hysteresis, its log)."""

    name = "manager"

    def __init__(self, table: pd.DataFrame, budget_s: float, mapping: str, *,
                 patience: int = 3, margin: float = 0.85) -> None:
        part = table[table["mapping"] == mapping].reset_index(drop=True)
        self.manager = RuntimeManager(part[["groups", "latency_s", "accuracy"]],
                                      patience=patience, margin=margin)
        self.budget = Budget(latency_s=budget_s)
        self._t = 0
        super().__init__(self.manager.current, mapping)

    def observe(self, k: int, mapping: str, latency_s: float) -> None:
        """One manager step with the measured latency."""
        self._t += 1
        self.manager.step(float(self._t), self.budget, measured_latency_s=latency_s)
        self.k = self.manager.current


class MappingManagerPolicy(Policy):
    """The manager over pruning levels and mappings (cores and threads).

    It keeps a slowdown per mapping (measured latency over calibrated), steps down at once
    when the current point's estimate breaks the budget, and up only after ``patience``
    windows in which a better point fits with ``margin`` to spare. A mapping it is not on is
    known only from its last measurement: every ``probe_every`` windows it probes the mapping
    measured longest ago at the current k (that window is served, and counted, like any).
    """

    name = "manager_mapping"

    def __init__(self, table: pd.DataFrame, budget_s: float, default_mapping: str, *,
                 patience: int = 3, margin: float = 0.85, probe_every: int = 5) -> None:
        self.table = table.reset_index(drop=True)
        self.budget_s, self.patience, self.margin = budget_s, patience, margin
        self.probe_every = probe_every
        self.mappings = list(dict.fromkeys(self.table["mapping"]))
        self.slowdown = dict.fromkeys(self.mappings, 1.0)
        self.seen = dict.fromkeys(self.mappings, 0)  # window index of the last measurement
        self._window, self._calm = 0, 0
        best = self._best(budget_s)
        start = (int(best["groups"]), best["mapping"]) if best is not None else \
            (int(self.table["groups"].max()), default_mapping)
        super().__init__(*start)
        self._home = start

    def _estimates(self) -> pd.DataFrame:
        est = self.table.copy()
        est["latency_s"] = est["latency_s"] * est["mapping"].map(self.slowdown)
        return est

    def _best(self, budget_s: float) -> dict | None:
        choice = choose(self._estimates(), latency_s=budget_s)
        return choice.point if choice.met else None

    def _latency(self, k: int, mapping: str) -> float:
        est = self._estimates()
        row = est[(est["groups"] == k) & (est["mapping"] == mapping)]
        return float(row["latency_s"].iloc[0]) if len(row) else math.inf

    def _accuracy(self, k: int) -> float:
        return float(self.table.loc[self.table["groups"] == k, "accuracy"].iloc[0])

    def decide(self) -> tuple[int, str]:
        """The current point, or a probe of the mapping measured longest ago."""
        self.probe = False
        stale = min(self.mappings, key=lambda m: self.seen[m])
        if (self.probe_every and self._window and self._window % self.probe_every == 0
                and stale != self.mapping):
            self.probe = True
            return self.k, stale
        return self.k, self.mapping

    def observe(self, k: int, mapping: str, latency_s: float) -> None:
        """Update that mapping's slowdown, then step down at once or up with hysteresis."""
        self._window += 1
        calibrated = self.table[(self.table["groups"] == k) & (self.table["mapping"] == mapping)]
        if len(calibrated) and latency_s > 0 and math.isfinite(latency_s):
            self.slowdown[mapping] = latency_s / float(calibrated["latency_s"].iloc[0])
            self.seen[mapping] = self._window
        if self._latency(self.k, self.mapping) > self.budget_s:  # broken: down at once
            self._calm = 0
            choice = choose(self._estimates(), latency_s=self.budget_s)
            self.k, self.mapping = int(choice.point["groups"]), choice.point["mapping"]
            return
        roomy = self._best(self.budget_s * self.margin)
        if roomy is None:
            self._calm = 0
            return
        better = (self._accuracy(int(roomy["groups"])) > self._accuracy(self.k) or
                  (int(roomy["groups"]) == self.k and roomy["mapping"] != self.mapping and
                   roomy["latency_s"] < self._latency(self.k, self.mapping) * self.margin))
        self._calm = self._calm + 1 if better else 0
        if better and self._calm >= self.patience:
            self.k, self.mapping, self._calm = int(roomy["groups"]), roomy["mapping"], 0


def static_best(table: pd.DataFrame, budget_s: float, mapping: str,
                margin: float = 0.85) -> int:
    """The most accurate k whose calibrated latency at ``mapping`` fits ``margin`` x budget.

    The head-room is the manager's own (a static point chosen to fit exactly misses at the
    first disturbance); the smallest k where none fits.

    >>> table = pd.DataFrame({"groups": [1, 2, 3], "mapping": "a",
    ...                       "latency_s": [1e-3, 2e-3, 3e-3], "accuracy": [0.7, 0.8, 0.9]})
    >>> static_best(table, budget_s=3.3e-3, mapping="a")     # 3 ms > 0.85 x 3.3 ms
    2
    """
    part = table[table["mapping"] == mapping]
    choice = choose(part[["groups", "latency_s", "accuracy"]], latency_s=budget_s * margin)
    return int(choice.point["groups"]) if choice.met else int(part["groups"].min())


def make_policy(name: str, table: pd.DataFrame, budget_s: float, mapping: str) -> Policy:
    """A policy by name (``POLICIES``), over ``table``, at ``mapping`` for the static ones."""
    if name == "static_full":
        policy: Policy = Policy(int(table["groups"].max()), mapping)
    elif name == "static_min":
        policy = Policy(int(table["groups"].min()), mapping)
    elif name == "static_best":
        policy = Policy(static_best(table, budget_s, mapping), mapping)
    elif name == "manager":
        return ManagerPolicy(table, budget_s, mapping)
    elif name == "manager_mapping":
        return MappingManagerPolicy(table, budget_s, mapping)
    else:
        raise ValueError(f"unknown policy {name!r}; known: {', '.join(POLICIES)}")
    policy.name = name
    return policy
