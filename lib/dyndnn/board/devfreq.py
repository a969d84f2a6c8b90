"""Jetson GPU clock through devfreq (frequencies in Hz).

The GPU's devfreq folder moves between kernels (``57000000.gpu`` on Nano, ``17000000.gv11b``
on Xavier, ``17000000.ga10b`` or ``17000000.gpu`` on Orin), so it is found by scanning
``/sys/class/devfreq/*`` rather than by a fixed path. A frequency is set by pinning
``min_freq`` and ``max_freq``; ``dvfs.DvfsController`` saves and restores them.

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())       # a fake Jetson Nano: its GPU and the EMC
>>> for name in ("57000000.gpu", "7000000.emc"):
...     dev = root / "sys/class/devfreq" / name
...     dev.mkdir(parents=True)
...     for f, value in {"available_frequencies": "76800000 460800000 921600000",
...                      "governor": "nvhost_podgov", "min_freq": 76800000,
...                      "max_freq": 921600000, "cur_freq": 76800000}.items():
...         _ = (dev / f).write_text(str(value))
>>> gpu = find_gpu_devfreq(root)                  # the GPU, found by its name
>>> gpu.name, gpu.available_frequencies_hz[-1], gpu.cur_freq_hz
('57000000.gpu', 921600000, 76800000)
>>> gpu.set_frequency(460_800_000)                # pins min_freq = max_freq
>>> gpu.state()
DevfreqState(governor='nvhost_podgov', min_freq_hz=460800000, max_freq_hz=460800000)
>>> find_gpu_devfreq(tempfile.mkdtemp()) is None  # no GPU devfreq on this host
True
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from dyndnn.board.sysfs import (
    bounds_write_order,
    can_write,
    read_int,
    read_str,
    sysfs_path,
    write_str,
)
from dyndnn.errors import ConfigError

DEVFREQ_CLASS = "/sys/class/devfreq"
# Tegra GPU device names: gm20b (Nano/TX1), gp10b (TX2), gv11b (Xavier), ga10b (Orin)
_GPU_NAME = re.compile(r"\.(gpu|gm20b|gp10b|gv11b|ga10b)$")


@dataclass(frozen=True)
class DevfreqState:
    """Saved governor and frequency window of a devfreq device."""

    governor: str
    min_freq_hz: int
    max_freq_hz: int


class Devfreq:
    """One devfreq device (on a Jetson: the GPU)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = self.path.name

    @property
    def available_frequencies_hz(self) -> tuple[int, ...]:
        """``available_frequencies``, sorted."""
        return tuple(sorted(int(f) for f in read_str(self.path / "available_frequencies").split()))

    @property
    def governor(self) -> str:
        """``governor``."""
        return read_str(self.path / "governor")

    @property
    def min_freq_hz(self) -> int:
        """``min_freq``."""
        return read_int(self.path / "min_freq")

    @property
    def max_freq_hz(self) -> int:
        """``max_freq``."""
        return read_int(self.path / "max_freq")

    @property
    def cur_freq_hz(self) -> int:
        """``cur_freq``: the clock now."""
        return read_int(self.path / "cur_freq")

    def state(self) -> DevfreqState:
        """Read governor and window."""
        return DevfreqState(self.governor, self.min_freq_hz, self.max_freq_hz)

    def files_written(self) -> list[Path]:
        """Files that ``set_frequency``/``apply`` may write."""
        return [self.path / "min_freq", self.path / "max_freq", self.path / "governor"]

    def unwritable(self) -> list[Path]:
        """The files of ``files_written`` this process may not write."""
        return [f for f in self.files_written() if not can_write(f)]

    def check_frequency(self, freq_hz: int) -> None:
        """Raise ``ConfigError`` unless ``freq_hz`` is an available frequency."""
        available = self.available_frequencies_hz
        if freq_hz not in available:
            raise ConfigError(
                f"{self.name} cannot run at {freq_hz} Hz; available: "
                f"{', '.join(map(str, available))}"
            )

    def _write_bounds(self, new_min: int, new_max: int) -> None:
        for which, value in bounds_write_order(
            self.min_freq_hz, self.max_freq_hz, new_min, new_max
        ):
            write_str(self.path / f"{which}_freq", value)

    def set_frequency(self, freq_hz: int) -> None:
        """Pin the clock at ``freq_hz`` (min = max)."""
        self.check_frequency(freq_hz)
        self._write_bounds(freq_hz, freq_hz)

    def apply(self, state: DevfreqState) -> None:
        """Put back a saved window and governor."""
        self._write_bounds(state.min_freq_hz, state.max_freq_hz)
        if self.governor != state.governor:
            write_str(self.path / "governor", state.governor)

    def __repr__(self) -> str:
        return f"<Devfreq {self.name}>"


def find_gpu_devfreq(root: str | os.PathLike = "/") -> Devfreq | None:
    """Find the GPU among ``/sys/class/devfreq/*`` (``None`` where there is none).

    Memory-bus devfreq devices (Odroid's ``*.bus``, Tegra's EMC) are skipped by name.
    """
    base = sysfs_path(root, DEVFREQ_CLASS)
    if not base.is_dir():
        return None
    for entry in sorted(base.iterdir()):
        if _GPU_NAME.search(entry.name) and (entry / "cur_freq").exists():
            return Devfreq(entry.resolve())
    return None
