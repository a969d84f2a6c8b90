"""The runtime manager: pick the operating point that meets a budget, and keep meeting it.

``choose`` answers "which point now?" on the operating-point table: the *best* point is the
one with the highest accuracy among those within every budget, ties going to the lowest
energy, then the lowest latency. When nothing meets the budgets it says which point comes
closest and by how much that point misses each budget (``Choice.met`` is False; with
``strict=True`` a ``BudgetError`` carries the same ``Choice``).

>>> choice = choose(points, latency_s=0.002, min_accuracy=0.8)
>>> choice.met, choice.point["groups"], choice.message

``RuntimeManager`` does it over time for a running model: each step it gets the budgets and
the latency it measured, estimates how much a background load slows every configuration, and
switches ``model.set_active_groups(k)`` with hysteresis (down at once when a budget breaks, up
only after ``patience`` consecutive steps in which the better point fits with ``margin`` to
spare), so it does not oscillate. Every switch is logged with its cause, ``switch_cost_s``
(the first inference after it minus a steady one, on a probe input ``x``; NaN without it) and
``assign_s`` (the ``set_active_groups`` call alone: an assignment, not what a switch costs).

>>> log = simulate(candidates(points, "cpu[0-1]x2", batch=64, backend="onnxruntime"),
...                synthetic_trace(...), server, x=images)
>>> result = live_demo(model, accuracy={1: 0.80, 2: 0.85, 3: 0.87, 4: 0.88})  # ~15 s
>>> result.switches[["t_s", "previous_groups", "groups", "cause", "switch_cost_s", "assign_s"]]
"""

from __future__ import annotations

import contextlib
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.analysis import point_label, select
from dyndnn.errors import DyndnnError

# upper-bound budgets: the point's column and how it is shown
UPPER = {"latency_s": ("latency", 1e3, "ms"), "energy_j": ("energy", 1e3, "mJ"),
         "power_w": ("power", 1.0, "W")}


# ----------------------------------------------------------------------------------------------
# budgets and choices


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
    """A point and its predicted numbers in words; energy says whether it is modelled.

    >>> describe_point(points.iloc[0])  # doctest: +SKIP
    'vm: group-alexnet k=1 on cpu[0]x1, clocks as set, batch 1: accuracy 0.812, ...'
    """
    text = point_label(point) if "mapping" in point else f"k={int(point['groups'])}"
    parts = []
    if _finite(point.get("accuracy")):
        parts.append(f"accuracy {point['accuracy']:.3f}")
    for name, (label, scale, unit) in UPPER.items():
        if _finite(point.get(name)):
            modelled = " (modelled)" if name == "energy_j" and point.get("modelled") else ""
            parts.append(f"{label} {point[name] * scale:.3g} {unit}{modelled}")
    return f"{text}: {', '.join(parts)}" if parts else text


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

    >>> choice = choose(points, latency_s=0.001, min_accuracy=0.9)  # doctest: +SKIP
    >>> print(choice.message)  # doctest: +SKIP
    No operating point meets latency <= 1 ms, accuracy >= 0.900 (16 points). Closest: ...
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


# ----------------------------------------------------------------------------------------------
# the manager


