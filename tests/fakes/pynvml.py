"""A stand-in for ``pynvml`` (nvidia-ml-py) at the hardware boundary: one GPU drawing 250 W.

On the path of a subprocess (``PYTHONPATH``) it replaces the real library, so the GPU
reference script's NVML meter, manifest and read-only clock report run on a host without an
NVIDIA driver. The energy counter is the driver's (mJ since an epoch, never wrapping).
"""

import time

NVML_CLOCK_SM = 1
POWER_W = 250.0
_EPOCH = time.monotonic()


class NVMLError(Exception):
    pass


def nvmlInit():
    pass


def nvmlShutdown():
    pass


def nvmlDeviceGetCount():
    return 1


def nvmlDeviceGetHandleByIndex(index):
    if index != 0:
        raise NVMLError(f"no GPU {index}")
    return index


def nvmlDeviceGetName(handle):
    return "Fake NVIDIA H200"


def nvmlDeviceGetTotalEnergyConsumption(handle):
    return int((time.monotonic() - _EPOCH) * POWER_W * 1e3)


def nvmlDeviceGetPowerUsage(handle):
    return int(POWER_W * 1e3)


def nvmlDeviceGetClockInfo(handle, clock):
    return 1980


def nvmlDeviceGetPowerManagementLimit(handle):
    return 700_000
