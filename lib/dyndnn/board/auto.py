"""Pick a meter: try each backend's availability in turn, fall back to what is honest.

For a CPU mapping: RAPL, INA231 (Odroid), INA3221 (Jetson), then the modelled CPU meter.
For ``cuda:N``: NVML for GPU N, INA3221 (a Jetson's GPU is on its board rails), then *no*
energy: NaN with the reason (``NoEnergyMeter``), because the CPU power model says nothing of a
GPU. Each backend's constructor is its availability check; the reason a backend was passed
over is logged, so ``logging.basicConfig(level="INFO")`` shows why.

>>> import tempfile
>>> empty = tempfile.mkdtemp()          # a sysfs with no sensor at all
>>> auto_meter(empty).name
'modelled-cpu'
>>> class NoDriver:                     # NVML as a host without an NVIDIA driver has it
...     class NVMLError(Exception): ...
...     def nvmlInit(self): raise self.NVMLError("driver not loaded")
>>> meter = auto_meter(empty, "cuda:0", pynvml_module=NoDriver())
>>> meter.provenance, meter.reason.startswith("no GPU power sensor for cuda:0: nvml: NVML")
('none', True)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from dyndnn.board.errors import BoardError
from dyndnn.board.ina231 import Ina231Meter
from dyndnn.board.jetson import Ina3221Meter
from dyndnn.board.meter import Meter, NoEnergyMeter
from dyndnn.board.modelled import ModelledCpuMeter
from dyndnn.board.nvml import nvml_meter
from dyndnn.board.rapl import RaplMeter

log = logging.getLogger(__name__)

METERS = ("auto", "rapl", "ina231", "ina3221", "nvml", "modelled")


def _gpu_index(device: str) -> int:
    return int(device.partition(":")[2] or 0)


def make_meter(
    spec: str | Callable[[], Meter],
    root: str | os.PathLike = "/",
    device: str = "cpu",
    pynvml_module: Any = None,
) -> Meter:
    """Make a meter from a name in ``METERS`` or a zero-argument factory.

    >>> make_meter("modelled").name
    'modelled-cpu'
    """
    if callable(spec):
        return spec()
    if spec == "auto":
        return auto_meter(root, device, pynvml_module)
    if spec == "rapl":
        return RaplMeter(root)
    if spec == "ina231":
        return Ina231Meter(root)
    if spec == "ina3221":
        return Ina3221Meter(root)
    if spec == "nvml":
        return nvml_meter(_gpu_index(device) if device.startswith("cuda") else 0, pynvml_module)
    if spec == "modelled":
        if device.startswith("cuda"):
            return NoEnergyMeter(f"meter 'modelled' models CPUs only; {device} has no model: "
                                 "its energy is not recorded (use nvml or ina3221)")
        return ModelledCpuMeter(root=root)
    raise BoardError(f"unknown meter {spec!r}; use one of {', '.join(METERS)} or a factory")


def auto_meter(
    root: str | os.PathLike = "/", device: str = "cpu", pynvml_module: Any = None
) -> Meter:
    """The first meter that works here for ``device``, else a fallback that says what it is.

    The fallback is the modelled CPU meter for a CPU, a ``NoEnergyMeter`` saying why for a GPU.
    """
    tries: list[tuple[str, Callable[[], Meter]]] = []
    if device.startswith("cuda"):
        tries.append(("nvml", lambda: nvml_meter(_gpu_index(device), pynvml_module)))
        tries.append(("ina3221", lambda: Ina3221Meter(root)))
    else:
        tries += [
            ("rapl", lambda: RaplMeter(root)),
            ("ina231", lambda: Ina231Meter(root)),
            ("ina3221", lambda: Ina3221Meter(root)),
        ]
    passed_over = []
    for name, make in tries:
        try:
            meter = make()
        except BoardError as e:
            log.info("meter %s unavailable: %s", name, e)
            passed_over.append(f"{name}: {e}")
            continue
        log.info("using meter %s", meter.name)
        return meter
    if device.startswith("cuda"):
        reason = (f"no GPU power sensor for {device}: " + "; ".join(passed_over)
                  + ". Energy is not recorded: the CPU power model does not describe a GPU")
        log.warning("%s", reason)
        return NoEnergyMeter(reason)
    log.warning("no readable power sensor for %s: energy will be modelled (provenance "
                "modelled)", device)
    return ModelledCpuMeter(root=root)
