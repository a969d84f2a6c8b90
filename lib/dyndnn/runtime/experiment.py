"""The runtime experiment: policies against contention scenarios, measured window by window.

The run's group model is served in one worker process per mapping (``MappedWorker``: pinned
cores, its own thread count), on each backend; the co-running work of a scenario comes and
goes around it (``CoRunners``). Each policy plays each scenario in turn, in rounds whose
policy order rotates (interleaved, so a drift of the machine does not favour one), and every
window of ``window_s`` back-to-back batch-1 inferences is one row of ``runtime.csv``: when,
what ran (k, mapping, and whether it was a probe), its median and 99th-percentile latency,
how many inferences missed the budget, and the load at that moment.

The budget is relative to the calibration: ``budget_factor`` x the full configuration's
latency on every core, measured here unloaded just before (so k = G meets it when calm).

Usage (the ``runtime`` stage does this on a run folder)::

    accuracy = validation_accuracy(layout)
    rows, calibration, bounds = run_experiment(layout, 4, accuracy, backends=["eager"],
                                               scenarios=["hog"])
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from dyndnn.board.mapping import MappedWorker, Mapping, call_all, close_all, start_all
from dyndnn.errors import DyndnnError
from dyndnn.record.layout import GROUP_MODEL, RunLayout
from dyndnn.runtime.corunner import command as corunner_command
from dyndnn.runtime.corunners import CoRunners
from dyndnn.runtime.policies import POLICIES, make_policy
from dyndnn.runtime.scenarios import scenario as make_scenario

_ENGINE: dict[str, Any] = {}  # inside a worker: the engine it serves


def _load_engine(run_dir: str, family: str, groups: int, backend: str, threads: int) -> int:
    """Worker side: load the family's model and serve it with ``backend``; returns G."""
    import torch

    from dyndnn.record.checkpoint import load_final_model

    model = load_final_model(RunLayout(run_dir), family, groups).eval()
    spec = model.spec
    from dyndnn.serve.engines import engine, wants_numpy

    x = torch.randn(1, spec.in_channels, spec.image_size, spec.image_size)
    _ENGINE.clear()  # the last backend's engine (and its thread pool) goes before this one
    _ENGINE.update(engine=engine(model, backend, threads),
                   x=x.numpy() if wants_numpy(backend) else x)
    return model.groups


def _window(k: int, window_s: float) -> np.ndarray:
    """Worker side: back-to-back inferences at k for ``window_s``; their latencies (s)."""
    import torch

    engine, x = _ENGINE["engine"], _ENGINE["x"]
    engine.set_active_groups(k)
    times: list[float] = []
    with torch.inference_mode():
        end = time.perf_counter() + window_s
        while not times or time.perf_counter() < end:
            start = time.perf_counter()
            engine(x)
            times.append(time.perf_counter() - start)
    return np.asarray(times)


def host_mappings() -> list[Mapping]:
    """Each core alone with one thread, then every core with one thread each.

    >>> host_mappings()[-1].label == Mapping("cpu").label   # every core, last
    True
    """
    cores = sorted(os.sched_getaffinity(0))
    singles = [Mapping("cpu", (c,), 1) for c in cores] if len(cores) > 1 else []
    return [*singles, Mapping("cpu", tuple(cores), len(cores))]


def calibrate(workers: dict[str, MappedWorker], groups: int, window_s: float,
              rounds: int = 2) -> pd.DataFrame:
    """Each (k, mapping)'s median latency unloaded: the fastest of ``rounds`` windows."""
    best: dict[tuple[int, str], float] = {}
    for _ in range(rounds):
        for label, worker in workers.items():
            for k in range(1, groups + 1):
                median = float(np.median(worker.call(_window, k, window_s).value))
                best[(k, label)] = min(best.get((k, label), np.inf), median)
    return pd.DataFrame([{"groups": k, "mapping": m, "latency_s": v}
                         for (k, m), v in best.items()])


def play(policy: Any, scenario: Any, corunners: CoRunners, workers: dict[str, MappedWorker],
         budget_s: float, window_s: float) -> list[dict[str, Any]]:
    """One policy through one scenario; a row per window."""
    rows, previous = [], None
    start = time.monotonic()
    t = 0.0
    while t < scenario.duration_s:
        corunners.apply(t)
        k, mapping = policy.decide()
        latencies = workers[mapping].call(_window, k, window_s).value
        median = float(np.median(latencies))
        policy.observe(k, mapping, median)
        rows.append({"t_s": round(t, 4), "k": k, "mapping": mapping,
                     "probe": bool(getattr(policy, "probe", False)),
                     "switched": previous is not None and previous != (k, mapping),
                     "first_latency_s": float(latencies[0]), "latency_s": median,
                     "p99_s": float(np.percentile(latencies, 99)),
                     "inferences": int(len(latencies)),
                     "over_budget": int((latencies > budget_s).sum()),
                     "budget_s": budget_s, "missed": median > budget_s,
                     "load": scenario.load_at(t)})
        previous = (k, mapping)
        t = time.monotonic() - start
    corunners.apply(-1.0)  # nothing runs between plays
    return rows


