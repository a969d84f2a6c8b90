"""The co-running work of a scenario: started by the experiment, never outliving it.

Every phase's processes are started (pinned to the phase's cores) before the measurement
begins and paused at once (SIGSTOP); ``apply(t)`` resumes (SIGCONT) the phases running at
``t`` and pauses the others, so a phase starts on time instead of after an interpreter's
start-up. They die with the experiment: the context's exit kills them (Ctrl-C included),
and each child asks the kernel to kill it when its parent dies (``PR_SET_PDEATHSIG``), so
not even a ``kill -9`` of the experiment leaves one spinning.

>>> from dyndnn.runtime.scenarios import builtin_scenario
>>> import os
>>> core = min(os.sched_getaffinity(0))
>>> hog = builtin_scenario("hog", duration_s=4.0, cores=(core,))
>>> with CoRunners(hog) as corunners:
...     corunners.apply(1.5)            # the first phase runs from 1 s
...     running = corunners.running()
>>> running == [f"cpu_hog on {core}"], corunners.alive()   # killed on leaving
(True, 0)
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from dyndnn.board.sysfs import parse_cpu_list
from dyndnn.errors import DyndnnError
from dyndnn.runtime.scenarios import Scenario

_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT_S = 180.0


def _child_setup(cores: tuple[int, ...]) -> Any:
    """What a co-runner does between fork and exec: die with its parent, pin its cores."""
    def setup() -> None:
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):  # not Linux: the context's exit still kills it
            pass
        os.sched_setaffinity(0, cores)
    return setup


def _settle(proc: subprocess.Popen, stopped: bool, timeout_s: float = 2.0) -> None:
    """Wait until the kernel has stopped (or resumed) ``proc``: a signal arrives later.

    Read from ``/proc/PID/stat``; where there is none, the signal is taken as delivered.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{proc.pid}/stat") as f:
                letter = f.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if (letter in "Tt") == stopped or letter in "ZX":
            return
        time.sleep(0.002)


class CoRunners:
    """The processes of a scenario's phases, paused until their phase runs."""

    def __init__(self, scenario: Scenario, dnn_command: list[str] | None = None) -> None:
        self.scenario = scenario
        self.dnn_command = dnn_command  # argv of a second inference loop (``corunner``)
        self.procs: list[tuple[int, subprocess.Popen]] = []  # (phase index, process)
        self._running: set[int] = set()

    def __enter__(self) -> CoRunners:
        try:
            for i, phase in enumerate(self.scenario.phases.itertuples()):
                cores = parse_cpu_list(str(phase.cores))
                allowed = os.sched_getaffinity(0)
                if not set(cores) <= allowed:
                    raise DyndnnError(f"scenario {self.scenario.name}: phase {i + 1} wants cores "
                                      f"{phase.cores}; this process may use "
                                      f"{sorted(allowed)}")
                if phase.corunner == "cpu_hog":
                    for core in cores:  # one spinning process per core
                        self._start(i, [sys.executable, "-c", "while True: pass"], (core,))
                else:
                    if not self.dnn_command:
                        raise DyndnnError("a dnn co-runner needs the command of its inference "
                                          "loop (the experiment passes it)")
                    self._start(i, [*self.dnn_command, str(len(cores))], cores, ready=True)
        except BaseException:
            self.close()
            raise
        return self

    def _start(self, phase: int, argv: list[str], cores: tuple[int, ...],
               ready: bool = False) -> None:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE if ready else subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, preexec_fn=_child_setup(cores))
        self.procs.append((phase, proc))
        if ready:  # an inference loop loads its model first: wait until it says so
            ok, _, _ = select.select([proc.stdout], [], [], _READY_TIMEOUT_S)
            line = proc.stdout.readline() if ok else b""
            if not line.startswith(b"ready"):
                raise DyndnnError(f"the co-running inference loop did not start "
                                  f"({' '.join(argv)}; exit status {proc.poll()})")
        proc.send_signal(signal.SIGSTOP)
        _settle(proc, stopped=True)

    def apply(self, t_s: float) -> None:
        """Resume the phases running at ``t_s``, pause the rest."""
        want = set(self.scenario.active(t_s).index.map(self._position))
        for phase, proc in self.procs:
            if proc.poll() is not None:
                continue
            if phase in want and phase not in self._running:
                proc.send_signal(signal.SIGCONT)
                _settle(proc, stopped=False)
            elif phase not in want and phase in self._running:
                proc.send_signal(signal.SIGSTOP)
                _settle(proc, stopped=True)
        self._running = want

    def _position(self, label: Any) -> int:
        return int(self.scenario.phases.index.get_loc(label))

    def running(self) -> list[str]:
        """The phases resumed now, in words."""
        phases = self.scenario.phases
        return [f"{phases.iloc[i]['corunner']} on {phases.iloc[i]['cores']}"
                for i in sorted(self._running)]

    def alive(self) -> int:
        """How many co-runner processes still exist."""
        return sum(proc.poll() is None for _, proc in self.procs)

    def close(self) -> None:
        """Kill every co-runner (paused ones too) and reap it."""
        for _, proc in self.procs:
            if proc.poll() is None:
                proc.kill()
        deadline = time.monotonic() + 10
        for _, proc in self.procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            if proc.stdout is not None:
                proc.stdout.close()
        self._running = set()

    def __exit__(self, *exc: object) -> None:
        self.close()
