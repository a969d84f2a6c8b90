"""The measurement record and the meter bases every power/energy backend builds on.

``Meter`` is the interface (``start()``, the work, ``stop()`` gives a ``Measurement``);
``PollingMeter`` reads a sensor in a background thread, ``SamplingMeter`` integrates power
readings and ``CounterMeter`` differences energy counters, wrap-around included.

Every measurement says where its energy came from (``provenance``): ``measured`` by a sensor,
``modelled`` by a model of the hardware, ``simulated`` from a recorded or synthetic trace, or
``none`` when nothing honest exists for that device (the energy is then NaN and ``note`` says
why); ``source`` names the sensor or the model.

>>> m = Measurement(energy_j=2.0, duration_s=0.5, rail_energy_j={"cpu": 2.0},
...                 update_period_s=0.01, meter="demo", provenance="modelled")
>>> m.power_w
4.0
>>> NoEnergyMeter("no GPU sensor").measure_nothing().energy_j
nan
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from dyndnn.board.errors import BoardError, SensorError

log = logging.getLogger(__name__)
# where an energy comes from; "none": no honest source for this device (NaN, with a note)
ENERGY_PROVENANCES = ("measured", "modelled", "simulated", "none")


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
    provenance: str = "measured"  # one of ENERGY_PROVENANCES
    source: str = ""  # the sensor or model, in words (default: the meter's name)
    note: str = ""  # why the energy is NaN, when it is

    def __post_init__(self) -> None:
        if self.provenance not in ENERGY_PROVENANCES:
            raise ValueError(f"provenance must be one of {ENERGY_PROVENANCES}; "
                             f"got {self.provenance!r}")

    @property
    def power_w(self) -> float:
        """Average power over the window."""
        return self.energy_j / self.duration_s if self.duration_s > 0 else float("nan")


class Meter(ABC):
    """A power or energy meter: ``start()``, run the work, ``stop()`` gives a ``Measurement``.

    Usage: ``meter.start(); work(); m = meter.stop()``.
    """

    name: str = "meter"
    update_period_s: float = 0.0  # how often the sensor itself refreshes
    provenance: str = "measured"  # of the energies it returns (ENERGY_PROVENANCES)

    @property
    def source(self) -> str:
        """The sensor or the model behind the energies, in words."""
        return self.name

    def _measurement(self, energy_j: float, duration_s: float,
                     rails: dict[str, float]) -> Measurement:
        return Measurement(energy_j, duration_s, rails, self.update_period_s, self.name,
                           self.provenance, self.source)

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
        return self._measurement(total, t1 - t0, rails)


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
        return self._measurement(self.total_energy_j(zones), t1 - t0, zones)


class WallClockMeter(Meter):
    """A meter whose window is wall-clock time alone (no sensor to read between)."""

    _t0: float | None = None

    def start(self) -> None:
        """Note the time."""
        self._t0 = time.perf_counter()

    def _window_s(self) -> float:
        """Seconds since ``start``; closes the window."""
        if self._t0 is None:
            raise BoardError(f"{self.name}: stop() without start()")
        duration_s, self._t0 = time.perf_counter() - self._t0, None
        return duration_s


class NoEnergyMeter(WallClockMeter):
    """For a device with no sensor and no model that describes it: NaN energy and the reason.

    A GPU's energy cannot be borrowed from a CPU power model applied to the CPU time spent
    waiting on the GPU: that number would be labelled, but physically meaningless.
    """

    name = "none"
    provenance = "none"

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def stop(self) -> Measurement:
        """NaN energy over the window (its duration is still real), with ``note`` saying why."""
        duration_s = self._window_s()
        return Measurement(float("nan"), duration_s, {}, 0.0, self.name, "none", "none",
                           self.reason)

    def measure_nothing(self) -> Measurement:
        """A window around no work (for examples and tests)."""
        self.start()
        return self.stop()
