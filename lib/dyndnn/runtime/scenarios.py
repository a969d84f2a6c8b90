"""Contention scenarios as data: what co-runs where, and when, beside the measured model.

A scenario is a table of phases, one row each: ``start_s``, ``end_s``, ``corunner`` (what
runs: ``cpu_hog``, a process spinning on each of its cores, or ``dnn``, a second inference
loop of another model of the run on the same engine) and ``cores`` (a CPU list such as
``1`` or ``0-1``). Time outside every phase is calm. A board user writes one as a CSV with
those columns (``read_scenario``); the three built in are sized to this host's cores.

>>> hog = builtin_scenario("hog", duration_s=8.0, cores=(0, 1))
>>> print(hog.phases.to_string(index=False))
 start_s  end_s corunner cores
     2.0    4.0  cpu_hog     1
     4.0    6.0  cpu_hog   0-1
>>> hog.load_at(3.0), hog.load_at(7.0)
('cpu_hog on 1', 'calm')
>>> burst = builtin_scenario("burst", duration_s=12.0, cores=(0, 1), seed=0)
>>> burst.phases.equals(builtin_scenario("burst", duration_s=12.0, cores=(0, 1), seed=0).phases)
True
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from dyndnn.board.sysfs import format_cpu_list, parse_cpu_list
from dyndnn.errors import ConfigError

CORUNNERS = ("cpu_hog", "dnn")
BUILTIN = ("hog", "second_dnn", "burst")
COLUMNS = ["start_s", "end_s", "corunner", "cores"]


@dataclass(frozen=True)
class Scenario:
    """A named, validated phase table over ``duration_s`` seconds."""

    name: str
    duration_s: float
    phases: pd.DataFrame

    def __post_init__(self) -> None:
        check_phases(self.phases, self.duration_s, self.name)

    def active(self, t_s: float) -> pd.DataFrame:
        """The phases running at ``t_s`` seconds after the start."""
        p = self.phases
        return p[(p["start_s"] <= t_s) & (t_s < p["end_s"])]

    def load_at(self, t_s: float) -> str:
        """What co-runs at ``t_s``, in words (``calm`` when nothing does)."""
        rows = self.active(t_s)
        return "; ".join(f"{r.corunner} on {r.cores}" for r in rows.itertuples()) or "calm"

    def phase_bounds(self) -> list[float]:
        """Every time at which the load changes, with 0 and the end: the oracle's phases."""
        times = {0.0, float(self.duration_s), *self.phases["start_s"], *self.phases["end_s"]}
        return sorted(t for t in times if 0 <= t <= self.duration_s)


def check_phases(phases: pd.DataFrame, duration_s: float, name: str = "scenario") -> None:
    """Refuse a phase table a run could not play: missing columns, unknown co-runners, bad times.

    >>> bad = pd.DataFrame({"start_s": [3.0], "end_s": [1.0], "corunner": ["cpu_hog"],
    ...                     "cores": ["0"]})
    >>> check_phases(bad, 5.0)
    Traceback (most recent call last):
    dyndnn.errors.ConfigError: scenario: phase 1 ends (1.0 s) before it starts (3.0 s)
    """
    missing = [c for c in COLUMNS if c not in phases]
    if missing:
        raise ConfigError(f"{name}: a scenario table needs the columns {', '.join(COLUMNS)}; "
                          f"missing {', '.join(missing)}")
    if not 0 < duration_s <= 3600:
        raise ConfigError(f"{name}: duration_s must be in (0, 3600] seconds; got {duration_s}")
    for i, row in enumerate(phases.itertuples(), start=1):
        if row.corunner not in CORUNNERS:
            raise ConfigError(f"{name}: phase {i}: unknown co-runner {row.corunner!r}; "
                              f"known: {', '.join(CORUNNERS)}")
        if not 0 <= row.start_s <= duration_s or not 0 <= row.end_s <= duration_s:
            raise ConfigError(f"{name}: phase {i} ({row.start_s}-{row.end_s} s) lies outside "
                              f"the scenario's 0-{duration_s} s")
        if row.end_s <= row.start_s:
            raise ConfigError(f"{name}: phase {i} ends ({row.end_s} s) before it starts "
                              f"({row.start_s} s)")
        try:
            if not parse_cpu_list(str(row.cores)):
                raise ValueError("no core")
        except ValueError as exc:
            raise ConfigError(f"{name}: phase {i}: cores {row.cores!r} is no CPU list "
                              "(e.g. 1 or 0-1)") from exc


def builtin_scenario(name: str, duration_s: float, cores: tuple[int, ...],
                     seed: int = 0) -> Scenario:
    """A built-in scenario over ``cores``.

    ``hog``: one core, then all; ``second_dnn``: another model's loop in the middle half;
    ``burst``: a hog on every core, on and off for a seeded 1-3 s each.
    """
    last, every = str(cores[-1]), format_cpu_list(cores)
    quarter = duration_s / 4
    if name == "hog":
        rows = [(quarter, 2 * quarter, "cpu_hog", last), (2 * quarter, 3 * quarter, "cpu_hog",
                                                           every)]
    elif name == "second_dnn":
        rows = [(quarter, 3 * quarter, "dnn", every)]
    elif name == "burst":
        rng, t, on, rows = np.random.default_rng(seed), 0.0, False, []
        while t < duration_s:
            length = float(rng.uniform(1.0, 3.0))
            if on:
                rows.append((round(t, 2), round(min(t + length, duration_s), 2), "cpu_hog",
                             every))
            t, on = t + length, not on
    else:
        raise ConfigError(f"unknown scenario {name!r}; built in: {', '.join(BUILTIN)} "
                          "(or a CSV file with columns start_s, end_s, corunner, cores)")
    phases = pd.DataFrame(rows, columns=COLUMNS).astype({"start_s": float, "end_s": float})
    return Scenario(name, float(duration_s), phases)


def read_scenario(path: str | Path, duration_s: float | None = None) -> Scenario:
    """A scenario from a CSV file; its duration is ``duration_s`` or the last phase's end."""
    path = Path(path)
    try:
        phases = pd.read_csv(path, dtype={"cores": str})
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the scenario file {path}: {exc}") from exc
    end = float(phases["end_s"].max()) if "end_s" in phases and len(phases) else 0.0
    return Scenario(path.stem, float(duration_s or end), phases)


def scenario(name: str, duration_s: float, cores: tuple[int, ...], seed: int = 0) -> Scenario:
    """A built-in scenario by name, or one read from a CSV file (a name ending in ``.csv``)."""
    if name.endswith(".csv"):
        return read_scenario(name, duration_s)
    return builtin_scenario(name, duration_s, cores, seed)
