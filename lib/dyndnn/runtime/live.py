"""The live demo: a real model in this process under a latency budget, a real competing load.

``live_demo`` calibrates every configuration, then lets a ``RuntimeManager`` keep the model
within the budget while ``start_cpu_load`` spins one process per core for a while.

Usage (it measures this host for ``duration_s``, 15 s by default)::

    result = live_demo(model, accuracy={1: 0.80, 2: 0.85, 3: 0.87, 4: 0.88})
    result.switches[["t_s", "previous_groups", "groups", "cause", "switch_cost_s", "assign_s"]]
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass
from typing import Any

import pandas as pd

from dyndnn.runtime.budgets import Budget
from dyndnn.runtime.choice import _ranked
from dyndnn.runtime.manager import RuntimeManager
from dyndnn.runtime.timing import _time_window, calibrate


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

    >>> procs = start_cpu_load(workers=1)
    >>> [p.poll() is None for p in procs]            # spinning
    [True]
    >>> stop_cpu_load(procs)
    >>> [p.poll() is None for p in procs]            # gone
    [False]
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

    Usage, with the accuracies of a run's ``eval.csv``::

        demo = live_demo(model, dict(zip(evaluation.groups, evaluation.accuracy)))
        demo.switches[["t_s", "direction", "cause", "switch_cost_s", "assign_s"]]
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
