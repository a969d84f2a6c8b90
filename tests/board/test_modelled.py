from __future__ import annotations

import dataclasses
import hashlib
import threading
import time

import pytest

from dyndnn.board.errors import BoardError
from dyndnn.board.modelled import CpuPowerModel, ModelledCpuMeter

from .fakesys import make_policy


def test_model_scales_like_f_v_squared():
    model = CpuPowerModel()
    assert model.core_power_w() == pytest.approx(model.core_power_at_ref_w)
    half = model.core_power_w(model.ref_freq_khz / 2)
    v_half = model.voltage_v(model.ref_freq_khz / 2)
    assert half == pytest.approx(model.core_power_at_ref_w * 0.5 * v_half**2)
    assert model.voltage_v(100) == model.volt_at_min_v  # never below the minimum voltage
    assert model.power_w(0) == model.idle_power_w
    assert model.power_w(2) > model.power_w(1) > model.power_w(0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.idle_power_w = 3.0
    with pytest.raises(BoardError):
        CpuPowerModel(min_freq_khz=3_000_000)


def test_calibrate_recovers_parameters():
    truth = CpuPowerModel(idle_power_w=0.8, core_power_at_ref_w=1.7)
    points = [(n, f, truth.power_w(n, f)) for n in (0, 1, 2, 4) for f in (600_000, 1_400_000)]
    fitted = CpuPowerModel().calibrate(points)
    assert fitted.idle_power_w == pytest.approx(0.8)
    assert fitted.core_power_at_ref_w == pytest.approx(1.7)


def _spin(seconds):
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def test_meter_charges_cpu_time_not_wall_time():
    model = CpuPowerModel(idle_power_w=1.0, core_power_at_ref_w=2.0)
    meter = ModelledCpuMeter(model, root="/nonexistent", freq_khz=model.ref_freq_khz)
    meter.start()
    time.sleep(0.1)
    idle = meter.stop()
    meter.start()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    _spin(0.1)
    share = (time.process_time() - cpu0) / (time.perf_counter() - wall0)
    busy = meter.stop()
    assert idle.provenance == busy.provenance == "modelled" and busy.meter == "modelled-cpu"
    assert "f V^2" in busy.source
    assert idle.rail_energy_j["cores"] < 0.2 * busy.rail_energy_j["cores"]
    # one busy core for the window: P ~ 1 W idle + 2 W core x the share of a core this
    # process got (1 alone; less while other processes compete, as tests in parallel do)
    assert share > 0.2
    assert busy.power_w == pytest.approx(1.0 + 2.0 * share, rel=0.25)
    assert idle.power_w == pytest.approx(1.0, abs=0.3)


def test_meter_reads_cpufreq_when_present(tmp_path):
    make_policy(tmp_path, 0, tuple(range(64)), (400_000, 1_000_000, 2_000_000), cur_khz=400_000)
    slow = ModelledCpuMeter(root=tmp_path)
    fast = ModelledCpuMeter(freq_khz=2_000_000)
    out = []
    for meter in (slow, fast):
        meter.start()
        _spin(0.05)
        m = meter.stop()
        out.append(m.rail_energy_j["cores"] / m.duration_s)
    assert out[0] < 0.5 * out[1]  # 400 MHz at low voltage costs far less per busy second


def test_a_thread_busy_on_another_core_is_read_from_its_own_clock(monkeypatch):
    """Every thread's time counts, read exactly, a thread started inside the window whole;
    not from the process clock, which adds other threads' time only at scheduler ticks."""
    model = CpuPowerModel(idle_power_w=0.0, core_power_at_ref_w=1.0)  # 1 J per CPU second
    meter = ModelledCpuMeter(model, root="/nonexistent", freq_khz=model.ref_freq_khz)
    assert meter.update_period_s == 0.001  # exact clocks: the window is what a config asks
    stop, spent = threading.Event(), {}

    def spin():
        data = b"x" * (1 << 20)
        while not stop.is_set():
            hashlib.sha256(data).digest()  # in C, without the GIL
        spent["cpu_s"] = time.thread_time()

    meter.start()
    spinner = threading.Thread(target=spin)
    spinner.start()
    time.sleep(0.05)
    monkeypatch.setattr(time, "process_time", lambda: pytest.fail("read the process clock"))
    measured = meter.stop()
    stop.set()
    spinner.join()
    # the spinner's time at the window's end, give or take its last hash and this thread's
    assert measured.rail_energy_j["cores"] == pytest.approx(spent["cpu_s"], abs=0.005)
    assert spent["cpu_s"] > 0.005  # it did run inside the window
