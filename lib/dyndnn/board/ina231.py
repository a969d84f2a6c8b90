"""Odroid XU3/XU4 INA231 power sensors: A15 (big), memory, GPU and A7 (LITTLE) rails.

``/sys/bus/i2c/drivers/INA231/3-00{40,41,44,45}/`` hold ``enable``, ``sensor_W`` (watts) and
``update_period`` (microseconds, about 263.8 ms). The chips do not accumulate energy, so the
meter integrates power in a polling thread; ``enable`` must hold 1 first (root).

On a fake XU3 (``root``) holding two of the four rails; on the board, ``Ina231Meter()``:

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())
>>> for dev, watts in {"3-0040": 2.5, "3-0045": 0.5}.items():
...     sensor = root / "sys/bus/i2c/drivers/INA231" / dev
...     sensor.mkdir(parents=True)
...     for name, value in {"enable": 0, "sensor_W": watts, "update_period": 263808}.items():
...         _ = (sensor / name).write_text(str(value))
>>> meter = Ina231Meter(root)
>>> [r.rail for r in meter.rails], meter.update_period_s
(['A15', 'A7'], 0.263808)
>>> meter.start(); m = meter.stop()                  # start() enables the sensors first
>>> (sensor / "enable").read_text(), round(m.rail_energy_j["A15"] / m.duration_s, 6)
('1', 2.5)
>>> round(m.power_w, 6)                              # the rails' sum
3.0
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from dyndnn.board.errors import BoardPermissionError, SensorError
from dyndnn.board.meter import SamplingMeter
from dyndnn.board.sysfs import (
    can_read,
    can_write,
    read_float,
    read_int,
    read_str,
    sysfs_path,
    write_str,
)

INA231_DIR = "/sys/bus/i2c/drivers/INA231"
RAILS = {"3-0040": "A15", "3-0041": "mem", "3-0044": "GPU", "3-0045": "A7"}
DEFAULT_UPDATE_PERIOD_S = 0.2638


@dataclass(frozen=True)
class Ina231Rail:
    """One sensor: its folder and rail name."""

    path: Path
    rail: str

    @property
    def power_file(self) -> Path:
        """Watts, refreshed every ``update_period``."""
        return self.path / "sensor_W"

    def update_period_s(self) -> float:
        """The sensor's refresh period (``update_period`` is in microseconds)."""
        f = self.path / "update_period"
        return read_int(f) / 1e6 if f.exists() else DEFAULT_UPDATE_PERIOD_S

    def enabled(self) -> bool:
        """Whether the sensor is running."""
        return read_str(self.path / "enable") == "1"


def find_ina231_rails(root: str | os.PathLike = "/") -> list[Ina231Rail]:
    """List the INA231 sensors present, with their rail names.

    On an Odroid XU3::

        [r.rail for r in find_ina231_rails()]    # ['A15', 'mem', 'GPU', 'A7']
    """
    base = sysfs_path(root, INA231_DIR)
    return [Ina231Rail(base / dev, rail) for dev, rail in RAILS.items() if (base / dev).is_dir()]


class Ina231Meter(SamplingMeter):
    """Integrates the four INA231 rails; the total is their sum (the board has no input rail)."""

    name = "ina231"

    def __init__(self, root: str | os.PathLike = "/", poll_period_s: float | None = None) -> None:
        rails = find_ina231_rails(root)
        if not rails:
            raise SensorError(f"no INA231 sensors under {sysfs_path(root, INA231_DIR)}")
        for rail in rails:
            if not can_read(rail.power_file):
                raise BoardPermissionError(rail.power_file, "read")
        self.rails = rails
        self.update_period_s = max(r.update_period_s() for r in rails)
        # four reads per refresh: the integral then follows each new value within a quarter
        super().__init__(poll_period_s or self.update_period_s / 4)

    def enable(self) -> None:
        """Write 1 to each ``enable`` that is not already 1 (needs root)."""
        for rail in self.rails:
            if not rail.enabled():
                if not can_write(rail.path / "enable"):
                    raise BoardPermissionError(
                        rail.path / "enable", "write", "INA231 sensors start disabled; run as root"
                    )
                write_str(rail.path / "enable", 1)

    def start(self) -> None:
        """Enable the sensors, then open the window."""
        self.enable()
        super().start()

    def read_power_w(self) -> dict[str, float]:
        """Read ``sensor_W`` of every rail."""
        return {r.rail: read_float(r.power_file) for r in self.rails}