def candidates(points: pd.DataFrame, mapping: str | None = None, batch: int | None = None,
               board: str | None = None, freq_label: str | None = None,
               model: str | None = None, backend: str | None = None) -> pd.DataFrame:
    """The points a running model switches between: one per k at one backend, mapping, clock.

    With a filter left None the first value (sorted) is taken, so the result always has one
    row per configuration; a table without a ``backend`` column (hand-made) is taken as is.

    >>> candidates(points, mapping="cpu[0-1]x2", batch=64, backend="onnxruntime")
    ... # doctest: +SKIP
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
    "assign_s", "measured_latency_s", "slowdown", "predicted_latency_s", "met", "budget_latency_s",
    "budget_energy_j", "budget_power_w", "min_accuracy",
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

    >>> manager = RuntimeManager(candidates(points, batch=1), model, x=images, patience=3)
    >>> record = manager.step(0.0, Budget(latency_s=0.002), measured_latency_s=0.0031)
    >>> manager.switches[["groups", "switch_cost_s", "assign_s"]]  # doctest: +SKIP
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
        if model is not None and x is not None:
            self.steady_s = steady_latency(model, x, [int(k) for k in self.table.index], probes)
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
            "cause": cause, "switch_cost_s": cost, "assign_s": assign,
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


def _rank_key(point: MappingABC[str, Any]) -> tuple[float, float, float]:
    """Sort key of a point, best first; a missing number sorts last."""
    def num(name: str, missing: float) -> float:
        value = point.get(name)
        return float(value) if _finite(value) else missing

    return (-num("accuracy", -math.inf), num("energy_j", math.inf), num("latency_s", math.inf))


def _better(a: MappingABC[str, Any], b: MappingABC[str, Any]) -> bool:
    """Whether point ``a`` ranks above ``b`` (more accurate; equal accuracy: less energy)."""
    return _rank_key(a) < _rank_key(b)


# ----------------------------------------------------------------------------------------------
# simulation


def synthetic_trace(table: pd.DataFrame, steps: int = 80, dt_s: float = 0.25,
                    margin: float = 0.85, load_slowdown: float | None = None) -> pd.DataFrame:
    """A resource trace in four phases: calm, background load, calm, a tighter latency budget.

    The latency budget lets the best configuration run with ``margin`` to spare; the load
    slows everything by ``load_slowdown`` (default: enough that the best point breaks the
    budget and the fastest still meets it); the last quarter lowers the budget to 1.1 x the
    middle configuration's latency. Columns: ``t_s``, the budgets, ``slowdown``, ``load``.

    >>> trace = synthetic_trace(candidates(points, batch=64))  # doctest: +SKIP
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

    The measured latency is the profiled one times the trace's ``slowdown`` times
    (1 + ``noise`` x a normal draw). A real ``model`` and probe input ``x`` make the switch
    costs real (``assign_s`` needs the model alone); the inferences themselves are simulated.

    >>> log = simulate(table, synthetic_trace(table), model, x=images)  # doctest: +SKIP
    >>> log[log["switched"]][["t_s", "groups", "cause", "switch_cost_s"]]  # doctest: +SKIP
    """
    rng = np.random.default_rng(seed)
    manager = RuntimeManager(table, model, x=x, patience=patience, margin=margin)
    latency = table.set_index("groups")["latency_s"]
    for row in trace.to_dict(orient="records"):
        slowdown = float(row.get("slowdown", 1.0))
        measured = float(latency[manager.current]) * slowdown * (1 + noise * rng.standard_normal())
        manager.step(row["t_s"], _budget_of(row), measured, load=bool(row.get("load", False)))
    return manager.log


# ----------------------------------------------------------------------------------------------
# live demo: a real model in this process, a real competing load


@dataclass
class LiveDemo:
    """What ``live_demo`` measured: the calibration table, the budget and the manager's log."""

    table: pd.DataFrame  # per k: latency_s measured here before the load, accuracy
    budget_latency_s: float
    log: pd.DataFrame

    @property
    def switches(self) -> pd.DataFrame:
        """The switches, with cause, ``switch_cost_s`` (first inference - steady), ``assign_s``."""
        return self.log[self.log["switched"]].reset_index(drop=True)


def start_cpu_load(workers: int | None = None) -> list[subprocess.Popen]:
    """Start ``workers`` processes (default: one per core we may use) that spin until stopped.

    >>> procs = start_cpu_load(); ...; stop_cpu_load(procs)  # doctest: +SKIP
    """
    n = workers or len(os.sched_getaffinity(0))
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n)]


def stop_cpu_load(procs: list[subprocess.Popen]) -> None:
    """Stop the processes ``start_cpu_load`` started (and only those)."""
    for p in procs:
        if p.poll() is None:
            p.terminate()
    for p in procs:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _inference(model: Any) -> contextlib.AbstractContextManager:
    """``torch.inference_mode()`` for a torch module (autograd's bookkeeping is no serving cost)."""
    torch = sys.modules.get("torch")  # not imported here: a torch model means it is loaded
    if torch is not None and isinstance(model, torch.nn.Module):
        return torch.inference_mode()
    return contextlib.nullcontext()


def _time_call(model: Any, x: Any) -> float:
    """Seconds of one inference ``model(x)``."""
    with _inference(model):
        start = time.perf_counter()
        model(x)
        return time.perf_counter() - start


