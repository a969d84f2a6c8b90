"""What a switch really costs, on any engine: the first inference after it minus a steady one.

``set_active_groups(k)`` itself is an assignment (a few microseconds); what a running system
pays is that the first inference at the new configuration runs colder (another session's
buffers, oneDNN primitives at new shapes, caches holding the previous configuration's
weights). ``switch_costs`` measures it per configuration, in interleaved rounds, each round
leaving a *different* configuration just before switching to k:

    switch_s = median(first inference after switching to k) - median(steady inference at k)

Works for an eager ``DynamicModel`` (call it inside ``torch.inference_mode()``) and for a
``Server`` alike: anything with ``groups``, ``set_active_groups(k)`` and ``__call__(x)``.

>>> import numpy as np
>>> from dyndnn.models import GroupNet
>>> from dyndnn.serve import Server
>>> server = Server(GroupNet(groups=2, width=0.25, in_channels=1, image_size=28))
>>> images = np.zeros((1, 1, 28, 28), np.float32)
>>> rows = switch_costs(server, images, rounds=5)  # medians of 5 rounds, here
>>> [row["groups"] for row in rows], sorted(rows[0])
([1, 2], ['assign_s', 'first_s', 'groups', 'steady_s', 'switch_s'])
>>> all(row["switch_s"] == row["first_s"] - row["steady_s"] for row in rows)
True
"""

from __future__ import annotations

import statistics
import time
from typing import Any


def switch_costs(runner: Any, x: Any, rounds: int = 50, warmup: int = 3) -> list[dict[str, Any]]:
    """Per configuration k: ``assign_s``, ``first_s``, ``steady_s`` and ``switch_s`` (medians).

    ``switch_s`` is ``first_s - steady_s``; it can come out slightly negative where a switch
    costs nothing measurable (two medians of noisy timings).
    """
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1; got {rounds}")
    ks = list(range(1, runner.groups + 1))
    for k in ks:  # every configuration warm before timing any
        runner.set_active_groups(k)
        for _ in range(warmup):
            runner(x)
    times: dict[int, dict[str, list[float]]] = {
        k: {"assign_s": [], "first_s": [], "steady_s": []} for k in ks}
    clock = time.perf_counter
    for r in range(rounds):
        for i, k in enumerate(ks):
            if len(ks) > 1:  # leave from another configuration, a different one each round
                runner.set_active_groups(ks[(i + 1 + r % (len(ks) - 1)) % len(ks)])
                runner(x)
            t0 = clock()
            runner.set_active_groups(k)
            t1 = clock()
            runner(x)
            t2 = clock()
            runner(x)
            t3 = clock()
            times[k]["assign_s"].append(t1 - t0)
            times[k]["first_s"].append(t2 - t1)
            times[k]["steady_s"].append(t3 - t2)
    rows = []
    for k in ks:
        row: dict[str, Any] = {"groups": k}
        row.update({name: statistics.median(v) for name, v in times[k].items()})
        row["switch_s"] = row["first_s"] - row["steady_s"]
        rows.append(row)
    runner.set_active_groups(runner.groups)
    return rows
