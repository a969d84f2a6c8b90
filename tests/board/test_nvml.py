from __future__ import annotations

import math
import time

import pytest

from dyndnn.board.auto import auto_meter
from dyndnn.board.discovery import discover
from dyndnn.board.errors import SensorError
from dyndnn.board.nvml import NvmlEnergyMeter, NvmlPowerMeter, nvml_meter


class FakeNVMLError(Exception):
    pass


class FakeNvml:
    """The NVML boundary, as nvidia-ml-py exposes it (energy in mJ, power in mW)."""

    NVMLError = FakeNVMLError

    def __init__(self, energy_counter=True, driver=True, power_mw=50_000, gpus=1):
        self.energy_counter, self.driver, self.power_mw, self.gpus = (
            energy_counter, driver, power_mw, gpus
        )  # fmt: skip
        self.energy_mj = 123_456_789
        self.initialised = 0

    def nvmlInit(self):
        if not self.driver:
            raise FakeNVMLError("Driver Not Loaded")
        self.initialised += 1

    def nvmlShutdown(self):
        self.initialised -= 1

    def nvmlDeviceGetCount(self):
        return self.gpus

    def nvmlDeviceGetHandleByIndex(self, index):
        if index >= self.gpus:
            raise FakeNVMLError("Invalid Argument")
        return ("handle", index)

    def nvmlDeviceGetTotalEnergyConsumption(self, handle):
        if not self.energy_counter:
            raise FakeNVMLError("Not Supported")
        return self.energy_mj

    def nvmlDeviceGetPowerUsage(self, handle):
        return self.power_mw


def test_energy_counter_difference():
    fake = FakeNvml()
    meter = nvml_meter(0, fake)
    assert isinstance(meter, NvmlEnergyMeter)
    meter.start()
    fake.energy_mj += 2_500
    m = meter.stop()
    assert m.energy_j == pytest.approx(2.5)
    assert m.rail_energy_j == {"gpu0": pytest.approx(2.5)}
    assert m.meter == "nvml-energy" and m.provenance == "measured"
    meter.close()
    assert fake.initialised == 0


def test_power_integrated_on_old_gpus():
    fake = FakeNvml(energy_counter=False, power_mw=40_000)
    meter = nvml_meter(0, fake)
    assert isinstance(meter, NvmlPowerMeter)
    meter.poll_period_s = 0.005
    meter.start()
    time.sleep(0.03)
    m = meter.stop()
    assert m.power_w == pytest.approx(40.0)
    assert m.energy_j == pytest.approx(40.0 * m.duration_s)
    assert m.update_period_s == 1.0


def test_unavailable_nvml_and_missing_gpu():
    with pytest.raises(SensorError, match="Driver Not Loaded"):
        nvml_meter(0, FakeNvml(driver=False))
    fake = FakeNvml()
    with pytest.raises(SensorError, match="no GPU 3"):
        nvml_meter(3, fake)
    assert fake.initialised == 0  # released on the way out


def test_auto_meter_prefers_nvml_for_cuda(tmp_path):
    meter = auto_meter(tmp_path, device="cuda:0", pynvml_module=FakeNvml())
    assert meter.name == "nvml-energy"
    fallback = auto_meter(tmp_path, device="cuda:0", pynvml_module=FakeNvml(driver=False))
    # no GPU sensor: NaN energy with the reason, never the CPU model's
    assert fallback.provenance == "none" and "no GPU power sensor for cuda:0" in fallback.reason
    measurement = fallback.measure_nothing()
    assert math.isnan(measurement.energy_j) and math.isnan(measurement.power_w)
    assert measurement.duration_s >= 0 and "NVML is unavailable" in measurement.note


def test_discovery_lists_nvml_devices(tmp_path):
    fake = FakeNvml(gpus=2)
    p = discover(tmp_path, probe_cuda=False, pynvml_module=fake)
    assert [(s.kind, s.name, s.path) for s in p.sensors] == [
        ("nvml", "gpu0", "energy counter"), ("nvml", "gpu1", "energy counter")
    ]  # fmt: skip
    assert fake.initialised == 0
