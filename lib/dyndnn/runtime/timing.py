"""Timing inferences: one call, each configuration's steady latency, a calibration.

``model`` is anything with ``set_active_groups(k)`` and ``__call__(x)`` (a ``DynamicModel``, a
``serve.Server``); a torch module is timed under ``torch.inference_mode()``.

>>> class Echo:
...     def set_active_groups(self, k):
...         self.k = k
...     def __call__(self, x):
...         return x
>>> sorted(steady_latency(Echo(), 0, [1, 2], probes=3))
[1, 2]
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from typing import Any

import numpy as np

from dyndnn.runtime.budgets import eng_text


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

    >>> import torch
    >>> from dyndnn.models import GroupNet
    >>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
    >>> latency = steady_latency(model, torch.randn(4, 1, 28, 28), [1, 2])
    >>> sorted(latency), all(seconds > 0 for seconds in latency.values())
    ([1, 2], True)
    """
    return steady_latency_and_noise(model, x, ks, probes, warmup)[0]


def steady_latency_and_noise(model: Any, x: Any, ks: list[int], probes: int = 5,
                             warmup: int = 2) -> tuple[dict[int, float], dict[int, float]]:
    """``steady_latency`` and, per k, its noise floor: the slowest probe minus the median.

    A switch's first inference within the noise floor of the steady one (or below it) is
    not a measured switch cost: an ordinary inference lands there too.

    >>> import torch
    >>> from dyndnn.models import GroupNet
    >>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
    >>> steady, noise = steady_latency_and_noise(model, torch.randn(4, 1, 28, 28), [1, 2])
    >>> all(noise[k] >= 0 for k in (1, 2))
    True
    """
    steady, noise = {}, {}
    for k in ks:
        model.set_active_groups(k)
        for _ in range(warmup):  # untimed: the first calls after a switch are its cost
            _time_call(model, x)
        times = [_time_call(model, x) for _ in range(probes)]
        steady[k] = float(np.median(times))
        noise[k] = float(max(times)) - steady[k]
    return steady, noise


def switch_cost_text(cost_s: float, noise_s: float | None = None) -> str:
    """A measured switch cost for a reader: below the noise floor (or negative) says so.

    >>> switch_cost_text(4.2e-5, 1e-5), switch_cost_text(-3e-6, 1e-5)
    ('42 µs', 'below the noise floor (measured -3 µs; steady inferences spread 10 µs)')
    >>> switch_cost_text(float("nan"))
    'not measured'
    """
    if not np.isfinite(cost_s):
        return "not measured"
    floor = noise_s if noise_s is not None and np.isfinite(noise_s) else 0.0
    if cost_s <= floor:
        spread = f"; steady inferences spread {eng_text(floor, 's')}" if floor else ""
        return f"below the noise floor (measured {eng_text(cost_s, 's')}{spread})"
    return eng_text(cost_s, "s")


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

    >>> import torch
    >>> from dyndnn.models import GroupNet
    >>> model = GroupNet(groups=2, width=0.25, in_channels=1, image_size=28).eval()
    >>> seconds = calibrate(model, torch.randn(4, 1, 28, 28), [1, 2], rounds=1, window_s=0.01)
    >>> len(seconds), all(s > 0 for s in seconds)      # per k, in the order of ks
    (2, True)
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
