from __future__ import annotations

import threading
import time

import pytest

from dyndnn.board.errors import BoardPermissionError, SensorError
from dyndnn.board.ina231 import Ina231Meter, find_ina231_rails

from .fakesys import make_ina231, swap

DEVS = {"3-0040": 2.5, "3-0041": 0.25, "3-0044": 0.125, "3-0045": 0.5}


def test_rails_period_and_enable(tmp_path):
    make_ina231(tmp_path, DEVS, enabled="0")
    assert [r.rail for r in find_ina231_rails(tmp_path)] == ["A15", "mem", "GPU", "A7"]
    meter = Ina231Meter(tmp_path, poll_period_s=0.005)
    assert meter.update_period_s == pytest.approx(0.263808)
    meter.start()
    assert all(r.enabled() for r in meter.rails)  # enable written first
    time.sleep(0.03)
    m = meter.stop()
    assert m.rail_energy_j["A15"] == pytest.approx(2.5 * m.duration_s, rel=1e-6)
    assert m.energy_j == pytest.approx(sum(DEVS.values()) * m.duration_s, rel=1e-6)
    assert m.update_period_s == meter.update_period_s


def test_power_steps_are_integrated(tmp_path):
    make_ina231(tmp_path, {"3-0040": 1.0}, enabled="1")
    f = tmp_path / "sys/bus/i2c/drivers/INA231/3-0040/sensor_W"
    meter = Ina231Meter(tmp_path, poll_period_s=0.002)
    meter.start()
    time.sleep(0.05)
    swap(f, 3.0)
    time.sleep(0.05)
    m = meter.stop()
    # about 0.05 s at 1 W and 0.05 s at 3 W; the step's edge costs at most one poll
    assert 0.16 < m.energy_j < 0.24
    assert 1.6 < m.power_w < 2.4


def test_disabled_sensor_without_permission(tmp_path, as_non_root):
    make_ina231(tmp_path, DEVS, enabled="0")
    (tmp_path / "sys/bus/i2c/drivers/INA231/3-0044/enable").chmod(0o444)
    meter = Ina231Meter(tmp_path)
    with pytest.raises(BoardPermissionError, match="3-0044/enable"):
        meter.start()


def test_sensor_vanishing_mid_run_is_named_not_hung(tmp_path):
    make_ina231(tmp_path, DEVS, enabled="1")
    meter = Ina231Meter(tmp_path, poll_period_s=0.002)
    meter.start()
    gone = tmp_path / "sys/bus/i2c/drivers/INA231/3-0041/sensor_W"
    gone.unlink()
    time.sleep(0.02)
    t0 = time.perf_counter()
    with pytest.raises(SensorError, match="3-0041/sensor_W") as info:
        meter.stop()
    assert time.perf_counter() - t0 < 1.0
    assert info.value.path == gone
    assert not any(t.name.startswith("ina231") for t in threading.enumerate())


def test_no_sensors(tmp_path):
    with pytest.raises(SensorError, match="no INA231"):
        Ina231Meter(tmp_path)
