from __future__ import annotations

import itertools
import time

import pytest

from dyndnn.board.errors import BoardError
from dyndnn.board.meter import Measurement, SamplingMeter


def test_measurement_power():
    m = Measurement(3.0, 1.5, {"a": 3.0}, 0.1, "x", "measured")
    assert m.power_w == pytest.approx(2.0)
    assert Measurement(1.0, 0.0).power_w != Measurement(1.0, 0.0).power_w  # NaN
    with pytest.raises(ValueError, match="provenance must be one of"):
        Measurement(1.0, 1.0, provenance="guessed")


class _Ramp(SamplingMeter):
    """Power rises 10 W per second: the trapezoid integral is exact for it."""

    name = "ramp"
    update_period_s = 0.001

    def __init__(self):
        super().__init__(poll_period_s=0.002)
        self.t0 = time.perf_counter()
        self.count = itertools.count()

    def read_power_w(self):
        next(self.count)
        return {"r": 10.0 * (time.perf_counter() - self.t0)}


def test_sampling_meter_integrates_and_polls_in_background():
    meter = _Ramp()
    meter.start()
    time.sleep(0.05)
    m = meter.stop()
    # exact for a linear ramp, up to the small gap between a read and its timestamp
    t_a, t_b = meter._t[0] - meter.t0, meter._t[-1] - meter.t0
    assert m.energy_j == pytest.approx(5.0 * (t_b**2 - t_a**2), rel=0.05)
    assert m.rail_energy_j["r"] == pytest.approx(m.energy_j)
    assert len(meter._t) > 4  # the thread read between start and stop
    with pytest.raises(BoardError, match="without start"):
        meter.stop()


def test_sampling_meter_restart_discards_unfinished_window():
    meter = _Ramp()
    meter.start()
    time.sleep(0.01)
    meter.start()  # a notebook cell crashed before stop()
    m = meter.stop()
    assert m.duration_s < 0.01 + 0.05
    assert meter._thread is None
