"""NVIDIA GPUs through NVML (package ``nvidia-ml-py``, imported as ``pynvml``).

Volta and newer count energy since the driver loaded (``nvmlDeviceGetTotalEnergyConsumption``,
mJ): a window's energy is the difference. Older GPUs only report power
(``nvmlDeviceGetPowerUsage``, mW), which a polling thread integrates. Which of the two a GPU
uses is decided once, when the meter is made.

On a host with an NVIDIA GPU (``nvml_meter`` shows it on a stand-in library)::

    meter = nvml_meter(0)
    meter.start(); work(); torch.cuda.synchronize(); m = meter.stop()
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from dyndnn.board.errors import SensorError
from dyndnn.board.meter import CounterMeter, Meter, SamplingMeter

# NVML documents neither refresh period; these are assumptions on the safe side of the
# 10x-window rule. Ampere and newer average the power reading over 1 s.
ASSUMED_ENERGY_UPDATE_PERIOD_S = 0.1
ASSUMED_POWER_UPDATE_PERIOD_S = 1.0


def load_pynvml(module: ModuleType | Any | None = None) -> Any:
    """Return ``module`` or the installed ``pynvml``, initialised (``nvmlInit``)."""
    if module is None:
        try:
            import pynvml as module
        except ImportError as e:
            raise SensorError("NVML needs the nvidia-ml-py package (import pynvml)") from e
    try:
        module.nvmlInit()
    except module.NVMLError as e:
        raise SensorError(f"NVML is unavailable (no NVIDIA driver?): {e}") from e
    return module


class NvmlEnergyMeter(CounterMeter):
    """Energy from the GPU's total-energy counter (mJ, 64-bit: it does not wrap)."""

    name = "nvml-energy"
    update_period_s = ASSUMED_ENERGY_UPDATE_PERIOD_S

    def __init__(self, nvml: Any, handle: Any, index: int) -> None:
        super().__init__(poll_period_s=None)  # two reads suffice: nothing to catch in between
        self.nvml, self.handle, self.rail = nvml, handle, f"gpu{index}"
        self.joules_per_count = 1e-3

    def read_counters(self) -> dict[str, int]:
        """Read the counter."""
        return {self.rail: int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))}

    def close(self) -> None:
        """Release NVML (its init is reference-counted)."""
        super().close()
        self.nvml.nvmlShutdown()


class NvmlPowerMeter(SamplingMeter):
    """Integrates the GPU's reported power (mW) in a polling thread."""

    name = "nvml-power"
    update_period_s = ASSUMED_POWER_UPDATE_PERIOD_S

    def __init__(self, nvml: Any, handle: Any, index: int, poll_period_s: float = 0.05) -> None:
        super().__init__(poll_period_s)
        self.nvml, self.handle, self.rail = nvml, handle, f"gpu{index}"

    def read_power_w(self) -> dict[str, float]:
        """Read the power once."""
        return {self.rail: self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1e3}

    def close(self) -> None:
        """Release NVML."""
        super().close()
        self.nvml.nvmlShutdown()


def nvml_meter(index: int = 0, pynvml_module: ModuleType | Any | None = None) -> Meter:
    """Make the best NVML meter for GPU ``index``: the energy counter where supported.

    ``pynvml_module`` replaces the real library (tests pass a fake).

    >>> class FakeNvml:                              # a Volta GPU's energy counter, in mJ
    ...     class NVMLError(Exception):
    ...         pass
    ...     energy_mj = 1_000_000
    ...     def nvmlInit(self):
    ...         pass
    ...     def nvmlShutdown(self):
    ...         pass
    ...     def nvmlDeviceGetHandleByIndex(self, index):
    ...         return index
    ...     def nvmlDeviceGetTotalEnergyConsumption(self, handle):
    ...         self.energy_mj += 1500                   # 1.5 J between two reads
    ...         return self.energy_mj
    >>> meter = nvml_meter(0, pynvml_module=FakeNvml())
    >>> meter.name
    'nvml-energy'
    >>> meter.start(); meter.stop().energy_j
    1.5
    """
    nvml = load_pynvml(pynvml_module)
    try:
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
    except nvml.NVMLError as e:
        nvml.nvmlShutdown()
        raise SensorError(f"NVML has no GPU {index}: {e}") from e
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except nvml.NVMLError:  # pre-Volta: NOT_SUPPORTED
        return NvmlPowerMeter(nvml, handle, index)
    return NvmlEnergyMeter(nvml, handle, index)