def run_experiment(layout: RunLayout, groups: int, accuracy: dict[int, float], *,
                   backends: Sequence[str] = ("eager", "onnxruntime"),
                   scenarios: Sequence[str] = ("hog", "second_dnn", "burst"),
                   policies: tuple[str, ...] = POLICIES, duration_s: float = 12.0,
                   window_s: float = 0.2, rounds: int = 2, budget_factor: float = 1.15,
                   seed: int = 0, corunner_family: str | None = None,
                   say: Callable[[str], None] = lambda _: None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, dict[tuple[str, int], list[float]]]:
    """Every policy on every scenario and backend, interleaved over ``rounds``.

    ``accuracy``: each k's validation accuracy (``validation_accuracy``), which the policies
    rank by. Returns ``runtime.csv``'s rows, the calibration (per backend, k and mapping) and
    the phase bounds of every (scenario, round) played (round r plays seed + r).
    ``corunner_family``: the model the ``dnn`` co-runner serves (default: independent
    where trained, else the group model itself).
    """
    mappings = host_mappings()
    default = mappings[-1].label
    cores = tuple(sorted(os.sched_getaffinity(0)))
    family = corunner_family or ("independent" if layout.final_checkpoint(
        "independent", groups).is_file() else GROUP_MODEL)
    rows, calibrations = [], []
    played = {(name, r + 1): make_scenario(name, duration_s, cores, seed + r)
              for r, name in itertools.product(range(rounds), scenarios)}
    workers: dict[str, MappedWorker] = {}
    try:
        # one worker per mapping for every backend, each loaded in turn (a worker's start,
        # a process and torch's import, costs seconds: they start together); inside the
        # try: a worker that fails to start closes the rest
        workers.update({m.label: MappedWorker(m) for m in mappings})
        start_all(list(workers.values()))
        for backend in backends:
            call_all([(workers[m.label], _load_engine,  # not measured: all at once
                       (str(layout.root), GROUP_MODEL, groups, backend, m.threads))
                      for m in mappings])
            table = calibrate(workers, groups, window_s)
            table["backend"] = backend
            calibrations.append(table)
            ranked = table.assign(accuracy=table["groups"].map(accuracy))
            full = table[(table["groups"] == groups) & (table["mapping"] == default)]
            budget_s = budget_factor * float(full["latency_s"].iloc[0])
            say(f"{backend}: budget {budget_s * 1e3:.3g} ms ({budget_factor} x k={groups} on "
                f"{default}, calibrated here)")
            for (_, round_), scen in played.items():
                r = round_ - 1
                dnn = corunner_command(str(layout.root), family, groups, backend)
                with CoRunners(scen, dnn) as corunners:
                    shift = r % len(policies)  # each round starts with another policy
                    order = [*policies[shift:], *policies[:shift]]
                    for policy_name in order:
                        say(f"{backend}, round {r + 1}/{rounds}, {scen.name}: {policy_name}")
                        policy = make_policy(policy_name, ranked, budget_s, default)
                        for row in play(policy, scen, corunners, workers, budget_s, window_s):
                            rows.append({"scenario": scen.name, "policy": policy_name,
                                         "backend": backend, "round": r + 1, **row})
    finally:
        close_all(list(workers.values()))
    bounds = {key: scen.phase_bounds() for key, scen in played.items()}
    return pd.DataFrame(rows), pd.concat(calibrations, ignore_index=True), bounds


def validation_accuracy(layout: RunLayout) -> dict[int, float]:
    """Each configuration's validation accuracy from eval.csv (the test split is not read)."""
    evaluation = pd.read_csv(layout.eval_csv)
    group = evaluation[evaluation["model"] == GROUP_MODEL]
    if "val_accuracy" not in group or group["val_accuracy"].isna().any():
        raise DyndnnError(f"{layout.eval_csv} has no validation accuracy per configuration "
                          "(val_accuracy): run the evaluate stage again; the policies rank "
                          "configurations on validation, never on the test split")
    return dict(zip(group["groups"].astype(int), group["val_accuracy"], strict=True))
