"""A modelled CPU meter for hosts with no power sensor: energy from CPU time and a power model.

Model (an assumption, not a measurement; calibrate it against a real meter when one exists):

    P = idle_power_w + busy_cores x core_power_w(f)
    core_power_w(f) = core_power_at_ref_w x (f / ref_freq_khz) x (V(f) / volt_at_ref_v)^2

with V(f) linear between (min_freq_khz, volt_at_min_v) and (ref_freq_khz, volt_at_ref_v):
dynamic power goes as f V^2. ``busy_cores`` is the process's CPU time over the window's wall
time, so spinning threads count as busy (they do burn power); each thread's CPU time is read
from its own clock (``thread_cpu_s``), exact to the microsecond. Every measurement has
provenance ``modelled`` with meter ``modelled-cpu`` and the model named as its source. It
models CPUs only: a GPU's energy is never taken from it (``dyndnn.board.auto``).

>>> meter = ModelledCpuMeter()
>>> meter.start(); _ = sum(range(10_000)); m = meter.stop()
>>> m.provenance, m.meter, m.source
('modelled', 'modelled-cpu', 'CPU power model: idle + busy cores x f V^2 (assumed parameters)')
"""

from __future__ import annotations

import dataclasses
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from dyndnn.board.cpufreq import cur_freq_khz
from dyndnn.board.errors import BoardError
from dyndnn.board.meter import Measurement, Meter


@dataclass(frozen=True)
class CpuPowerModel:
    """Parameters of the CPU power model. The defaults are a generic ~2 GHz core, assumed.

    ``idle_power_w`` is charged for the whole window (the platform's share while the work
    runs); ``core_power_at_ref_w`` is one fully busy core at ``ref_freq_khz``.

    >>> CpuPowerModel().power_w(busy_cores=2, freq_khz=2_000_000)
    5.0
    """

    idle_power_w: float = 1.0
    core_power_at_ref_w: float = 2.0
    ref_freq_khz: float = 2_000_000
    min_freq_khz: float = 400_000
    volt_at_ref_v: float = 1.0
    volt_at_min_v: float = 0.7

    def __post_init__(self) -> None:
        if self.idle_power_w < 0 or self.core_power_at_ref_w < 0:
            raise BoardError(f"power model with negative power: {self}")
        if not 0 < self.min_freq_khz < self.ref_freq_khz:
            raise BoardError(f"power model needs 0 < min_freq_khz < ref_freq_khz: {self}")

    def voltage_v(self, freq_khz: float) -> float:
        """Supply voltage assumed at ``freq_khz`` (linear in f, never below the minimum)."""
        slope = (self.volt_at_ref_v - self.volt_at_min_v) / (self.ref_freq_khz - self.min_freq_khz)
        return max(self.volt_at_min_v, self.volt_at_min_v + slope * (freq_khz - self.min_freq_khz))

    def core_power_w(self, freq_khz: float | None = None) -> float:
        """Dynamic power of one busy core at ``freq_khz`` (the reference when ``None``)."""
        f = self.ref_freq_khz if freq_khz is None else freq_khz
        return (
            self.core_power_at_ref_w
            * (f / self.ref_freq_khz)
            * (self.voltage_v(f) / self.volt_at_ref_v) ** 2
        )

    def power_w(self, busy_cores: float, freq_khz: float | None = None) -> float:
        """Total power with ``busy_cores`` cores busy at ``freq_khz``."""
        return self.idle_power_w + busy_cores * self.core_power_w(freq_khz)

    def calibrate(self, samples: Iterable[tuple[float, float | None, float]]) -> CpuPowerModel:
        """Fit ``idle_power_w`` and ``core_power_at_ref_w`` to measured points.

        ``samples`` are ``(busy_cores, freq_khz, power_w)`` from a real meter; the voltage
        curve is kept. Returns a new model.

        >>> m = CpuPowerModel().calibrate([(0, None, 1.5), (1, None, 4.5), (2, None, 7.5)])
        >>> round(m.idle_power_w, 3), round(m.core_power_at_ref_w, 3)
        (1.5, 3.0)
        """
        rows = list(samples)
        if len(rows) < 2:
            raise BoardError("calibrate() needs at least two (busy_cores, freq_khz, power_w)")
        shape = dataclasses.replace(self, core_power_at_ref_w=1.0)
        a = np.array([[1.0, n * shape.core_power_w(f)] for n, f, _ in rows])
        b = np.array([p for _, _, p in rows])
        (idle, core), *_ = np.linalg.lstsq(a, b, rcond=None)
        return dataclasses.replace(self, idle_power_w=float(idle), core_power_at_ref_w=float(core))