def steady_latency(model: Any, x: Any, ks: list[int], probes: int = 5,
                   warmup: int = 2) -> dict[int, float]:
    """Per k: median seconds of ``probes`` inferences on ``x`` after ``warmup`` untimed ones.

    >>> steady_latency(server, images, [1, 2, 3, 4])  # doctest: +SKIP
    """
    steady = {}
    for k in ks:
        model.set_active_groups(k)
        for _ in range(warmup):  # untimed: the first calls after a switch are its cost
            _time_call(model, x)
        steady[k] = float(np.median([_time_call(model, x) for _ in range(probes)]))
    return steady


def _time_window(model: Any, x: Any, window_s: float) -> float:
    """Median seconds per inference over a window of back-to-back inferences."""
    times: list[float] = []
    end = time.perf_counter() + window_s
    while not times or time.perf_counter() < end:
        times.append(_time_call(model, x))
    return float(np.median(times))


def calibrate(model: Any, x: Any, ks: list[int], rounds: int = 3,
              window_s: float = 0.1) -> list[float]:
    """Seconds per inference of each configuration in ``ks`` on input ``x``, measured here.

    Rounds go over all k in turn and each k keeps its fastest round: a burst of other work
    on a shared machine then spoils one round of every k, not every round of one k.

    >>> calibrate(model, torch.randn(16, 1, 28, 28), [1, 2, 3, 4])  # doctest: +SKIP
    """
    import torch

    best = {k: math.inf for k in ks}
    with torch.inference_mode():
        for k in ks:
            model.set_active_groups(k)
            for _ in range(3):  # warm-up: oneDNN builds its kernels on first use
                model(x)
        for _ in range(rounds):
            for k in ks:
                model.set_active_groups(k)
                best[k] = min(best[k], _time_window(model, x, window_s))
    return [best[k] for k in ks]


def live_demo(model: Any, accuracy: MappingABC[int, float] | None = None, *,
              duration_s: float = 15.0, load_s: tuple[float, float] = (4.0, 10.0),
              batch: int = 16, step_s: float = 0.2, budget_latency_s: float | None = None,
              patience: int = 3, margin: float = 0.85, workers: int | None = None) -> LiveDemo:
    """Run ``model`` here under a latency budget while a CPU load comes and goes.

    Calibrates the latency of every k first (no load), sets the budget so the best point fits
    with head-room (unless ``budget_latency_s`` is given), then runs for ``duration_s``: each
    step measures a ``step_s`` window and lets the manager decide. ``load_s`` = (start, stop)
    of the competing load: one spinning process per core. ``accuracy`` ranks the
    configurations (eval.csv's); without it more groups count as more accurate. Switch costs
    are probed on the demo's own input.

    >>> demo = live_demo(model, dict(zip(evaluation.groups, evaluation.accuracy)))
    ... # doctest: +SKIP
    >>> demo.switches[["t_s", "direction", "cause", "switch_cost_s", "assign_s"]]
    ... # doctest: +SKIP
    """
    import torch

    spec = model.spec
    x = torch.randn(batch, spec.in_channels, spec.image_size, spec.image_size)
    model.eval()
    ks = list(range(1, model.groups + 1))
    accuracy = dict(accuracy) if accuracy else {k: k / model.groups for k in ks}
    procs: list[subprocess.Popen] = []
    with torch.inference_mode():
        table = pd.DataFrame({"groups": ks, "latency_s": calibrate(model, x, ks),
                              "accuracy": [float(accuracy[k]) for k in ks]})
        budget = budget_latency_s or float(_ranked(table).iloc[0]["latency_s"]) / margin * 1.1
        manager = RuntimeManager(table, model, x=x, patience=patience, margin=margin)
        t0 = time.perf_counter()
        try:
            while (t := time.perf_counter() - t0) < duration_s:
                want = load_s[0] <= t < load_s[1]
                if want and not procs:
                    procs = start_cpu_load(workers)
                elif not want and procs:
                    stop_cpu_load(procs)
                    procs = []
                measured = _time_window(model, x, step_s)
                manager.step(round(t, 3), Budget(latency_s=budget), measured, load=bool(procs))
        finally:
            stop_cpu_load(procs)  # the load never outlives the demo, whatever happened
    return LiveDemo(table, budget, manager.log)
