"""Pick a meter: try each backend's availability in turn, fall back to the modelled one.

For a CPU mapping: RAPL, INA231 (Odroid), INA3221 (Jetson), then the modelled CPU meter.
For ``cuda:N``: NVML for GPU N, INA3221 (a Jetson's GPU is on its board rails), then modelled.
Each backend's constructor is its availability check; the reason a backend was passed over is
logged, so ``logging.basicConfig(level="INFO")`` shows why a host ends up modelled.

>>> auto_meter().name  # on a host without sensors  # doctest: +SKIP
'modelled-cpu'
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import Any

from dyndnn.board.errors import BoardError
from dyndnn.board.ina231 import Ina231Meter
from dyndnn.board.jetson import Ina3221Meter
from dyndnn.board.meter import Meter
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
        return ModelledCpuMeter(root=root)
    raise BoardError(f"unknown meter {spec!r}; use one of {', '.join(METERS)} or a factory")


def auto_meter(
    root: str | os.PathLike = "/", device: str = "cpu", pynvml_module: Any = None
) -> Meter:
    """Return the first meter that works here for ``device``; the modelled one otherwise."""
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
    for name, make in tries:
        try:
            meter = make()
        except BoardError as e:
            log.info("meter %s unavailable: %s", name, e)
            continue
        log.info("using meter %s", meter.name)
        return meter
    log.warning("no readable power sensor for %s: energy will be modelled (modelled=True)", device)
    return ModelledCpuMeter(root=root)