PROCESS_CLOCK = -1  # the key of the process's clock in a reading where threads are not listed


def thread_cpu_s(proc: str = "/proc/self/task") -> dict[int, float] | None:
    """Each thread of this process: its CPU time (s), read from the thread's own clock.

    Why not ``time.process_time()``: the process clock adds up the other threads' time as of
    their last scheduler tick, so a window of a few ticks misses a thread's latest slice (here
    the tick is 4 ms: a thread spinning on another core read 86-93 % busy over 20 ms windows
    that way, 100 % this way). A thread's own clock is exact even while it runs on another
    core. Linux names thread ``tid``'s CPU clock ``(~tid << 3) | 6`` (what glibc's
    ``pthread_getcpuclockid`` returns). None where ``proc`` does not list the threads (not
    Linux).

    >>> times = thread_cpu_s()
    >>> times is None or all(t >= 0 for t in times.values())
    True
    """
    try:
        tids = [int(name) for name in os.listdir(proc)]
    except OSError:
        return None
    times = {}
    for tid in tids:
        try:
            times[tid] = time.clock_gettime((~tid << 3) | 6)
        except OSError:  # the thread ended after the listing
            continue
    return times


class ModelledCpuMeter(Meter):
    """Energy of this process's CPU work from ``CpuPowerModel`` (no sensor needed).

    The frequency is ``freq_khz`` when given, else ``scaling_cur_freq`` of the CPUs this
    process may run on (under ``root``), else the model's reference frequency.
    """

    name = "modelled-cpu"
    provenance = "modelled"
    source = "CPU power model: idle + busy cores x f V^2 (assumed parameters)"

    def __init__(
        self,
        model: CpuPowerModel | None = None,
        root: str | os.PathLike = "/",
        freq_khz: float | None = None,
        update_period_s: float | None = None,
    ) -> None:
        self.model = model or CpuPowerModel()
        self.root = root
        self.freq_khz = freq_khz
        self._per_thread = thread_cpu_s() is not None
        # its clocks are exact (per thread): 1 ms lets a window be as short as 10 ms, and a
        # config's window_s decides; the process clock lags by up to a scheduler tick (10 ms
        # at 100 Hz, the slowest Linux timer), so windows of 10 ticks there
        self.update_period_s = (update_period_s if update_period_s is not None
                                else 0.001 if self._per_thread else 0.01)
        self._t0: float | None = None
        self._cpu0: dict[int, float] = {}

    def _cpu_now(self) -> dict[int, float]:
        """CPU seconds by thread; the process clock as one entry where threads are not listed."""
        if not self._per_thread:
            return {PROCESS_CLOCK: time.process_time()}
        times = thread_cpu_s()
        if times is None:
            raise BoardError(f"{self.name}: this process's threads could not be listed "
                             "(/proc/self/task)")
        return times

    def _cpu_since(self, before: dict[int, float]) -> float:
        """CPU seconds of every thread since ``before``.

        A thread started since counts whole; one that ended since is missed (the engines'
        thread pools live as long as their sessions, longer than a window).
        """
        return sum(t - before.get(tid, 0.0) for tid, t in self._cpu_now().items())

    def start(self) -> None:
        """Note the wall and CPU time."""
        self._cpu0 = self._cpu_now()  # all threads of this process
        self._t0 = time.perf_counter()

    def stop(self) -> Measurement:
        """Charge idle power for the window and core power for the CPU time used."""
        if self._t0 is None:
            raise BoardError(f"{self.name}: stop() without start()")
        duration_s = time.perf_counter() - self._t0
        cpu_s = self._cpu_since(self._cpu0)
        self._t0 = None
        freq = self.freq_khz
        if freq is None:
            freq = cur_freq_khz(os.sched_getaffinity(0), self.root)
        rails = {
            "idle": self.model.idle_power_w * duration_s,
            "cores": cpu_s * self.model.core_power_w(freq),
        }
        return self._measurement(sum(rails.values()), duration_s, rails)
