"""Shared pieces of the board backends: errors, the measurement record, meter bases, sysfs I/O.

Every backend reads sysfs through the helpers here, so a missing file, a file that vanishes
mid-run and a permission problem all surface as the same few errors, each naming the file.

>>> m = Measurement(energy_j=2.0, duration_s=0.5, rail_energy_j={"cpu": 2.0},
...                 update_period_s=0.01, meter="demo", modelled=True)
>>> m.power_w
4.0
"""

from __future__ import annotations

import logging
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dyndnn.errors import DyndnnError

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------------------------
# Errors and warnings


class BoardError(DyndnnError):
    """A board interface is missing, misconfigured or misbehaving; the message says which."""


class SensorError(BoardError):
    """A sensor file is missing, vanished mid-run or returned garbage.

    ``path`` names the file so the user can look at it.
    """

    def __init__(self, message: str, path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.path = None if path is None else Path(path)


class BoardPermissionError(BoardError, PermissionError):
    """A sysfs file cannot be read or written by this user; ``hint`` says how to get access."""

    def __init__(self, path: str | os.PathLike, action: str = "read", hint: str = "") -> None:
        self.path = Path(path)
        self.action = action
        self.hint = hint or "run as root, or grant access with a udev rule"
        super().__init__(f"cannot {action} {self.path}: permission denied; {self.hint}")


class ReadOnlyWarning(UserWarning):
    """Clocks are not writable: a DVFS controller runs read-only and applies nothing."""


# ----------------------------------------------------------------------------------------------
# sysfs I/O


def sysfs_path(root: str | os.PathLike, path: str) -> Path:
    """Return ``path`` (absolute, as on a real system) under the prefix ``root``.

    >>> sysfs_path("/tmp/fake", "/sys/class/powercap")
    PosixPath('/tmp/fake/sys/class/powercap')
    """
    return Path(root, path.lstrip("/"))


def can_read(path: str | os.PathLike) -> bool:
    """Whether this process may read ``path`` (``os.access``; root passes regardless of mode)."""
    return os.access(path, os.R_OK)


def can_write(path: str | os.PathLike) -> bool:
    """Whether this process may write ``path`` (root passes regardless of mode).

    >>> can_write("/nonexistent/scaling_setspeed")
    False
    """
    return os.access(path, os.W_OK)


def read_str(path: str | os.PathLike) -> str:
    """Read a sysfs file as stripped text; a missing or unreadable file raises a board error."""
    try:
        with open(path) as f:
            return f.read().strip()
    except FileNotFoundError as e:
        raise SensorError(f"sensor file {path} does not exist (or vanished mid-run)", path) from e
    except PermissionError as e:
        raise BoardPermissionError(path, "read") from e
    except OSError as e:  # sysfs answers EIO/ENODATA when a device goes away
        raise SensorError(f"cannot read {path}: {e.strerror or e}", path) from e


def _read_number(path: str | os.PathLike, kind: type, noun: str):
    text = read_str(path)
    try:
        return kind(text)
    except ValueError as e:
        raise SensorError(f"{path} holds {text!r}, not {noun}", path) from e


def read_int(path: str | os.PathLike) -> int:
    """Read a sysfs file holding one integer."""
    return _read_number(path, int, "an integer")


def read_float(path: str | os.PathLike) -> float:
    """Read a sysfs file holding one number."""
    return _read_number(path, float, "a number")


def write_str(path: str | os.PathLike, value: object) -> None:
    """Write ``value`` to a sysfs file (no truncation games: sysfs takes one write)."""
    try:
        with open(path, "w") as f:
            f.write(str(value))
    except PermissionError as e:
        raise BoardPermissionError(path, "write") from e
    except OSError as e:  # e.g. EINVAL for a frequency outside [min, max]
        raise BoardError(f"writing {value!r} to {path} failed: {e.strerror or e}") from e


def parse_cpu_list(text: str) -> tuple[int, ...]:
    """Parse a kernel CPU list such as ``"0-3,8"`` (``related_cpus`` uses spaces).

    >>> parse_cpu_list("0-2,5")
    (0, 1, 2, 5)
    >>> parse_cpu_list("4 5 6 7")
    (4, 5, 6, 7)
    """
    cpus: set[int] = set()
    for part in text.replace(",", " ").split():
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return tuple(sorted(cpus))


def format_cpu_list(cpus: Iterable[int]) -> str:
    """Format CPUs as the kernel does, with ranges.

    >>> format_cpu_list([0, 1, 2, 5])
    '0-2,5'
    """
    out: list[str] = []
    ordered = sorted(set(cpus))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        out.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(out)


def bounds_write_order(
    cur_min: int, cur_max: int, new_min: int, new_max: int
) -> list[tuple[str, int]]:
    """Order the writes of a [min, max] frequency window so the kernel never sees min > max.

    Raising the window writes max first, lowering it writes min first.

    >>> bounds_write_order(800, 1400, 1600, 1600)
    [('max', 1600), ('min', 1600)]
    >>> bounds_write_order(800, 1400, 600, 600)
    [('min', 600), ('max', 600)]
    """
    if new_min > new_max:
        raise BoardError(f"frequency window min {new_min} > max {new_max}")
    if new_min > cur_max:
        return [("max", new_max), ("min", new_min)]
    return [("min", new_min), ("max", new_max)]


# ----------------------------------------------------------------------------------------------
# Measurements and meters


@dataclass(frozen=True)
class Measurement:
    """Energy over one window, and how it was obtained.

    ``rail_energy_j`` splits the energy per rail or zone where the meter can (the total is not
    always their sum: a board's input rail already includes the others).
    """

    energy_j: float
    duration_s: float
    rail_energy_j: dict[str, float] = field(default_factory=dict)
    update_period_s: float = 0.0
    meter: str = ""
    modelled: bool = False

    @property
    def power_w(self) -> float:
        """Average power over the window."""
        return self.energy_j / self.duration_s if self.duration_s > 0 else float("nan")


class Meter(ABC):
    """A power or energy meter: ``start()``, run the work, ``stop()`` gives a ``Measurement``.

    >>> meter = ModelledCpuMeter()  # doctest: +SKIP
    >>> meter.start(); work(); m = meter.stop()  # doctest: +SKIP
    """

    name: str = "meter"
    update_period_s: float = 0.0  # how often the sensor itself refreshes
    modelled: bool = False

    @abstractmethod
    def start(self) -> None:
        """Open a measurement window (a second start discards an unfinished window)."""

    @abstractmethod
    def stop(self) -> Measurement:
        """Close the window and return what it measured."""

    def close(self) -> None:  # noqa: B027 - most meters hold nothing to release
        """Release the sensor (threads, library handles)."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} period={self.update_period_s}s>"


class PollingMeter(Meter):
    """A meter that reads its sensor in a background thread between ``start`` and ``stop``.

    The first and the last reads happen in the caller's thread, so a sensor that is missing at
    start, or vanished by the end, raises there; a read that fails in the thread is kept and
    raised by ``stop()`` instead of being retried forever.
    """

    def __init__(self, poll_period_s: float | None) -> None:
        self.poll_period_s = poll_period_s
        self._lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._running = False
        self._t0 = 0.0

    @abstractmethod
    def _reset(self) -> None:
        """Forget the previous window."""

    @abstractmethod
    def _poll(self, t: float) -> None:
        """Read the sensor once at time ``t`` (``time.perf_counter``)."""

    @abstractmethod
    def _result(self, t0: float, t1: float) -> Measurement:
        """Turn what was read into a measurement."""

    def sample(self) -> None:
        """Read the sensor now (the background thread calls this every ``poll_period_s``)."""
        with self._lock:
            if self._running:
                self._poll(time.perf_counter())

    def start(self) -> None:
        """Open a window; an unfinished one (say, a notebook cell that crashed) is dropped."""
        if self._running:
            log.warning("%s: start() before stop(); the unfinished window is discarded", self.name)
            self._halt_thread()
        self._reset()
        self._error = None
        self._stop_event.clear()
        with self._lock:
            self._t0 = time.perf_counter()
            self._poll(self._t0)
            self._running = True
        if self.poll_period_s:
            self._thread = threading.Thread(
                target=self._loop, name=f"{self.name}-poll", daemon=True
            )
            self._thread.start()

    def stop(self) -> Measurement:
        """Close the window: one last read, then integrate."""
        if not self._running:
            raise BoardError(f"{self.name}: stop() without start()")
        t1 = time.perf_counter()
        try:
            with self._lock:
                self._running = False
                if self._error is None:
                    self._poll(t1)
        finally:
            self._halt_thread()
        if self._error is not None:
            raise self._error
        return self._result(self._t0, t1)

    def close(self) -> None:
        """Stop the polling thread if a window is open."""
        self._running = False
        self._halt_thread()

    def _loop(self) -> None:
        while not self._stop_event.wait(self.poll_period_s):
            try:
                self.sample()
            except BaseException as e:  # kept for stop(): a thread cannot raise to the caller
                self._error = e
                return

    def _halt_thread(self) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None


class SamplingMeter(PollingMeter):
    """A meter for sensors that give power: integrates it (trapezoid) over read timestamps.

    Subclasses implement ``read_power_w() -> {rail: watts}`` and may override ``total_power_w``.
    """

    def __init__(self, poll_period_s: float) -> None:
        super().__init__(poll_period_s)
        self._t: list[float] = []
        self._p: list[dict[str, float]] = []

    @abstractmethod
    def read_power_w(self) -> dict[str, float]:
        """Read every rail once, in watts."""

    def total_power_w(self, rails: Mapping[str, float]) -> float:
        """The board's total from one reading of the rails (default: their sum)."""
        return float(sum(rails.values()))

    def _reset(self) -> None:
        self._t, self._p = [], []

    def _poll(self, t: float) -> None:
        self._p.append(self.read_power_w())
        self._t.append(t)

    def _result(self, t0: float, t1: float) -> Measurement:
        t = np.asarray(self._t)
        rails = {name: float(np.trapezoid([p[name] for p in self._p], t)) for name in self._p[0]}
        total = float(np.trapezoid([self.total_power_w(p) for p in self._p], t))
        return Measurement(total, t1 - t0, rails, self.update_period_s, self.name, self.modelled)


class CounterMeter(PollingMeter):
    """A meter for sensors that count energy: differences, with wrap-around handled.

    Subclasses implement ``read_counters() -> {zone: raw count}`` and set ``joules_per_count``
    and ``wrap_counts`` (``{zone: count where it wraps to 0}``; empty when it never wraps). The
    polling thread only has to read often enough that a counter cannot wrap twice unseen.
    """

    joules_per_count: float = 1.0
    wrap_counts: dict[str, int]

    def __init__(self, poll_period_s: float | None) -> None:
        super().__init__(poll_period_s)
        self.wrap_counts = {}
        self._first: dict[str, int] = {}
        self._last: dict[str, int] = {}
        self._wraps: dict[str, int] = {}

    @abstractmethod
    def read_counters(self) -> dict[str, int]:
        """Read every counter once, in raw units."""

    def total_energy_j(self, zones: Mapping[str, float]) -> float:
        """The total from the per-zone energies (default: their sum)."""
        return float(sum(zones.values()))

    def _reset(self) -> None:
        self._first, self._last, self._wraps = {}, {}, {}

    def _poll(self, t: float) -> None:
        for zone, value in self.read_counters().items():
            if zone not in self._first:
                self._first[zone] = self._last[zone] = value
                self._wraps[zone] = 0
                continue
            if value < self._last[zone]:
                if zone not in self.wrap_counts:
                    raise SensorError(f"{self.name}: counter {zone} went backwards")
                self._wraps[zone] += 1
            self._last[zone] = value

    def _result(self, t0: float, t1: float) -> Measurement:
        zones = {
            zone: (
                self._last[zone]
                - self._first[zone]
                + self._wraps[zone] * self.wrap_counts.get(zone, 0)
            )
            * self.joules_per_count
            for zone in self._first
        }
        return Measurement(
            self.total_energy_j(zones),
            t1 - t0,
            zones,
            self.update_period_s,
            self.name,
            self.modelled,
        )
