"""Linux cpufreq policies: read each cluster's state, set a frequency, put the state back.

A policy is ``/sys/devices/system/cpu/cpufreq/policyN/``; its CPUs are ``related_cpus`` (a
cluster on big.LITTLE boards). Two ways to set a frequency, picked per policy:

- ``userspace`` governor + ``scaling_setspeed`` where the driver offers it;
- otherwise (intel_pstate offers only performance/powersave) pin ``scaling_min_freq`` and
  ``scaling_max_freq`` to the frequency, writing them in an order that keeps min <= max.

These are the low-level steps; ``dvfs.DvfsController`` adds saving, restoring and recovery.
Every function takes a ``root`` (``/`` by default), so a fake tree stands in for a board:

>>> import pathlib, tempfile
>>> root = pathlib.Path(tempfile.mkdtemp())          # one cluster, intel_pstate-like
>>> policy0 = root / "sys/devices/system/cpu/cpufreq/policy0"
>>> policy0.mkdir(parents=True)
>>> for name, value in {"related_cpus": "0 1 2 3", "scaling_governor": "powersave",
...                     "scaling_available_governors": "performance powersave",
...                     "cpuinfo_min_freq": 800000, "cpuinfo_max_freq": 3500000,
...                     "scaling_min_freq": 800000, "scaling_max_freq": 3500000}.items():
...     _ = (policy0 / name).write_text(str(value))
>>> [(p.name, p.cpus) for p in list_policies(root)]
[('policy0', (0, 1, 2, 3))]
>>> p = list_policies(root)[0]
>>> p.set_frequency(1_400_000)                       # no userspace governor: pin min and max
'minmax'
>>> p.min_freq_khz, p.max_freq_khz
(1400000, 1400000)
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dyndnn.board.errors import BoardError
from dyndnn.board.sysfs import (
    bounds_write_order,
    can_write,
    parse_cpu_list,
    read_int,
    read_str,
    sysfs_path,
    write_str,
)
from dyndnn.errors import ConfigError

CPUFREQ_DIR = "/sys/devices/system/cpu/cpufreq"


@dataclass(frozen=True)
class PolicyState:
    """What a policy looked like: enough to put it back."""

    governor: str
    min_freq_khz: int
    max_freq_khz: int
    setspeed_khz: int | None = None  # only meaningful under the userspace governor


class CpufreqPolicy:
    """One cpufreq policy (a cluster of CPUs sharing a clock).

    On a board (an Odroid XU3's LITTLE cluster)::

        p = list_policies()[0]
        p.governor, p.cur_freq_khz      # ('schedutil', 1400000)
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.name = self.path.name
        self.cpus = parse_cpu_list(read_str(self.path / "related_cpus"))

    def _file(self, name: str) -> Path:
        return self.path / name

    def _optional_list(self, name: str) -> tuple[str, ...]:
        f = self._file(name)
        return tuple(read_str(f).split()) if f.exists() else ()

    @property
    def available_governors(self) -> tuple[str, ...]:
        """``scaling_available_governors``."""
        return self._optional_list("scaling_available_governors")

    @property
    def available_frequencies_khz(self) -> tuple[int, ...]:
        """``scaling_available_frequencies`` (empty under intel_pstate, which has none)."""
        return tuple(sorted(int(f) for f in self._optional_list("scaling_available_frequencies")))

    @property
    def hw_min_freq_khz(self) -> int:
        """``cpuinfo_min_freq``: the lowest frequency the hardware allows."""
        return read_int(self._file("cpuinfo_min_freq"))

    @property
    def hw_max_freq_khz(self) -> int:
        """``cpuinfo_max_freq``."""
        return read_int(self._file("cpuinfo_max_freq"))

    @property
    def governor(self) -> str:
        """``scaling_governor``."""
        return read_str(self._file("scaling_governor"))

    @property
    def min_freq_khz(self) -> int:
        """``scaling_min_freq``."""
        return read_int(self._file("scaling_min_freq"))

    @property
    def max_freq_khz(self) -> int:
        """``scaling_max_freq``."""
        return read_int(self._file("scaling_max_freq"))

    @property
    def cur_freq_khz(self) -> int:
        """``scaling_cur_freq``: what the clock runs at now (thermal limits may hold it low)."""
        return read_int(self._file("scaling_cur_freq"))

    @property
    def uses_userspace(self) -> bool:
        """Whether frequencies are set through the userspace governor (else min/max pinning)."""
        return "userspace" in self.available_governors and self._file("scaling_setspeed").exists()

    def state(self) -> PolicyState:
        """Read the current governor, min, max and setspeed."""
        f = self._file("scaling_setspeed")
        raw = read_str(f) if f.exists() else ""
        return PolicyState(
            self.governor,
            self.min_freq_khz,
            self.max_freq_khz,
            int(raw) if raw.isdigit() else None,  # "<unsupported>" outside userspace
        )

    def files_written(self) -> list[Path]:
        """Every file that ``set_frequency`` or ``apply`` may write."""
        names = ["scaling_governor", "scaling_min_freq", "scaling_max_freq"]
        if self._file("scaling_setspeed").exists():
            names.append("scaling_setspeed")
        return [self._file(n) for n in names]

    def unwritable(self) -> list[Path]:
        """The files of ``files_written`` this process may not write."""
        return [f for f in self.files_written() if not can_write(f)]

    def check_frequency(self, freq_khz: int) -> None:
        """Raise ``ConfigError`` unless the policy can run at ``freq_khz``."""
        available = self.available_frequencies_khz
        if available and freq_khz not in available:
            raise ConfigError(
                f"{self.name} (CPUs {self.cpus}) cannot run at {freq_khz} kHz; "
                f"available: {', '.join(map(str, available))}"
            )
        lo, hi = self.hw_min_freq_khz, self.hw_max_freq_khz
        if not lo <= freq_khz <= hi:
            raise ConfigError(f"{self.name}: {freq_khz} kHz is outside [{lo}, {hi}] kHz")

    def _write_bounds(self, new_min: int, new_max: int) -> None:
        for which, value in bounds_write_order(
            self.min_freq_khz, self.max_freq_khz, new_min, new_max
        ):
            write_str(self._file(f"scaling_{which}_freq"), value)

    def set_frequency(self, freq_khz: int) -> str:
        """Run the policy at ``freq_khz``; returns the method used (``userspace``/``minmax``)."""
        self.check_frequency(freq_khz)
        if self.uses_userspace:
            if not self.min_freq_khz <= freq_khz <= self.max_freq_khz:
                # the kernel clamps setspeed into [min, max]: open the window first
                self._write_bounds(self.hw_min_freq_khz, self.hw_max_freq_khz)
            if self.governor != "userspace":
                write_str(self._file("scaling_governor"), "userspace")
            write_str(self._file("scaling_setspeed"), freq_khz)
            return "userspace"
        self._write_bounds(freq_khz, freq_khz)
        return "minmax"

    def apply(self, state: PolicyState) -> None:
        """Put back a saved state: bounds, then governor, then setspeed (userspace only)."""
        self._write_bounds(state.min_freq_khz, state.max_freq_khz)
        if self.governor != state.governor:
            write_str(self._file("scaling_governor"), state.governor)
        if state.governor == "userspace" and state.setspeed_khz is not None:
            write_str(self._file("scaling_setspeed"), state.setspeed_khz)

    def __repr__(self) -> str:
        return f"<CpufreqPolicy {self.name} cpus={self.cpus}>"


def list_policies(root: str | os.PathLike = "/") -> list[CpufreqPolicy]:
    """List cpufreq policies (empty on a host without cpufreq, such as most containers/VMs)."""
    base = sysfs_path(root, CPUFREQ_DIR)
    if not base.is_dir():
        return []
    paths = [p for p in base.glob("policy*") if (p / "related_cpus").exists()]
    return [CpufreqPolicy(p) for p in sorted(paths, key=lambda p: int(p.name[6:] or 0))]


def policies_for_cpus(
    cpus: Iterable[int] | None, root: str | os.PathLike = "/"
) -> list[CpufreqPolicy]:
    """The policies that hold any of ``cpus`` (all policies for ``None``)."""
    policies = list_policies(root)
    if cpus is None:
        return policies
    wanted = set(cpus)
    return [p for p in policies if wanted & set(p.cpus)]


def cur_freq_khz(cpus: Iterable[int] | None = None, root: str | os.PathLike = "/") -> float | None:
    """Mean ``scaling_cur_freq`` over the policies of ``cpus``; ``None`` without cpufreq.

    >>> import tempfile
    >>> cur_freq_khz([0], root=tempfile.mkdtemp()) is None   # a host without cpufreq
    True
    """
    try:
        freqs = [p.cur_freq_khz for p in policies_for_cpus(cpus, root)]
    except BoardError:
        return None
    return sum(freqs) / len(freqs) if freqs else None
