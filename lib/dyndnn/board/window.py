"""Measurement windows: repeat a short call until the meter can see it.

A sensor refreshing every 264 ms cannot measure a 2 ms inference; repeating the inference for
at least 10 refresh periods inside one window can. ``measure`` does that and divides.

>>> from dyndnn.board.modelled import ModelledCpuMeter
>>> r = measure(lambda: sum(range(1000)), ModelledCpuMeter(), min_window_s=0.05)
>>> r.calls > 1 and r.duration_s >= 0.05
True
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from dyndnn.board.meter import Measurement, Meter

PERIODS_PER_WINDOW = 10  # a window spans at least this many sensor refresh periods


@dataclass(frozen=True)
class WindowResult:
    """One window: ``calls`` calls of ``fn``; per-call latency and energy are means."""

    calls: int
    duration_s: float
    latency_s: float
    energy_j: float
    power_w: float
    measurement: Measurement


def window_length_s(meter: Meter, min_window_s: float = 0.0) -> float:
    """The shortest window ``measure`` uses with ``meter``.

    >>> from dyndnn.board.modelled import ModelledCpuMeter
    >>> window_length_s(ModelledCpuMeter(update_period_s=0.01), min_window_s=0.05)
    0.1
    """
    return max(min_window_s, PERIODS_PER_WINDOW * meter.update_period_s)


def measure(
    fn: Callable[[], object],
    meter: Meter,
    min_window_s: float = 0.0,
    sync: Callable[[], object] | None = None,
    max_calls: int = 10_000_000,
) -> WindowResult:
    """Call ``fn`` repeatedly inside one meter window of at least ``window_length_s``.

    ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each timestamp, so queued GPU work
    is inside the window it belongs to.
    """
    target_s = window_length_s(meter, min_window_s)
    if sync:
        sync()
    meter.start()
    t0 = time.perf_counter()
    calls = 0
    while True:
        fn()
        calls += 1
        if calls >= max_calls or time.perf_counter() - t0 >= target_s:
            break
    if sync:
        sync()  # queued GPU calls belong to this window: wait for them before the stop read
    m = meter.stop()
    duration_s = m.duration_s
    return WindowResult(calls, duration_s, duration_s / calls, m.energy_j / calls, m.power_w, m)
