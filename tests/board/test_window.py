from __future__ import annotations

import pytest

from dyndnn.board.meter import Measurement, Meter
from dyndnn.board.modelled import ModelledCpuMeter
from dyndnn.board.window import measure, window_length_s


class FixedPowerMeter(Meter):
    name = "fixed"

    def __init__(self, period_s):
        import time

        self.update_period_s, self.clock, self.events = period_s, time.perf_counter, []

    def start(self):
        self.events.append("start")
        self.t0 = self.clock()

    def stop(self):
        self.events.append("stop")
        d = self.clock() - self.t0
        return Measurement(10.0 * d, d, {"x": 10.0 * d}, self.update_period_s, self.name)


def test_window_is_ten_update_periods():
    meter = FixedPowerMeter(0.01)
    calls = []
    r = measure(lambda: calls.append(1), meter, min_window_s=0.0)
    assert r.duration_s >= 0.1
    assert r.calls == len(calls) > 100
    assert r.latency_s == pytest.approx(r.duration_s / r.calls)
    assert r.energy_j == pytest.approx(10.0 * r.latency_s)
    assert r.power_w == pytest.approx(10.0)
    assert window_length_s(meter, 0.3) == 0.3


def test_sync_runs_inside_the_window():
    meter = FixedPowerMeter(0.001)
    syncs = []
    r = measure(lambda: None, meter, 0.02, sync=lambda: syncs.append(list(meter.events)))
    assert syncs[0] == [] and syncs[-1] == ["start"]  # before start, and before the stop read
    assert r.duration_s >= 0.02


def test_max_calls_bounds_the_loop():
    r = measure(lambda: None, ModelledCpuMeter(update_period_s=10), max_calls=7)
    assert r.calls == 7
